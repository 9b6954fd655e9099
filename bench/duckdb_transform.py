"""The transform's work in DuckDB SQL: the baseline bench-transform measures Spark against.

Same raw files, same outputs: typed staging with dedupe to the latest version (the staging
tables of games and popularity written too, as the Spark job writes them), five bridges,
reference dimensions, the popularity fact (pivot + percentile ranks), the catalogue with names
resolved, the four marketing marts, all written as parquet. Not done here: per-line quarantine
reasons (DuckDB's JSON reader has no line-level error column) and the catalogue's row
fingerprints, which make the baseline a little cheaper than the Spark job. Bench-only: never
imported by the pipeline.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from jobs.datasets import BRIDGES, POPULARITY_COLUMNS, RANKED_POPULARITY, REFERENCE_COLUMNS
from jobs.transform.marts import GEM_MAX_VISITS_PCT, GEM_MIN_RATING, GEM_MIN_VOTES, MIN_VOTES, PRIOR_VOTES

_GAMES = {
    "id": "BIGINT", "name": "VARCHAR", "slug": "VARCHAR", "summary": "VARCHAR", "storyline": "VARCHAR",
    "first_release_date": "BIGINT", "rating": "DOUBLE", "rating_count": "BIGINT", "aggregated_rating": "DOUBLE",
    "aggregated_rating_count": "BIGINT", "total_rating": "DOUBLE", "total_rating_count": "BIGINT",
    "game_type": "BIGINT", "game_status": "BIGINT", "parent_game": "BIGINT", "version_parent": "BIGINT",
    "genres": "BIGINT[]", "themes": "BIGINT[]", "keywords": "BIGINT[]", "platforms": "BIGINT[]",
    "game_modes": "BIGINT[]", "multiplayer_modes": "BIGINT[]", "player_perspectives": "BIGINT[]",
    "involved_companies": "BIGINT[]", "cover": "BIGINT", "screenshots": "BIGINT[]", "external_games": "BIGINT[]",
    "release_dates": "BIGINT[]", "websites": "BIGINT[]", "updated_at": "BIGINT",
}
_POPULARITY = {"id": "BIGINT", "game_id": "BIGINT", "popularity_type": "BIGINT",
               "external_popularity_source": "BIGINT", "value": "DOUBLE", "calculated_at": "BIGINT",
               "updated_at": "BIGINT"}
_REFERENCE = {
    "platforms": {"id": "BIGINT", "name": "VARCHAR", "slug": "VARCHAR", "abbreviation": "VARCHAR",
                  "generation": "BIGINT", "platform_family": "BIGINT", "updated_at": "BIGINT"},
    "popularity_types": {"id": "BIGINT", "name": "VARCHAR", "external_popularity_source": "BIGINT",
                         "updated_at": "BIGINT"},
}
_NAMED = {"id": "BIGINT", "name": "VARCHAR", "slug": "VARCHAR", "updated_at": "BIGINT"}


def _read(raw: Path, entity: str, day: dt.date, columns: dict[str, str]) -> str:
    files = sorted(str(p) for p in (raw / "raw" / entity / f"dt={day}").glob("part-*.jsonl"))
    cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
    return f"read_json({files!r}, format='newline_delimited', columns={cols})"


def _ids(field: str) -> str:
    return f"coalesce(list_sort(list_distinct(list_filter({field}, lambda x: x IS NOT NULL))), [])"


def _copied(con: duckdb.DuckDBPyConnection, statement: str) -> int:
    """Run a COPY ... TO statement; the rows it wrote (DuckDB answers a COPY with its row count)."""
    found = con.execute(statement).fetchone()
    if found is None:
        raise RuntimeError(f"DuckDB gave no row count for: {statement[:80]}")
    return int(found[0])


def run(raw: Path, out: Path, day: dt.date, threads: int = 2) -> dict[str, int]:
    """Do the whole transform for `day`; row counts of the outputs."""
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET threads={threads}; SET TimeZone='UTC'; SET preserve_insertion_order=false")
    d = f"DATE '{day}'"
    ts = "make_timestamp({} * 1000000)"

    bridge_cols = ", ".join(f"{_ids(field)} AS {id_col.removesuffix('_id')}_ids" for _, _, id_col, field in BRIDGES)
    con.execute(f"""CREATE TABLE games AS
        SELECT id AS game_id, name, slug, summary, storyline,
               CAST({ts.format('first_release_date')} AS DATE) AS first_release_date,
               rating, rating_count, aggregated_rating, aggregated_rating_count, total_rating, total_rating_count,
               CAST(game_type AS INT) AS game_type, CAST(game_status AS INT) AS game_status,
               parent_game AS parent_game_id, version_parent AS version_parent_id, cover AS cover_id,
               {bridge_cols},
               coalesce(len(keywords), 0) AS keyword_count, coalesce(len(screenshots), 0) AS screenshot_count,
               coalesce(len(websites), 0) AS website_count, {ts.format('updated_at')} AS updated_at
        FROM {_read(raw, 'games', day, _GAMES)}
        WHERE id IS NOT NULL AND id > 0 AND updated_at IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_at DESC) = 1""")
    counts = {"games": _copied(con, f"COPY games TO '{out}/staging_games.parquet' (FORMAT parquet)")}

    for entity, columns in REFERENCE_COLUMNS.items():
        raw_cols = _REFERENCE.get(entity, _NAMED)
        id_col = columns[0][0]
        extra = ", ".join(c for c in raw_cols if c not in ("id", "updated_at", "platform_family"))
        family = ", platform_family AS platform_family_id" if entity == "platforms" else ""
        con.execute(f"""CREATE TABLE ref_{entity} AS
            SELECT id AS {id_col}, {extra}{family}, {ts.format('updated_at')} AS updated_at
            FROM {_read(raw, entity, day, raw_cols)} WHERE id IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_at DESC) = 1""")
        con.execute(f"COPY ref_{entity} TO '{out}/dim_{entity}.parquet' (FORMAT parquet)")

    for table, _entity, id_col, _ in BRIDGES:
        stem = id_col.removesuffix("_id")
        counts[table] = _copied(con, f"""COPY (SELECT game_id, unnest({stem}_ids) AS {id_col} FROM games)
            TO '{out}/{table}.parquet' (FORMAT parquet)""")

    names = ", ".join(
        f"list_filter(list_transform(g.{id_col.removesuffix('_id')}_ids, lambda x: m{i}.m[x]), "
        f"lambda n: n IS NOT NULL) AS {id_col.removesuffix('_id')}_names"
        for i, (_, _, id_col, _) in enumerate(BRIDGES))
    maps = ", ".join(f"(SELECT map(list({id_col}), list(name)) AS m FROM ref_{entity}) m{i}"
                     for i, (_, entity, id_col, _) in enumerate(BRIDGES))
    con.execute(f"CREATE TABLE dim_games AS SELECT g.*, {names} FROM games g, {maps}")
    counts["dim_games"] = _copied(con, f"COPY dim_games TO '{out}/dim_games.parquet' (FORMAT parquet)")

    pivot = ", ".join(f"max(value) FILTER (WHERE popularity_type = {t}) AS {c}" for t, c in POPULARITY_COLUMNS.items())
    pct = ", ".join(f"CASE WHEN {c} IS NOT NULL THEN percent_rank() OVER (PARTITION BY {c} IS NULL "
                    f"ORDER BY {c}, game_id) END AS {c}_pct" for c in RANKED_POPULARITY)
    con.execute(f"""CREATE TABLE pop AS
        SELECT game_id, CAST(popularity_type AS INT) AS popularity_type, {d} AS snapshot_date, value,
               CAST(external_popularity_source AS INT) AS external_popularity_source,
               {ts.format('calculated_at')} AS calculated_at
        FROM {_read(raw, 'popularity_primitives', day, _POPULARITY)}
        WHERE id IS NOT NULL AND game_id IS NOT NULL AND popularity_type IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY game_id, popularity_type
                                   ORDER BY calculated_at DESC, updated_at DESC, id DESC) = 1""")
    counts["popularity_primitives"] = _copied(con,
        f"COPY pop TO '{out}/staging_popularity_primitives.parquet' (FORMAT parquet)")
    con.execute(f"""CREATE TABLE fct AS
        WITH wide AS (SELECT game_id, {pivot} FROM pop GROUP BY game_id)
        SELECT {d} AS snapshot_date, *, {pct} FROM wide""")
    counts["fct_game_popularity"] = _copied(con,
        f"COPY fct TO '{out}/fct_game_popularity.parquet' (FORMAT parquet)")

    mean = "(SELECT avg(total_rating) FROM dim_games WHERE total_rating IS NOT NULL AND total_rating_count > 0)"
    weighted = f"(total_rating_count * total_rating + {PRIOR_VOTES} * {mean}) / (total_rating_count + {PRIOR_VOTES})"
    marts = {
        "mart_top_rated": f"""SELECT game_id, name, total_rating, total_rating_count, {weighted} AS weighted_rating
            FROM dim_games WHERE total_rating_count >= {MIN_VOTES} AND total_rating IS NOT NULL
            ORDER BY weighted_rating DESC, total_rating_count DESC, game_id""",
        "mart_top_hyped": f"""SELECT g.game_id, g.name, g.first_release_date, f.want_to_play, f.visits,
                   f.want_to_play_pct AS hype_score
            FROM dim_games g JOIN fct f USING (game_id)
            WHERE g.first_release_date > {d} AND f.want_to_play IS NOT NULL
            ORDER BY f.want_to_play DESC, f.visits DESC NULLS LAST, g.game_id""",
        "mart_trending_now": f"""SELECT g.game_id, g.name, a.activity_score, 0.0 AS momentum,
                   0.7 * a.activity_score AS trend_score
            FROM dim_games g JOIN (
                SELECT game_id, coalesce((coalesce(playing_pct, 0) + coalesce(peak_players_24h_pct, 0)
                       + coalesce(hours_watched_24h_pct, 0)) / nullif((playing_pct IS NOT NULL)::INT
                       + (peak_players_24h_pct IS NOT NULL)::INT + (hours_watched_24h_pct IS NOT NULL)::INT, 0),
                       0.0) AS activity_score FROM fct) a USING (game_id)
            WHERE g.first_release_date <= {d}
            ORDER BY trend_score DESC, activity_score DESC, g.game_id""",
        "mart_hidden_gems": f"""SELECT g.game_id, g.name, g.total_rating, g.total_rating_count, f.visits_pct,
                   {weighted} AS weighted_rating
            FROM dim_games g JOIN fct f USING (game_id)
            WHERE g.first_release_date <= {d} AND g.total_rating >= {GEM_MIN_RATING}
              AND g.total_rating_count >= {GEM_MIN_VOTES} AND f.visits_pct <= {GEM_MAX_VISITS_PCT}
            ORDER BY weighted_rating DESC, g.total_rating_count DESC, g.game_id""",
    }
    for name, query in marts.items():
        counts[name] = _copied(con, f"""COPY (SELECT {d} AS snapshot_date, row_number() OVER () AS rank, *
            FROM ({query} LIMIT 100)) TO '{out}/{name}.parquet' (FORMAT parquet)""")
    con.close()
    return counts
