"""jobs/transform/deletions.py on inline rows: what a complete list shows, and how a dimension records it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from chispa import assert_df_equality
from pyspark.sql import functions as F

from core.lake import LocalLake
from jobs.datasets import Layer, dataset
from jobs.fingerprint import FINGERPRINT, with_fingerprint
from jobs.io import write_partition
from jobs.transform.deletions import as_of, deleted_keys, deletion_evidence, live, mark_deleted, present_keys

D = dt.date(2026, 11, 20)
BEFORE = dt.date(2026, 11, 13)
ROWS = "game_id long, name string, deleted_at date"


def test_a_complete_list_marks_what_it_lacks_deleted_and_keeps_earlier_dates(spark) -> None:
    previous = spark.createDataFrame([(1, "kept", None), (2, "gone", None), (3, "gone before", BEFORE)], ROWS)
    present = [spark.createDataFrame([(1,)], "game_id long")]

    marked = mark_deleted(previous, present, "game_id", D)

    assert_df_equality(marked, spark.createDataFrame([(1, "kept", None), (2, "gone", D), (3, "gone before", BEFORE)],
                                                     ROWS), ignore_row_order=True)
    assert mark_deleted(previous, None, "game_id", D) is previous  # no complete list: nothing is marked


def test_every_frame_of_present_keys_counts_a_key_as_present(spark) -> None:
    previous = spark.createDataFrame([(1, "staged", None), (2, "quarantined", None), (3, "gone", None)], ROWS)
    staged = spark.createDataFrame([(1,)], "game_id long")
    quarantined = spark.createDataFrame([(2,), (1,)], "game_id long")  # a quarantined id may be staged too
    rows = mark_deleted(previous, [staged, quarantined], "game_id", D).orderBy("game_id").collect()
    assert [(r["game_id"], r["deleted_at"]) for r in rows] == [(1, None), (2, None), (3, D)]


def test_a_marked_row_gets_its_fingerprint_again_and_the_others_keep_theirs(spark) -> None:
    rows = spark.createDataFrame([(1, "a", None), (2, "b", None)], ROWS)
    stored = with_fingerprint(rows).withColumn(FINGERPRINT, F.when(F.col("game_id") == 1, F.lit(42))
                                               .otherwise(F.col(FINGERPRINT)))
    marked = {r["game_id"]: r for r in mark_deleted(stored, [spark.createDataFrame([(1,)], "game_id long")],
                                                    "game_id", D).collect()}
    assert marked[1][FINGERPRINT] == 42  # unchanged rows keep what is stored
    expected = with_fingerprint(spark.createDataFrame([(2, "b", D)], ROWS)).first()
    assert marked[2][FINGERPRINT] == expected[FINGERPRINT] and marked[2]["deleted_at"] == D


def test_deleted_keys_are_the_marked_ones_less_the_comebacks(spark) -> None:
    marked = spark.createDataFrame([(1, "live", None), (2, "gone", D), (3, "back", BEFORE)], ROWS)
    changes = spark.createDataFrame([(3,)], "game_id long")
    assert sorted(r["game_id"] for r in deleted_keys(marked, changes, "game_id").collect()) == [2]
    assert sorted(r["game_id"] for r in live(marked).collect()) == [1]


def test_a_reference_dimension_is_the_snapshot_and_the_rows_it_lacks(spark) -> None:
    schema = "genre_id long, name string"
    previous = spark.createDataFrame([(5, "Shooter", None), (7, "Music", None), (9, "Gone", BEFORE),
                                      (11, "Back", BEFORE)], "genre_id long, name string, deleted_at date")
    snapshot = spark.createDataFrame([(5, "Shooter 2"), (11, "Back")], schema)
    dimension = as_of(snapshot, previous, "genre_id", D, [snapshot.select("genre_id")])
    assert sorted(map(tuple, dimension.collect())) == [(5, "Shooter 2", None), (7, "Music", D), (9, "Gone", BEFORE),
                                                       (11, "Back", None)]
    first = as_of(snapshot, None, "genre_id", D, None)
    assert sorted(map(tuple, first.collect())) == [(5, "Shooter 2", None), (11, "Back", None)]


def _quarantine(spark, lake: LocalLake, lines: list[str]) -> None:
    rows = [("games", "raw/games/dt=2026-11-20/part-00000.jsonl", n + 1, line, "wrong type: rating")
            for n, line in enumerate(lines)]
    ds = dataset(Layer.QUARANTINE, "games")
    write_partition(spark.createDataFrame(rows, ds.schema), ds, lake, D)


def test_only_a_list_whose_every_line_has_an_id_is_evidence(spark, tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    incremental = deletion_evidence(spark, lake, "games", D, {"mode": "incremental"}, 0)
    assert not incremental.complete and incremental.why.startswith("incremental")
    assert deletion_evidence(spark, lake, "genres", D, {"mode": "snapshot"}, 0).why == "complete snapshot"

    _quarantine(spark, lake, [json.dumps({"id": 12, "rating": "high"}), json.dumps({"id": "7", "rating": "x"})])
    named = deletion_evidence(spark, lake, "games", D, {"mode": "full"}, 2)
    assert named.complete and named.quarantined_ids == (7, 12)
    assert sorted(r["game_id"] for f in present_keys(spark, spark.createDataFrame([(1,)], "game_id long"), "game_id",
                                                     named) for r in f.collect()) == [1, 7, 12]

    _quarantine(spark, lake, [json.dumps({"id": 12, "rating": "high"}), '{"name": "no id", "rating": "x"}'])
    partial = deletion_evidence(spark, lake, "games", D, {"mode": "full"}, 2)
    assert not partial.complete and partial.why.startswith("partial full refresh: 1 quarantined line(s) without")
