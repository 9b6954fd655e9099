"""Staging transforms: dedupe to the latest version, typed columns, clean id sets, bridges."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

from jobs.datasets import Layer, dataset
from jobs.io import conform
from jobs.schemas import RAW_SCHEMAS
from jobs.spark_internals import optimized_plan
from jobs.transform.entities import TRANSFORMS
from jobs.transform.staging import bridge

DAY = dt.date(2026, 11, 20)

META = [T.StructField("source_file", T.StringType(), False), T.StructField("line_number", T.LongType(), False)]
GAME_FIELDS = T.StructType([*META, T.StructField("id", T.LongType()), T.StructField("name", T.StringType()),
                            T.StructField("first_release_date", T.LongType()),
                            T.StructField("platforms", T.ArrayType(T.LongType())),
                            T.StructField("genres", T.ArrayType(T.LongType())),
                            T.StructField("keywords", T.ArrayType(T.LongType())),
                            T.StructField("updated_at", T.LongType())])


def stage_games(valid, keys_unique=False):
    return TRANSFORMS["games"].staged(valid, DAY, keys_unique)


def _games(spark, rows):
    df = spark.createDataFrame(rows, GAME_FIELDS)
    # the other raw game fields, absent in these rows, as IGDB omits them
    for name, kind in (("slug", "string"), ("summary", "string"), ("storyline", "string"), ("rating", "double"),
                       ("rating_count", "bigint"), ("aggregated_rating", "double"),
                       ("aggregated_rating_count", "bigint"), ("total_rating", "double"),
                       ("total_rating_count", "bigint"), ("game_type", "bigint"), ("game_status", "bigint"),
                       ("parent_game", "bigint"), ("version_parent", "bigint"), ("cover", "bigint"),
                       ("themes", "array<bigint>"), ("game_modes", "array<bigint>"),
                       ("player_perspectives", "array<bigint>"), ("screenshots", "array<bigint>"),
                       ("websites", "array<bigint>")):
        from pyspark.sql import functions as F

        df = df.withColumn(name, F.lit(None).cast(kind))
    return df


def test_latest_updated_at_wins_and_ties_go_to_the_later_line(spark) -> None:
    staged = stage_games(_games(spark, [
        ("raw/part-00000.jsonl", 1, 7, "old", None, None, None, None, 100),
        ("raw/part-00001.jsonl", 5, 7, "new", None, None, None, None, 200),
        ("raw/part-00000.jsonl", 2, 8, "first of a tie", None, None, None, None, 300),
        ("raw/part-00000.jsonl", 9, 8, "last of a tie", None, None, None, None, 300),
    ]))
    assert sorted((r["game_id"], r["name"]) for r in staged.collect()) == [(7, "new"), (8, "last of a tie")]


def test_unique_keys_skip_the_ranking_with_the_same_rows(spark) -> None:
    """The transform passes keys_unique when it counted as many distinct ids as valid lines."""
    raw = _games(spark, [("f", 1, 7, "a", None, [6], None, None, 100), ("g", 2, 8, "b", None, None, [1], None, 300)])
    assert_df_equality(stage_games(raw, keys_unique=True), stage_games(raw), ignore_row_order=True)
    assert "Window" not in optimized_plan(stage_games(raw, keys_unique=True))
    assert "Window" in optimized_plan(stage_games(raw))


def test_games_are_typed_and_id_sets_are_clean(spark) -> None:
    staged = stage_games(_games(spark, [
        ("f", 1, 1, "Ōkami", 1_379_376_000, [48, None, 6, 48], None, [1, 2, 3], 1_780_000_000),
    ]))
    row = staged.collect()[0]
    assert row["first_release_date"] == dt.date(2013, 9, 17)
    assert row["updated_at"] == dt.datetime(2026, 5, 28, 20, 26, 40)
    assert row["platform_ids"] == [6, 48]
    assert row["genre_ids"] == []  # absent array: empty set, never null
    assert (row["keyword_count"], row["screenshot_count"], row["website_count"]) == (3, 0, 0)
    assert row["name"] == "Ōkami"
    conformed = conform(staged, dataset(Layer.STAGING, "games"))
    assert conformed.schema.names == dataset(Layer.STAGING, "games").column_names


def test_bridge_has_one_row_per_pair_and_no_nulls(spark) -> None:
    staged = stage_games(_games(spark, [
        ("f", 1, 1, "a", None, [6, 6, None, 48], None, None, 1),
        ("f", 2, 2, "b", None, None, None, None, 1),
    ]))
    expected = spark.createDataFrame([(1, 6), (1, 48)], "game_id bigint, platform_id bigint")
    assert_df_equality(bridge(staged, "platform_ids", "platform_id"), expected, ignore_row_order=True,
                       ignore_nullable=True)


def test_reference_snapshot_is_renamed_and_deduped(spark) -> None:
    schema = T.StructType([*META, T.StructField("id", T.LongType()), T.StructField("name", T.StringType()),
                           T.StructField("slug", T.StringType()), T.StructField("abbreviation", T.StringType()),
                           T.StructField("generation", T.LongType()), T.StructField("platform_family", T.LongType()),
                           T.StructField("updated_at", T.LongType())])
    valid = spark.createDataFrame([("f", 1, 6, "PC (old)", "win", "PC", None, None, 5),
                                   ("f", 2, 6, "PC (Microsoft Windows)", "win", "PC", None, None, 9),
                                   ("f", 3, 48, "PlayStation 4", "ps4", "PS4", 8, 1, 9)], schema)
    staged = conform(TRANSFORMS["platforms"].staged(valid, DAY), dataset(Layer.STAGING, "ref_platforms"))
    rows = sorted((r["platform_id"], r["name"], r["platform_family_id"], r["generation"]) for r in staged.collect())
    assert rows == [(6, "PC (Microsoft Windows)", None, None), (48, "PlayStation 4", 1, 8)]


def test_popularity_keeps_the_latest_value_per_game_and_type(spark) -> None:
    schema = T.StructType([*META, T.StructField("id", T.LongType()), T.StructField("game_id", T.LongType()),
                           T.StructField("popularity_type", T.LongType()),
                           T.StructField("external_popularity_source", T.LongType()),
                           T.StructField("value", T.DoubleType()), T.StructField("calculated_at", T.LongType()),
                           T.StructField("updated_at", T.LongType())])
    valid = spark.createDataFrame([("f", 1, 10, 7, 1, 121, 0.1, 100, 101),
                                   ("f", 2, 11, 7, 1, 121, 0.2, 200, 201),
                                   ("f", 3, 12, 7, 2, 121, 8.958727144e-05, 200, 201)], schema)
    staged = TRANSFORMS["popularity_primitives"].staged(valid, DAY)
    rows = sorted((r["game_id"], r["popularity_type"], r["value"], r["snapshot_date"]) for r in staged.collect())
    assert rows == [(7, 1, 0.2, DAY), (7, 2, 8.958727144e-05, DAY)]


def _raw_row(schema: T.StructType, start: int) -> dict:
    """A valid raw record: every whole-number field a value of its own, counted from `start`."""
    kinds = {T.LongType: lambda i: start + i, T.DoubleType: float, T.StringType: str, T.ArrayType: lambda _: []}
    return {f.name: next(make(i) for kind, make in kinds.items() if isinstance(f.dataType, kind))
            for i, f in enumerate(schema.fields)}


@pytest.mark.parametrize("entity", list(TRANSFORMS))
def test_each_entity_dedupes_on_its_staging_key_taken_from_the_raw_fields_declared(spark, entity: str) -> None:
    """The declaration's raw names against what its staging function does: two versions of one
    record (the same dedupe key) become one row, a record with another key stays, and each staged
    key column holds the value of the raw field it is declared to come from (D where none)."""
    transform = TRANSFORMS[entity]
    schema = RAW_SCHEMAS[entity]
    first = _raw_row(schema, 10)
    newer = {**first, **{f: first[f] + 1 for f in ("updated_at", "calculated_at") if f in first}}
    if "id" not in transform.dedupe_key:
        newer["id"] = first["id"] + 100  # another record of the same key
    other = {**first, **{f: first[f] + 1000 for f in transform.dedupe_key}}
    rows = [("f", n, *(r[f] for f in schema.fieldNames())) for n, r in enumerate((first, newer, other), 1)]
    staged = transform.staged(spark.createDataFrame(rows, T.StructType([*META, *schema.fields])), DAY).collect()

    def key_of(raw: dict) -> tuple:
        return tuple(DAY if (field := transform.raw_names.get(c, c)) is None else raw[field]
                     for c in transform.staging.key)

    assert sorted(tuple(row[c] for c in transform.staging.key) for row in staged) == sorted(
        [key_of(newer), key_of(other)])
