"""Valid raw records -> staging tables: typed, flattened, one row per key. Pure DataFrame functions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.datasets import BRIDGES, REFERENCE_IDS


def latest_per_key(df: DataFrame, key: Sequence[str], newest_first: Sequence[Column], keys_unique: bool = False
                   ) -> DataFrame:
    """Keep one row per key: the first by `newest_first`, ties broken by the later file and line.

    `key` is in raw field names: the staging table's declared key as jobs/transform/entities.py
    maps it. `keys_unique` (the caller counted as many distinct keys as rows) skips the ranking,
    which would keep every row anyway: no shuffle of wide rows.
    """
    if keys_unique:
        return df
    order = [*newest_first, F.col("source_file").desc(), F.col("line_number").desc()]
    ranked = df.withColumn("_rank", F.row_number().over(Window.partitionBy(*key).orderBy(*order)))
    return ranked.where(F.col("_rank") == 1).drop("_rank")


def clean_ids(column: str) -> Column:
    """An id array as a set: no nulls, no duplicates, ascending; absent means empty."""
    return F.coalesce(F.array_sort(F.array_distinct(F.filter(F.col(column), lambda x: x.isNotNull()))),
                      F.array().cast("array<bigint>"))


def count_of(column: str) -> Column:
    """Array length, 0 when absent (size(null) is -1 under Spark's legacy default)."""
    return F.when(F.col(column).isNull(), F.lit(0)).otherwise(F.size(column))


def epoch_to_ts(column: str) -> Column:
    return F.timestamp_seconds(F.col(column))


def epoch_to_date(column: str) -> Column:
    return F.to_date(F.timestamp_seconds(F.col(column)))


def stage_games(valid: DataFrame, key: Sequence[str], keys_unique: bool = False) -> DataFrame:
    """One row per game id (latest updated_at), epoch seconds as dates/timestamps, id sets as arrays."""
    latest = latest_per_key(valid, key, [F.col("updated_at").desc_nulls_last()], keys_unique)
    return latest.select(
        F.col("id").alias("game_id"),
        "name",
        "slug",
        "summary",
        "storyline",
        epoch_to_date("first_release_date").alias("first_release_date"),
        "rating",
        "rating_count",
        "aggregated_rating",
        "aggregated_rating_count",
        "total_rating",
        "total_rating_count",
        F.col("game_type").cast("int").alias("game_type"),
        F.col("game_status").cast("int").alias("game_status"),
        F.col("parent_game").alias("parent_game_id"),
        F.col("version_parent").alias("version_parent_id"),
        F.col("cover").alias("cover_id"),
        *[clean_ids(field).alias(f"{id_col.removesuffix('_id')}_ids") for _, _, id_col, field in BRIDGES],
        count_of("keywords").alias("keyword_count"),
        count_of("screenshots").alias("screenshot_count"),
        count_of("websites").alias("website_count"),
        epoch_to_ts("updated_at").alias("updated_at"),
    )


def bridge(games: DataFrame, ids_column: str, id_column: str) -> DataFrame:
    """(game_id, ref_id) pairs of staged games: no duplicates, no nulls (the ids are clean sets)."""
    return games.select("game_id", F.explode(ids_column).alias(id_column))


def stage_reference(valid: DataFrame, entity: str, key: Sequence[str], keys_unique: bool = False) -> DataFrame:
    """A reference snapshot (platforms, genres, ...): one row per id, IGDB names kept."""
    latest = latest_per_key(valid, key, [F.col("updated_at").desc_nulls_last()], keys_unique)
    renames = {"id": REFERENCE_IDS[entity], "platform_family": "platform_family_id"}
    out = latest.drop("source_file", "line_number")
    for old, new in renames.items():
        if old in out.columns:
            out = out.withColumnRenamed(old, new)
    return out.withColumn("updated_at", epoch_to_ts("updated_at"))


def stage_popularity(valid: DataFrame, day: dt.date, key: Sequence[str], keys_unique: bool = False) -> DataFrame:
    """The day's popularity values keyed (game_id, popularity_type, snapshot_date): D is every row's
    snapshot_date, so `key` leaves it out."""
    newest_first = [F.col("calculated_at").desc_nulls_last(), F.col("updated_at").desc_nulls_last(), F.col("id").desc()]
    latest = latest_per_key(valid, key, newest_first, keys_unique)
    return latest.select(
        "game_id",
        F.col("popularity_type").cast("int").alias("popularity_type"),
        F.lit(day).cast("date").alias("snapshot_date"),
        "value",
        F.col("external_popularity_source").cast("int").alias("external_popularity_source"),
        epoch_to_ts("calculated_at").alias("calculated_at"),
    )
