"""The load plan: when only the changed catalogue rows may be sent, and the row comparison behind it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg2
import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

from core.lake import LocalLake
from jobs.datasets import Layer, dataset
from jobs.fingerprint import FINGERPRINT, with_fingerprint
from jobs.io import read_fingerprinted, read_partition, write_partition
from jobs.load.plan import partition_digest, plan_load, rows_not_in
from jobs.load.warehouse import ensure_schema, record_loaded_partition
from jobs.spark_internals import executed_plan

D1, D2, D3 = dt.date(2026, 11, 19), dt.date(2026, 11, 20), dt.date(2026, 11, 21)
GAMES = dataset(Layer.MARTS, "dim_games")
GENRES = dataset(Layer.MARTS, "game_genres")


def _write(lake: LocalLake, day: dt.date, *names: str) -> str:
    """A partition with these data files (the plan looks at names only), plus Spark's hidden ones."""
    folder = lake.path(GAMES.partition_rel_path(day.isoformat()))
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*names, ".part.crc", "_SUCCESS"):
        (folder / name).write_bytes(b"x")
    digest = partition_digest(lake, GAMES, day)
    assert digest is not None
    return digest


@pytest.fixture()
def planner(pg_url, pg_schema, tmp_path: Path):
    conn = psycopg2.connect(pg_url)
    ensure_schema(conn, pg_schema)
    lake = LocalLake(tmp_path / "lake")

    def record(ds, day: dt.date, digest: str) -> None:
        with conn, conn.cursor() as cur:
            cur.execute(record_loaded_partition(pg_schema), {"mart": ds.name, "dt": day, "digest": digest,
                                                             "mode": "full", "staged": 1})

    def plan(ds, day: dt.date, mode: str = "auto"):
        digest = partition_digest(lake, ds, day) or "none"
        with conn, conn.cursor() as cur:
            return plan_load(cur, pg_schema, lake, ds, day, digest, mode)

    yield lake, record, plan
    conn.close()


def test_the_digest_changes_when_a_date_is_rewritten_and_ignores_hidden_files(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    first = _write(lake, D1, "part-0-aaa.parquet")
    assert partition_digest(lake, GAMES, D1) == first
    (lake.path(GAMES.partition_rel_path(D1.isoformat())) / ".another.crc").write_bytes(b"y")
    assert partition_digest(lake, GAMES, D1) == first
    (lake.path(GAMES.partition_rel_path(D1.isoformat())) / "part-0-aaa.parquet").rename(
        lake.path(GAMES.partition_rel_path(D1.isoformat())) / "part-0-bbb.parquet")
    assert partition_digest(lake, GAMES, D1) not in (first, None)
    assert partition_digest(lake, GAMES, D2) is None


def test_the_plan_sends_a_delta_only_when_the_table_provably_holds_the_base(planner) -> None:
    lake, record, plan = planner
    d1 = _write(lake, D1, "part-0-d1.parquet")
    _write(lake, D2, "part-0-d2.parquet")
    assert (plan(GAMES, D2).mode, plan(GAMES, D2).why) == ("full", "first load of this mart")

    record(GAMES, D1, d1)
    delta = plan(GAMES, D2)
    assert (delta.mode, delta.base) == ("delta", D1)
    assert plan(GAMES, D2, mode="full").mode == "full"
    assert plan(GAMES, D1).mode == "unchanged"

    _write(lake, D1, "part-1-d1-again.parquet")  # D1 transformed again since its load
    assert plan(GAMES, D2).mode == "full" and "no longer" in plan(GAMES, D2).why
    assert plan(GAMES, D1).mode == "full"


def test_the_plan_never_takes_a_delta_against_a_date_on_or_after_d(planner) -> None:
    lake, record, plan = planner
    record(GAMES, D3, _write(lake, D3, "part-0-d3.parquet"))
    _write(lake, D2, "part-0-d2.parquet")
    older = plan(GAMES, D2)
    assert older.mode == "full" and f"dt={D3} was loaded already" in older.why
    record(GAMES, D2, "an older version of D2")
    assert plan(GAMES, D2).mode == "full"


def test_bridges_are_never_a_delta_but_skip_a_partition_already_loaded(planner) -> None:
    lake, record, plan = planner
    folder = lake.path(GENRES.partition_rel_path(D2.isoformat()))
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(b"x")
    record(GENRES, D1, "whatever D1 was")
    assert plan(GENRES, D2).mode == "full"
    record(GENRES, D2, partition_digest(lake, GENRES, D2) or "")
    assert plan(GENRES, D2).mode == "unchanged"


ROW = T.StructType([
    T.StructField("game_id", T.LongType(), False),
    T.StructField("rating", T.DoubleType()),
    T.StructField("aggregated_rating", T.DoubleType()),
    T.StructField("genre_ids", T.ArrayType(T.LongType()), False),
    T.StructField("theme_ids", T.ArrayType(T.LongType()), False),
    T.StructField("name", T.StringType()),
])


def test_rows_not_in_finds_every_kind_of_change_and_nothing_else(spark) -> None:
    previous = spark.createDataFrame([
        (1, 80.0, None, [1, 2], [3], "Same"),
        (2, 70.0, None, [1], [], "Null moves"),
        (3, None, None, [1, 2], [3], "Array boundary"),
        (4, None, None, [], [], "tab\there"),
        (5, 50.0, 50.0, [4], [5], "Gone tomorrow"),
        (7, None, None, [None, 1], [], "Null element moves"),
    ], ROW)
    current = spark.createDataFrame([
        (1, 80.0, None, [1, 2], [3], "Same"),
        (2, None, 70.0, [1], [], "Null moves"),  # the value moved to the other column
        (3, None, None, [1], [2, 3], "Array boundary"),  # the same ids, split differently
        (4, None, None, [], [], "tab\\there"),  # a tab became backslash-t
        (6, None, None, [], [], "New game"),
        (7, None, None, [1, None], [], "Null element moves"),
    ], ROW)

    changed = current.transform(with_fingerprint).transform(rows_not_in(previous.transform(with_fingerprint),
                                                                        ["game_id"]))

    assert_df_equality(changed.drop(FINGERPRINT), current.where("game_id IN (2, 3, 4, 6, 7)"), ignore_row_order=True)


def _catalogue(spark, ratings: dict[int, float]):
    """dim_games rows with these ids and ratings, every other column at a plain value."""
    plain = {T.LongType: 0, T.IntegerType: 0, T.DoubleType: None, T.StringType: "x", T.ArrayType: [],
             T.TimestampType: dt.datetime(2026, 11, 1), T.DateType: None}
    rows = [{name: plain[type(kind)] for name, kind, _ in GAMES.columns} | {"game_id": i, "rating": r}
            for i, r in ratings.items()]
    return spark.createDataFrame(rows, GAMES.schema)


def test_the_catalogue_stores_its_fingerprints_and_the_delta_reads_only_them_from_the_base(spark, tmp_path) -> None:
    lake = LocalLake(tmp_path / "lake")
    write_partition(_catalogue(spark, {1: 80.0, 2: 70.0, 3: 60.0}), GAMES, lake, D1)
    write_partition(_catalogue(spark, {1: 80.0, 2: 75.0, 3: 60.0, 4: 10.0}), GAMES, lake, D2)

    files = spark.read.parquet(str(lake.path(GAMES.partition_rel_path(D1.isoformat()))))
    assert files.columns == [*GAMES.column_names, FINGERPRINT]
    recomputed = read_partition(spark, GAMES, lake, D1).transform(with_fingerprint)
    assert_df_equality(files, recomputed, ignore_row_order=True, ignore_nullable=True)

    base = read_fingerprinted(spark, GAMES, lake, D1)
    changed = read_fingerprinted(spark, GAMES, lake, D2).transform(rows_not_in(base, GAMES.key))
    assert sorted(r.game_id for r in changed.collect()) == [2, 4]
    scans = [line for line in executed_plan(changed).splitlines()
             if "ReadSchema" in line]
    assert any(f"ReadSchema: struct<game_id:bigint,{FINGERPRINT}:bigint>" in line for line in scans), scans


def test_a_base_written_without_fingerprints_gets_them_computed(spark, tmp_path) -> None:
    lake = LocalLake(tmp_path / "lake")
    old = lake.path(GAMES.partition_rel_path(D1.isoformat()))
    _catalogue(spark, {1: 80.0, 2: 70.0}).write.parquet(str(old))  # as written before dim_games was fingerprinted
    write_partition(_catalogue(spark, {1: 80.0, 2: 75.0}), GAMES, lake, D2)

    base = read_fingerprinted(spark, GAMES, lake, D1)
    assert FINGERPRINT not in spark.read.parquet(str(old)).columns
    changed = read_fingerprinted(spark, GAMES, lake, D2).transform(rows_not_in(base, GAMES.key))
    assert [r.game_id for r in changed.collect()] == [2]
