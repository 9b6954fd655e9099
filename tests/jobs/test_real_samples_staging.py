"""Staging of the real IGDB responses (../shared/igdb-samples) against a plain-Python reading of them.

The expected rows are built here independently from the JSON (not with the code under test),
then compared with chispa: optional fields absent in IGDB's answer become nulls, unicode names
survive, arrays become clean sets, exponent-form decimals stay exact.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from chispa import assert_df_equality

from jobs.datasets import Layer, dataset
from jobs.io import LINES_SCHEMA, conform
from jobs.schemas import RAW_SCHEMAS
from jobs.transform.entities import TRANSFORMS
from jobs.transform.parse import parse_lines, quarantine_rows, valid_records
from tests.conftest import SAMPLES

DAY = dt.date(2026, 11, 20)
FILES = {
    "games": "yipyiphouray__igdb-rag-recommender__data_raw_games.json",
    "platforms": "yipyiphouray__igdb-rag-recommender__data_raw_platforms.json",
    "popularity_primitives": "yipyiphouray__igdb-rag-recommender__data_raw_popularity_primitives.json",
}


def _sample(entity: str) -> list[dict[str, Any]]:
    path = SAMPLES / FILES[entity]
    if not path.is_file():
        pytest.fail(f"the shared IGDB samples are missing: expected {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def _valid(spark, entity: str, records: list[dict[str, Any]]):
    lines = [("sample.jsonl", i + 1, json.dumps(r, ensure_ascii=False)) for i, r in enumerate(records)]
    parsed = parse_lines(spark.createDataFrame(lines, LINES_SCHEMA), RAW_SCHEMAS[entity],
                         TRANSFORMS[entity].required)
    assert quarantine_rows(parsed, entity).count() == 0, "a real IGDB record was quarantined"
    return valid_records(parsed)


def _utc(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None)


def _set(values: list[int] | None) -> list[int]:
    return sorted(set(values or []))


def test_real_games_stage_exactly(spark) -> None:
    records = _sample("games")
    ds = dataset(Layer.STAGING, "games")
    expected = [
        (g["id"], g.get("name"), g.get("slug"), g.get("summary"), g.get("storyline"),
         _utc(g["first_release_date"]).date() if "first_release_date" in g else None,
         g.get("rating"), g.get("rating_count"), g.get("aggregated_rating"), g.get("aggregated_rating_count"),
         g.get("total_rating"), g.get("total_rating_count"), g.get("game_type"), g.get("game_status"),
         g.get("parent_game"), g.get("version_parent"), g.get("cover"),
         _set(g.get("platforms")), _set(g.get("genres")), _set(g.get("themes")), _set(g.get("game_modes")),
         _set(g.get("player_perspectives")), len(g.get("keywords", [])), len(g.get("screenshots", [])),
         len(g.get("websites", [])), _utc(g["updated_at"]))
        for g in records
    ]
    actual = conform(TRANSFORMS["games"].staged(_valid(spark, "games", records), DAY), ds)
    assert_df_equality(actual, spark.createDataFrame(expected, ds.schema), ignore_row_order=True,
                       ignore_nullable=True)
    names = {r["name"] for r in actual.select("name").collect()}
    assert "God of War Ragnarök" in names and "Pokémon Emerald Version" in names
    assert actual.where("storyline IS NULL").count() == sum(1 for g in records if "storyline" not in g) > 100


def test_real_platforms_keep_their_missing_fields_as_nulls(spark) -> None:
    records = _sample("platforms")
    ds = dataset(Layer.STAGING, "ref_platforms")
    expected = [(p["id"], p.get("name"), p.get("slug"), p.get("abbreviation"), p.get("generation"),
                 p.get("platform_family"), None) for p in records]
    actual = conform(TRANSFORMS["platforms"].staged(_valid(spark, "platforms", records), DAY), ds)
    assert_df_equality(actual, spark.createDataFrame(expected, ds.schema), ignore_row_order=True,
                       ignore_nullable=True)
    assert actual.where("abbreviation IS NULL").count() == 220 - 126  # as SOURCES.md counts


def test_real_popularity_values_stay_exact(spark) -> None:
    records = _sample("popularity_primitives")
    ds = dataset(Layer.STAGING, "popularity_primitives")
    latest: dict[tuple[int, int], dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: (r["calculated_at"], r["updated_at"], r["id"])):
        latest[(r["game_id"], r["popularity_type"])] = r
    expected = [(r["game_id"], r["popularity_type"], DAY, r["value"], r.get("external_popularity_source"),
                 _utc(r["calculated_at"])) for r in latest.values()]
    actual = conform(TRANSFORMS["popularity_primitives"].staged(_valid(spark, "popularity_primitives", records), DAY),
                     ds)
    assert_df_equality(actual, spark.createDataFrame(expected, ds.schema), ignore_row_order=True,
                       ignore_nullable=True)
    assert actual.where("value = 8.958727144e-05").count() > 0
