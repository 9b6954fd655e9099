"""Parquet footers as the gate reads them: statistics must equal what the rows hold, and a rule
they prove must be one the rows pass.

The gate skips reading rows for a rule `proved_by_footers` accepts, so a wrong statistic or a
too-eager proof would pass bad data unseen: each is checked against Spark's own count over
files written to sit on the edges (nulls, NaN, empty and null lists, several files and row groups).
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from core.lake import LocalLake
from jobs.datasets import PARTITION, Layer, dataset
from jobs.footers import EPOCH, ColumnStats, FooterStats, footer_schema, footer_stats, partition_footers
from jobs.validate.rule_pass import measure_suite, proved_by_footers, rejected_rows, rows_in_repeated_keys
from jobs.validate.run import read_written
from tests.jobs.spark_jobs import jobs_run_by

DAY = dt.date(2026, 11, 20)
NOW = dt.datetime(2026, 11, 24, 9, 0)
REL = "marts/edges/dt=2026-11-20"

SCHEMA = T.StructType([
    T.StructField("game_id", T.LongType()),
    T.StructField("slot", T.IntegerType()),
    T.StructField("rating", T.DoubleType()),
    T.StructField("updated_at", T.TimestampType()),
    T.StructField("snapshot_date", T.DateType()),
    T.StructField("name", T.StringType()),
    T.StructField("genre_ids", T.ArrayType(T.LongType())),
])


def _written(spark, lake: LocalLake, rows, rel: str = REL, files: int = 2) -> FooterStats:
    """The rows written as Spark writes an output (several files, small row groups); their footers."""
    frame = spark.createDataFrame(rows, SCHEMA).repartition(files)
    frame.write.option("parquet.block.size", 1024).mode("overwrite").parquet(lake.uri_of(rel))
    names = lake.list_files(rel)
    footers = partition_footers(spark, lake, rel, names)
    schema = footer_schema(footers[0])
    assert schema is not None
    return footer_stats(footers, schema)


def _micros(at: dt.datetime) -> int:
    return (at - EPOCH) // dt.timedelta(microseconds=1)


def _utc(at: dt.datetime) -> dt.datetime:
    """A naive UTC time as PySpark must be given it (it reads a naive one in the local zone)."""
    return at.replace(tzinfo=dt.UTC)


def _random_rows(seed: int, count: int):
    rnd = random.Random(seed)
    def maybe(value, share=0.1):
        return None if rnd.random() < share else value
    return [(maybe(rnd.randint(-50, 10**9)), maybe(rnd.randint(-3, 3)), maybe(rnd.uniform(-1, 101)),
             maybe(_utc(dt.datetime(2026, 1, 1) + dt.timedelta(microseconds=rnd.randint(0, 10**13)))),
             maybe(DAY + dt.timedelta(days=rnd.randint(-9, 9))), maybe(f"game {rnd.random()}"),
             maybe([rnd.randint(1, 40) for _ in range(rnd.randint(1, 3))], 0.02)) for _ in range(count)]


@pytest.mark.parametrize("seed", [1, 2])
def test_footer_statistics_are_what_the_rows_hold(spark, tmp_path: Path, seed: int) -> None:
    lake = LocalLake(tmp_path)
    rows = _random_rows(seed, 3000)
    stats = _written(spark, lake, rows)
    frame = spark.read.parquet(lake.uri_of(REL))
    assert stats.rows == frame.count() == len(rows)
    assert len(partition_footers(spark, lake, REL, lake.list_files(REL))) > 1
    for name in ("game_id", "slot", "rating", "snapshot_date"):
        found = frame.agg(F.count_if(F.col(name).isNull()), F.min(name), F.max(name)).first()
        assert stats.columns[name] == ColumnStats(nulls=found[0], low=found[1], high=found[2], bounded=True), name
    # timestamps as microseconds since 1970 UTC: PySpark would collect them in the local zone
    found = frame.agg(F.count_if(F.col("updated_at").isNull()), F.unix_micros(F.min("updated_at")),
                      F.unix_micros(F.max("updated_at"))).first()
    micros = stats.columns["updated_at"]
    assert (micros.nulls, _micros(micros.low), _micros(micros.high), micros.bounded) == (*found, True)
    names = frame.agg(F.count_if(F.col("name").isNull())).first()[0]
    assert stats.columns["name"].nulls == names and not stats.columns["name"].bounded  # strings: nulls only


def test_a_list_counts_a_null_list_an_empty_one_and_a_null_element_as_nulls(spark, tmp_path: Path) -> None:
    """Why no null in a list's one leaf proves the list column never null (and nothing else)."""
    lake = LocalLake(tmp_path)
    full = [(1, 0, 1.0, None, DAY, "a", [1, 2]), (2, 0, 1.0, None, DAY, "b", [3])]
    assert _written(spark, lake, full, "marts/full/dt=2026-11-20").columns["genre_ids"].nulls == 0
    for i, odd in enumerate((None, [], [4, None])):
        stats = _written(spark, lake, [*full, (3, 0, 1.0, None, DAY, "c", odd)], f"marts/odd{i}/dt=2026-11-20")
        assert stats.columns["genre_ids"].nulls, odd
        assert not stats.columns["genre_ids"].bounded


def test_what_cannot_be_decoded_exactly_is_not_bounded(spark, tmp_path: Path) -> None:
    """A NaN, or a legacy INT96 timestamp (no statistics at all), leaves the rule to the rows."""
    lake = LocalLake(tmp_path)
    rows = [(1, 0, float("nan"), _utc(dt.datetime(2026, 1, 1)), DAY, "a", [1]), (2, 0, 5.0, None, DAY, "b", [2])]
    assert not _written(spark, lake, rows, files=1).columns["rating"].bounded
    spark.conf.set("spark.sql.parquet.outputTimestampType", "INT96")
    try:
        stats = _written(spark, lake, rows, "marts/legacy/dt=2026-11-20", files=1)
    finally:
        spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    assert not stats.columns["updated_at"].bounded


def test_an_empty_partition_proves_every_value_rule(spark, tmp_path: Path) -> None:
    stats = _written(spark, LocalLake(tmp_path), [], files=1)
    assert stats.rows == 0
    assert stats.columns["rating"] == ColumnStats(nulls=0, bounded=True)


RULES = [
    gxe.ExpectColumnValuesToBeBetween(column="rating", min_value=0, max_value=100),
    gxe.ExpectColumnValuesToBeBetween(column="rating", min_value=0, max_value=100, strict_min=True, strict_max=True),
    gxe.ExpectColumnValuesToBeBetween(column="slot", min_value=0),
    gxe.ExpectColumnValuesToBeBetween(column="updated_at", max_value=NOW),
    gxe.ExpectColumnValuesToBeBetween(column="snapshot_date", max_value=NOW),  # a date against a timestamp
    gxe.ExpectColumnValuesToBeInSet(column="snapshot_date", value_set=[DAY]),
    gxe.ExpectColumnValuesToBeInSet(column=PARTITION, value_set=[DAY]),
    gxe.ExpectColumnValuesToNotBeNull(column="game_id"),
    gxe.ExpectColumnValuesToNotBeNull(column="name"),
    gxe.ExpectColumnValuesToNotBeNull(column="genre_ids"),
    gxe.ExpectColumnValuesToBeNull(column="slot"),
]
CLEAN = [(1, 0, 0.0, _utc(NOW), DAY, "a", [1]), (2, 3, 100.0, _utc(dt.datetime(2020, 1, 1)), DAY, "b", [2, 3])]
# each row breaks some rules: a bound hit, a NaN, a second in the future, another date, nulls
EDGES = [
    (1, -1, 0.0, _utc(NOW + dt.timedelta(seconds=1)), DAY, "a", [1]),
    (2, 0, 100.5, None, DAY - dt.timedelta(days=1), None, None),
    (None, 2, float("nan"), _utc(dt.datetime(2020, 1, 1)), None, "c", []),
    (4, None, 50.0, None, DAY, "d", [None]),
]


@pytest.mark.parametrize("rows", [CLEAN, EDGES, [*CLEAN, *EDGES[:1]], [*CLEAN, *EDGES[1:2]], [*CLEAN, *EDGES[2:]]])
def test_a_rule_the_footers_prove_is_one_the_rows_pass(spark, tmp_path: Path, rows) -> None:
    """Soundness: every rule proved passes when counted on the rows. And on clean rows the footers
    prove every passing rule on a column they can decode (so the proof is not vacuously never taken)."""
    lake = LocalLake(tmp_path)
    ds = dataset(Layer.MARTS, "game_genres")  # any declared output: only its folder is used here
    rel = ds.partition_rel_path(DAY.isoformat())
    _written(spark, lake, rows, rel)
    written = read_written(spark, lake, ds, DAY)
    assert written is not None and written.footers is not None
    suite = gx.ExpectationSuite(name="edges", expectations=RULES)
    _, counted = measure_suite(suite, written.frame)
    for rule, measure in zip(RULES, counted, strict=True):
        if proved_by_footers(rule, written.footers):
            assert measure.success and measure.unexpected_count == 0, rule.configuration.kwargs
    if rows is CLEAN:
        unproved = [r.configuration.kwargs["column"] for r in RULES if not proved_by_footers(r, written.footers)]
        # the strict range fails on the rows too (0 and 100); a date against a timestamp bound; a
        # 'slot' that is not all null
        assert unproved == ["rating", "snapshot_date", "slot"]
    assert measure_suite(suite, written.frame, footers=written.footers)[1] == counted


def test_rules_the_footers_prove_read_no_rows(spark, tmp_path: Path) -> None:
    """A suite whose every rule the footers prove (rows and key bounds included) costs only the
    bitmap count of its key; without the footers it also runs the aggregate job."""
    lake = LocalLake(tmp_path)
    ds = dataset(Layer.MARTS, "game_genres")
    _written(spark, lake, CLEAN, ds.partition_rel_path(DAY.isoformat()))
    written = read_written(spark, lake, ds, DAY)
    assert written is not None
    proved = [r for r in RULES if proved_by_footers(r, written.footers) and rejected_rows(r) is not None]
    suite = gx.ExpectationSuite(name="proved", expectations=[
        *proved, gxe.ExpectColumnValuesToBeUnique(column="game_id"), gxe.ExpectTableRowCountToBeBetween(min_value=1)])
    (rows, with_footers), jobs = jobs_run_by(spark, lambda: measure_suite(suite, written.frame,
                                                                          footers=written.footers))
    (_, without), jobs_without = jobs_run_by(spark, lambda: measure_suite(suite, written.frame))
    assert rows == len(CLEAN) and with_footers == without and all(m.success for m in without)
    bitmap_alone = jobs_run_by(spark, lambda: rows_in_repeated_keys(written.frame, ["game_id"], [(1, 2)]))[1]
    one_aggregate = jobs_run_by(spark, lambda: written.frame.agg(F.count(F.lit(1))).first())[1]
    assert jobs == bitmap_alone and jobs_without == bitmap_alone + one_aggregate


def test_the_proof_needs_every_part_of_the_statistics() -> None:
    """Unknown nulls, unbounded values or a missing column prove nothing."""
    def footers(**stats: ColumnStats) -> FooterStats:
        return FooterStats(rows=10, columns=stats)
    not_null = gxe.ExpectColumnValuesToNotBeNull(column="x")
    between = gxe.ExpectColumnValuesToBeBetween(column="x", min_value=0, max_value=100)
    assert proved_by_footers(not_null, footers(x=ColumnStats(nulls=0)))
    assert not proved_by_footers(not_null, footers(x=ColumnStats(nulls=None)))
    assert not proved_by_footers(not_null, footers(y=ColumnStats(nulls=0)))
    assert not proved_by_footers(not_null, None)
    assert proved_by_footers(between, footers(x=ColumnStats(nulls=3, low=0, high=100, bounded=True)))
    assert not proved_by_footers(between, footers(x=ColumnStats(nulls=3, low=0, high=100, bounded=False)))
    assert not proved_by_footers(between, footers(x=ColumnStats(nulls=0, low=-1e-9, high=100, bounded=True)))
    assert proved_by_footers(between, footers(x=ColumnStats(nulls=10, bounded=True)))  # all null: GX ignores nulls
