"""Deletions: what shows that a row left IGDB, and how the dimensions and the marts record it.

IGDB has no "deleted" feed. Only a complete list of an entity says what is gone: a complete full
refresh of games, or a reference snapshot (every run lists every platform, genre, ...). A key the
dimension held live before D and D's complete list lacks is deleted as of D: its row stays in the
dimension with `deleted_at` = D (so the lake alone can replay the deletion into PostgreSQL), and
the marts that follow the dimension (`follows_deletions_of`) leave it out. An incremental day
cannot show a deletion; nor can a list that lost lines we cannot name: a line quarantined without
a readable id might be any of the keys, so such a day deletes nothing.

Pure DataFrame functions, plus `deletion_evidence`, which reads D's manifest and quarantine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from core.lake import Lake
from jobs.datasets import DELETED_AT, Layer, dataset
from jobs.fingerprint import FINGERPRINT, fingerprint_of
from jobs.io import literal_frame, read_partition


@dataclass(frozen=True)
class Evidence:
    """Whether D's raw partition of an entity lists the whole entity, and the ids of its quarantined
    lines (present at the source, though not staged: never deleted for being absent from staging)."""

    complete: bool
    why: str
    quarantined_ids: tuple[int, ...] = ()


def deletion_evidence(spark: SparkSession, lake: Lake, entity: str, day: dt.date, manifest: dict,
                      quarantined: int) -> Evidence:
    """What D's raw partition of `entity` can say about deletions (`quarantined`: its lines the
    transform quarantined; their ids are read back from the quarantine only when there are any)."""
    mode = manifest.get("mode")
    if mode not in ("full", "snapshot"):
        return Evidence(False, f"{mode}: only a complete list (a full refresh or a snapshot) shows a deletion")
    kind = "full refresh" if mode == "full" else "snapshot"
    if not quarantined:
        return Evidence(True, f"complete {kind}")
    lines = read_partition(spark, dataset(Layer.QUARANTINE, entity), lake, day).select(
        F.get_json_object("raw_line", "$.id").cast(T.LongType()).alias("id")).collect()
    ids = tuple(sorted({row["id"] for row in lines if row["id"] is not None}))
    unreadable = sum(row["id"] is None for row in lines)
    if unreadable:
        return Evidence(False, f"partial {kind}: {unreadable} quarantined line(s) without a readable id, so "
                               f"nothing is deleted", ids)
    return Evidence(True, f"complete {kind} ({len(lines)} quarantined line(s) counted as present)", ids)


def present_keys(spark: SparkSession, staged: DataFrame, key: str, evidence: Evidence) -> list[DataFrame]:
    """The frames of keys D's list holds, each with unique keys: the staged table's keys, and the
    quarantined lines' ids (kept apart: a quarantined id may also be staged)."""
    frames = [staged.select(key)]
    if evidence.quarantined_ids:
        schema = T.StructType([T.StructField(key, T.LongType(), False)])
        frames.append(literal_frame(spark, [(i,) for i in evidence.quarantined_ids], schema))
    return frames


def mark_deleted(previous: DataFrame, present: Sequence[DataFrame] | None, key: str, day: dt.date) -> DataFrame:
    """`previous` (a dimension's rows before D) with `deleted_at` = D on every live row whose key no
    frame of `present` holds; rows deleted before keep their date. `present` None: D's list is not
    complete, so nothing is marked. A stored row fingerprint is computed again for a marked row.

    Each frame of `present` must hold a key at most once (it is broadcast and left-joined, so the
    wide rows of `previous` are read once and never shuffled)."""
    if present is None:
        return previous
    flags = [f"_present_{i}" for i in range(len(present))]
    out = previous
    for flag, keys in zip(flags, present, strict=True):
        out = out.join(F.broadcast(keys.select(key).withColumn(flag, F.lit(True))), key, "left")
    gone = F.col(DELETED_AT).isNull()
    for flag in flags:
        gone = gone & F.col(flag).isNull()
    out = out.withColumn("_gone", gone).drop(*flags)
    out = out.withColumn(DELETED_AT, F.when(F.col("_gone"), F.lit(day)).otherwise(F.col(DELETED_AT)))
    if FINGERPRINT in previous.columns:
        columns = [c for c in previous.columns if c != FINGERPRINT]
        out = out.withColumn(FINGERPRINT, F.when(F.col("_gone"), fingerprint_of(out.select(*columns)))
                             .otherwise(F.col(FINGERPRINT)))
    return out.drop("_gone").select(*previous.columns)


def deleted_keys(marked: DataFrame, changes: DataFrame, key: str) -> DataFrame:
    """The keys deleted as of D: marked deleted before D or by D's list (`mark_deleted`), unless D's
    changes bring them back."""
    return marked.where(F.col(DELETED_AT).isNotNull()).select(key).join(changes.select(key), key, "left_anti")


def without_keys(frame: DataFrame, keys: DataFrame, key: str) -> DataFrame:
    """`frame` without the rows whose key is in `keys` (few: broadcast, nothing shuffled)."""
    return frame.join(F.broadcast(keys), key, "left_anti")


def live(frame: DataFrame) -> DataFrame:
    """The rows of a dimension that are not deleted."""
    return frame.where(F.col(DELETED_AT).isNull())


def as_of(snapshot: DataFrame, previous: DataFrame | None, key: str, day: dt.date,
          present: Sequence[DataFrame] | None) -> DataFrame:
    """A reference dimension as of D: D's snapshot (live), and the earlier rows it no longer holds,
    deleted as of the date that first found them gone (or kept as they were without evidence)."""
    current = snapshot.withColumn(DELETED_AT, F.lit(None).cast(T.DateType()))
    if previous is None:
        return current
    earlier = mark_deleted(previous, present, key, day).join(snapshot.select(key), key, "left_anti")
    return current.unionByName(earlier.select(*current.columns))
