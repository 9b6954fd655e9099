"""Spark's edges: the schema a partition's files were written with, read from a footer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
from pyspark.sql import types as T

from core.lake import LocalLake
from jobs.datasets import Layer, dataset
from jobs.io import write_partition, written_schema
from jobs.spark_internals import garbage_collectors

DAY = dt.date(2026, 11, 20)


def test_the_written_schema_is_the_one_spark_wrote_even_when_it_drifted(spark, tmp_path: Path) -> None:
    """A column written with the wrong type shows as written (the gate's type rules rely on it)."""
    lake = LocalLake(tmp_path)
    ds = dataset(Layer.MARTS, "game_genres")
    drifted = T.StructType([T.StructField("game_id", T.StringType()), T.StructField("genre_id", T.LongType())])
    frame = spark.createDataFrame([("1", 5)], drifted)
    frame.coalesce(1).write.parquet(lake.uri_of(ds.partition_rel_path(DAY.isoformat())))
    found = written_schema(spark, lake, ds.partition_rel_path(DAY.isoformat()))
    assert found is not None
    assert [(f.name, f.dataType) for f in found.fields] == [("game_id", T.StringType()), ("genre_id", T.LongType())]


def test_an_empty_output_keeps_its_schema_and_a_foreign_file_or_no_file_gives_none(spark, tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    ds = dataset(Layer.MARTS, "game_modes")
    assert write_partition(spark.createDataFrame([], ds.schema), ds, lake, DAY) == 0
    assert written_schema(spark, lake, ds.partition_rel_path(DAY.isoformat())).names == ds.column_names
    assert written_schema(spark, lake, "marts/nothing/dt=2026-11-20") is None
    foreign = tmp_path / "marts" / "foreign" / "dt=2026-11-20"
    foreign.mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 1 AS game_id) TO '{foreign / 'part-0.parquet'}' (FORMAT parquet)")
    assert written_schema(spark, lake, "marts/foreign/dt=2026-11-20") is None


def test_a_local_session_runs_the_parallel_collector(spark) -> None:
    """The option is set at the JVM's launch (jobs/session.py): the JVM's own collectors say which won."""
    assert garbage_collectors(spark) == {"PS Scavenge", "PS MarkSweep"}
