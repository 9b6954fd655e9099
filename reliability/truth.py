"""What PostgreSQL must hold after a run of dates, computed in plain Python from what the sandbox served.

The pipeline's own code (Spark, SQL) is not used here: the raw partitions each date landed (read
through their manifests, as ingestion wrote them from the sandbox's answers) are folded, date by
date in the order they were loaded, by the rules the README states:

* the catalogue: a change replaces a game when its updated_at is not older (a full refresh's row
  always does); a game a complete full refresh no longer lists is deleted as of that date; a
  deleted game that comes back is live again. Reference dimensions the same way, from each
  day's complete snapshot. A quarantined line (a value of the wrong type) is never staged, and
  its game keeps the row it had;
* bridges: the id sets of every live game;
* the popularity fact: one row per game with values on that date, deleted games left out,
  percentiles by (value, game id) among the games with a value of that type;
* the marketing marts, by their definitions, from the live catalogue and the fact;
* a game deleted as of L leaves the fact and the marts of every date up to L.

`Truth.expected()` gives each loaded table as sorted tuples; `loaded(url, schema)` reads the same
shape from PostgreSQL, so the two compare with ==.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg2 import sql

from jobs.datasets import BRIDGES, POPULARITY_COLUMNS, RANKED_POPULARITY, REFERENCE_IDS
from reliability.checks import _fetch, _table, raw_lines

REFERENCES = ("platforms", "genres", "themes", "game_modes", "player_perspectives", "popularity_types")
BRIDGE_FIELDS = {bridge: field for bridge, _, _, field in BRIDGES}  # bridge -> the raw game's id array
RANKED_MARTS = ("mart_top_rated", "mart_top_hyped", "mart_trending_now", "mart_hidden_gems")
_NUMBERS = ("rating", "aggregated_rating", "total_rating")
_WHOLE = ("rating_count", "aggregated_rating_count", "total_rating_count", "first_release_date", "updated_at",
          "game_type", "game_status", "parent_game", "version_parent", "cover")
_LISTS = ("genres", "themes", "keywords", "platforms", "game_modes", "multiplayer_modes", "player_perspectives",
          "involved_companies", "screenshots", "external_games", "release_dates", "websites")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def stageable_game(record: dict[str, Any]) -> bool:
    """Whether the transform stages a raw game line (else it is quarantined): the rules of the
    README's quarantine reasons, for the values a sandbox serves."""
    if not _whole(record.get("id")) or record["id"] <= 0 or not _whole(record.get("updated_at")):
        return False
    for key, value in record.items():
        if value is None:
            continue
        if key in _NUMBERS and (isinstance(value, bool) or not isinstance(value, int | float)):
            return False
        if key in _WHOLE and not _whole(value):
            return False
        if key in _LISTS and (not isinstance(value, list) or any(v is not None and not _whole(v) for v in value)):
            return False
    return not _has_nul(record)


def _has_nul(value: Any) -> bool:
    """A NUL character in any string (valid JSON, but PostgreSQL text cannot hold it: quarantined)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _epoch_date(seconds: int | None) -> dt.date | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC).date()


@dataclass
class Truth:
    """The catalogue, dimensions and history folded so far; `fold` one loaded date at a time."""

    top_n: int
    games: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> latest raw record
    deleted: dict[int, dt.date] = field(default_factory=dict)  # game id -> the date that found it gone
    refs: dict[str, dict[int, dict[str, Any]]] = field(default_factory=lambda: {e: {} for e in REFERENCES})
    refs_deleted: dict[str, dict[int, dt.date]] = field(default_factory=lambda: {e: {} for e in REFERENCES})
    facts: dict[dt.date, dict[int, dict[str, float | None]]] = field(default_factory=dict)
    marts: dict[dt.date, dict[str, list[int]]] = field(default_factory=dict)
    deletions: list[tuple[int, dt.date]] = field(default_factory=list)  # (game, date) of every deletion
    names: dict[str, dict[int, str]] = field(default_factory=dict)  # the last snapshot's names

    def fold(self, lake: Path, day: dt.date) -> None:
        """Take in a date as the pipeline loads it: its raw partitions, on top of what came before."""
        games, mode = _records(lake, "games", day)
        full = mode == "full"
        seen = {r["id"] for r in games if _whole(r.get("id"))}
        for record in games:
            if not stageable_game(record):
                continue
            old = self.games.get(record["id"])
            if full or old is None or record["updated_at"] >= old["updated_at"] or record["id"] in self.deleted:
                self.games[record["id"]] = record
                self.deleted.pop(record["id"], None)
        if full:
            for game in sorted(set(self.games) - seen - set(self.deleted)):
                self.deleted[game] = day
                self.deletions.append((game, day))
        for entity in REFERENCES:
            rows, _ = _records(lake, entity, day)
            snapshot = {r["id"]: r for r in rows}
            for gone in set(self.refs[entity]) - set(snapshot) - set(self.refs_deleted[entity]):
                self.refs_deleted[entity][gone] = day
            for ref_id, row in snapshot.items():
                self.refs[entity][ref_id] = row
                self.refs_deleted[entity].pop(ref_id, None)
            self.names[entity] = {i: r["name"] for i, r in snapshot.items() if r.get("name") is not None}
        before = max(self.facts) if self.facts else None
        self.facts[day] = self._fact(lake, day)
        self.marts[day] = self._marts(day, self.facts[day], self.facts.get(before) if before else None)

    def _fact(self, lake: Path, day: dt.date) -> dict[int, dict[str, float | None]]:
        rows, _ = _records(lake, "popularity_primitives", day)
        values: dict[int, dict[str, float | None]] = {}
        for row in rows:
            if row["game_id"] in self.deleted:
                continue
            column = POPULARITY_COLUMNS.get(row["popularity_type"])
            game = values.setdefault(row["game_id"], {c: None for c in POPULARITY_COLUMNS.values()})
            if column is not None:
                game[column] = row.get("value")
        for column in RANKED_POPULARITY:
            ranked = sorted((v[column], g) for g, v in values.items() if v[column] is not None)
            for position, (_, game_id) in enumerate(ranked):
                values[game_id][f"{column}_pct"] = position / (len(ranked) - 1) if len(ranked) > 1 else 0.0
            for v in values.values():
                v.setdefault(f"{column}_pct", None)
        return values

    def _marts(self, day: dt.date, fact: dict[int, dict[str, Any]], before: dict[int, dict[str, Any]] | None
               ) -> dict[str, list[int]]:
        live = {g: r for g, r in self.games.items() if g not in self.deleted}
        rated = [r["total_rating"] for r in live.values()
                 if r.get("total_rating") is not None and (r.get("total_rating_count") or 0) > 0]
        mean = sum(rated) / len(rated) if rated else None

        def weighted(r: dict[str, Any]) -> float:
            """The Bayesian rating; -inf without votes (such a game ranks in no mart)."""
            votes = r.get("total_rating_count") or 0
            if r.get("total_rating") is None or votes <= 0 or mean is None:
                return -math.inf
            return float((votes * r["total_rating"] + 50 * mean) / (votes + 50))

        def released(r: dict[str, Any]) -> bool:
            release = _epoch_date(r.get("first_release_date"))
            return release is not None and release <= day

        def top(scored: Iterable[tuple[tuple[Any, ...], int]]) -> list[int]:
            return [g for _, g in sorted(scored)][: self.top_n]

        top_rated = top(((-weighted(r), -r["total_rating_count"], g), g) for g, r in live.items()
                        if (r.get("total_rating_count") or 0) >= 10 and weighted(r) > -math.inf)
        hyped = top(((-fact[g]["want_to_play"], _desc_nulls_last(fact[g]["visits"]), g), g) for g, r in live.items()
                    if g in fact and fact[g]["want_to_play"] is not None
                    and (_epoch_date(r.get("first_release_date")) or dt.date.min) > day)
        trending = []
        for g, r in live.items():
            if g not in fact or not released(r):
                continue
            signals = [fact[g][c] for c in ("playing_pct", "peak_players_24h_pct", "hours_watched_24h_pct")]
            present = [s for s in signals if s is not None]
            activity = sum(present) / len(present) if present else 0.0
            then = (before or {}).get(g, {}).get("visits_pct")
            now = fact[g]["visits_pct"]
            momentum = now - then if now is not None and then is not None else 0.0
            trending.append(((-(0.7 * activity + 0.3 * momentum), -activity, g), g))
        gems = top(((-weighted(r), -r["total_rating_count"], g), g) for g, r in live.items()
                   if released(r) and (r.get("total_rating") or 0) >= 80 and (r.get("total_rating_count") or 0) >= 5
                   and g in fact and fact[g]["visits_pct"] is not None and fact[g]["visits_pct"] <= 0.5)
        return {"mart_top_rated": top_rated, "mart_top_hyped": hyped, "mart_trending_now": top(trending),
                "mart_hidden_gems": gems}

    def expected(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every loaded table as PostgreSQL must hold it now, in the shape of `loaded`."""
        out: dict[str, list[tuple[Any, ...]]] = {"dim_games": sorted(
            (g, r.get("name"), r["updated_at"], self.deleted.get(g), tuple(sorted(set(_ids(r, "genres")))),
             tuple(self.names["genres"][x] for x in sorted(set(_ids(r, "genres"))) if x in self.names["genres"]),
             r.get("total_rating_count")) for g, r in self.games.items())}
        for entity in REFERENCES:
            out[f"dim_{entity}"] = sorted((i, r.get("name"), self.refs_deleted[entity].get(i))
                                          for i, r in self.refs[entity].items())
        for bridge, source in BRIDGE_FIELDS.items():
            out[bridge] = sorted({(g, x) for g, r in self.games.items() if g not in self.deleted
                                  for x in _ids(r, source)})
        purged = {(g, day) for g, day in self.deletions}

        def kept(game: int, day: dt.date) -> bool:  # not deleted by a date loaded on or after `day`
            return not any(g == game and when >= day for g, when in purged)

        out["fct_game_popularity"] = sorted(
            (day, g, *(_round(v[c]) for c in (*POPULARITY_COLUMNS.values(), *(f"{r}_pct" for r in RANKED_POPULARITY))))
            for day, fact in self.facts.items() for g, v in fact.items() if kept(g, day))
        for mart in RANKED_MARTS:
            out[mart] = sorted((day, rank, g) for day, marts in self.marts.items()
                               for rank, g in enumerate(marts[mart], 1) if kept(g, day))
        return out


def _desc_nulls_last(value: float | None) -> float:
    return math.inf if value is None else -value


def _round(value: float | None) -> float | None:
    """12 significant digits: what two exact computations of one double agree on, whatever printed it."""
    return None if value is None else float(f"{value:.12g}")


def _ids(record: dict[str, Any], source: str) -> list[int]:
    return [x for x in record.get(source) or [] if x is not None]


def _records(lake: Path, entity: str, day: dt.date) -> tuple[list[dict[str, Any]], str | None]:
    """The records of a raw partition as the sandbox served them, and its landing mode."""
    lines = raw_lines(lake, entity, day)
    if lines is None:
        return [], None
    manifest = json.loads((lake / "raw" / entity / f"dt={day}" / "_manifest.json").read_text())
    return [json.loads(line) for line in lines], manifest["mode"]


def loaded(url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """The loaded tables in the shape of `Truth.expected`."""
    values = ", ".join((*POPULARITY_COLUMNS.values(), *(f"{r}_pct" for r in RANKED_POPULARITY)))
    statements = [
        ("dim_games", sql.SQL("SELECT game_id, name, extract(epoch FROM updated_at)::bigint, deleted_at, genre_ids, "
                              "genre_names, total_rating_count FROM {}").format(_table(schema, "dim_games")), None),
        ("fct_game_popularity", sql.SQL("SELECT snapshot_date, game_id, " + values + " FROM {}").format(
            _table(schema, "fct_game_popularity")), None),
        *[(f"dim_{e}", sql.SQL("SELECT {}, name, deleted_at FROM {}").format(
            sql.Identifier(REFERENCE_IDS[e]), _table(schema, f"dim_{e}")), None) for e in REFERENCES],
        *[(bridge, sql.SQL("SELECT game_id, {} FROM {}").format(sql.Identifier(column), _table(schema, bridge)), None)
          for bridge, _, column, _ in BRIDGES],
        *[(m, sql.SQL("SELECT snapshot_date, rank, game_id FROM {}").format(_table(schema, m)), None)
          for m in RANKED_MARTS],
    ]
    out: dict[str, list[tuple[Any, ...]]] = {}
    for name, rows in _fetch(url, statements).items():
        found: list[Any] = list(rows)  # psycopg2's values: arrays as lists, numbers as floats
        if name == "dim_games":
            found = [(*r[:4], tuple(r[4]), tuple(r[5]), r[6]) for r in found]
        elif name == "fct_game_popularity":
            found = [(*r[:2], *(_round(v) for v in r[2:])) for r in found]
        out[name] = sorted(found)
    return out


def differences(expected: dict[str, list[tuple[Any, ...]]], found: dict[str, list[tuple[Any, ...]]],
                shown: int = 3) -> list[str]:
    """Per table that differs: how many rows are missing and extra, with a few of each."""
    problems = []
    for table in sorted(expected):
        want, got = set(expected[table]), set(found.get(table, []))
        if want != got:
            missing, extra = sorted(want - got, key=repr), sorted(got - want, key=repr)
            problems.append(f"{table}: {len(missing)} row(s) missing, e.g. {missing[:shown]}; "
                            f"{len(extra)} extra, e.g. {extra[:shown]}")
    return problems
