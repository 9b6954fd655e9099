"""The load step for a date D: the validated marts of D into PostgreSQL, idempotently.

Per mart: jobs/load/plan.py decides what must be sent (all rows, only those that differ from
the date the table last took in, or nothing); executors COPY their Spark partitions of it into
an UNLOGGED staging table (nothing is collected on the driver); then one transaction moves the
rows into the mart's table with the statements of jobs/load/warehouse.py, records the partition in
`loaded_partitions` and drops the staging table. A crash before the commit leaves the mart as it
was; after it, as loaded. The catalogue loads first and alone, then the other marts side by side
(`load_waves`). A per-date advisory lock keeps two loads of D apart, a per-mart one makes loads
of different dates take each mart in turn.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from core.database import advisory_lock, connection, waiting_advisory_lock
from core.errors import ExitCode, PipelineError
from core.lake import Lake
from core.logs import event, log_context
from core.threads import map_in_threads
from jobs.datasets import DATASETS, Dataset, Layer, LoadKind
from jobs.io import read_fingerprinted, read_partition
from jobs.load.pgcopy import copy_lines, copy_text_partition
from jobs.load.plan import LoadPlan, bridges_follow, partition_digest, plan_load, rows_not_in
from jobs.load.warehouse import (
    LOADED,
    SOURCE_DT,
    analyze,
    analyze_parents_stage,
    analyze_stage,
    copy_statement,
    deleted_by_load,
    drop_parents_stage,
    drop_stage,
    ensure_schema,
    followers,
    parents_copy_statement,
    parents_stage_ddl,
    purge_deleted,
    record_loaded_partition,
    stage_ddl,
    upsert_statements,
)
from jobs.reports import validation_summary, validation_verdict

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x1CDB  # first key of pg_advisory_lock(int, int): "igdb load"; the second is D's day number
MART_LOCK_NAMESPACE = 0x1CDC  # "igdb mart": the second key is a hash of the mart's name


class LoadRefused(PipelineError):
    """D has not passed a complete validation of its current outputs: nothing is loaded."""

    exit_code = ExitCode.VALIDATION


class LoadError(PipelineError):
    """The load could not complete; every mart committed before is whole, the others untouched."""


def require_validated(lake: Lake, day: dt.date) -> dict[str, Any]:
    """The validation summary of D, if it passed, covered every output and matches the current transform."""
    summary = validation_summary(lake, day)
    if (why := validation_verdict(lake, day, summary)) is not None:
        raise LoadRefused(f"{why}; nothing is loaded")
    assert summary is not None
    return summary


class SharedParents:
    """The parent ids the replace-the-set bridges need (every game id of `staging/games` of D, so a
    set that became empty counts too), COPYed once for all of them, on the first bridge that needs
    them, instead of once per bridge; dropped when the load ends (`drop_all`).

    When the bridges follow the catalogue's delta (`follow`), the parents are only the games whose
    catalogue row differs from the delta's base, and each bridge sends only their rows: on a full
    refresh, a few thousand games instead of every set of the catalogue."""

    def __init__(self, spark: SparkSession, lake: Lake, day: dt.date, url: str, schema: str) -> None:
        self.spark, self.lake, self.day, self.url, self.schema = spark, lake, day, url, schema
        self._lock = threading.Lock()  # bridges loading side by side wait for the one staging them
        self._staged: set[str] = set()
        self.following: LoadPlan | None = None  # the catalogue's delta plan the bridges follow
        self._changed: DataFrame | None = None

    def follow(self, versions: Dataset, plan: LoadPlan) -> None:
        """From now on the bridges send only the games whose `versions` row changed since plan.base."""
        assert plan.base is not None
        self.following = plan
        previous = read_fingerprinted(self.spark, versions, self.lake, plan.base)
        current = read_fingerprinted(self.spark, versions, self.lake, self.day)
        self._changed = current.transform(rows_not_in(previous, versions.key)).select(*versions.key).persist(
            StorageLevel.MEMORY_AND_DISK)  # read by the parents and by every bridge

    def only_changed(self, frame: DataFrame, key: str) -> DataFrame:
        """`frame` limited to the changed parents when following the catalogue's delta."""
        if self._changed is None:
            return frame
        return frame.join(F.broadcast(self._changed.withColumnRenamed(self._changed.columns[0], key)), key,
                          "left_semi")

    def ensure(self, ds: Dataset) -> None:
        """The parents of `ds` are in their staging table and analysed (staged now if not yet)."""
        assert ds.parents_from and ds.parent_key
        with self._lock:
            if ds.parents_from in self._staged:
                return
            began = time.monotonic()
            with connection(self.url) as conn:
                with conn, conn.cursor() as cur:
                    cur.execute(parents_stage_ddl(ds, self.schema, self.day))
                statement = parents_copy_statement(ds, self.schema, self.day).as_string(conn)
                url = self.url  # the executors' closure takes the URL, not this object (its lock and session)
                ids = self.only_changed(read_partition(self.spark, DATASETS[ds.parents_from], self.lake, self.day)
                                        .select(ds.parent_key), ds.parent_key)
                copy_lines(ids).rdd.mapPartitions(lambda rows: copy_text_partition(rows, url, statement)).collect()
                with conn, conn.cursor() as cur:
                    cur.execute(analyze_parents_stage(ds, self.schema, self.day))
            self._staged.add(ds.parents_from)
            event(log, f"staged the parents of the bridges: {ds.parents_from} of {self.day}",
                  seconds=round(time.monotonic() - began, 2))

    def drop_all(self, marts: Sequence[Dataset]) -> None:
        """Drop the parents' tables of these marts, staged by this load or left by a killed one (and
        forget the changed games)."""
        if self._changed is not None:
            self._changed.unpersist()
        sources = {ds.parents_from: ds for ds in marts if ds.parents_from}
        if sources:
            with connection(self.url) as conn, conn, conn.cursor() as cur:
                for ds in sources.values():
                    cur.execute(drop_parents_stage(ds, self.schema, self.day))


def _mart_lock_key(ds: Dataset) -> int:
    """Loads of different dates take a mart in turn, so the plan made from `loaded_partitions`
    still holds when its rows are committed."""
    return zlib.crc32(ds.name.encode()) & 0x7FFFFFFF


def _rows_to_send(spark: SparkSession, lake: Lake, ds: Dataset, day: dt.date, plan: LoadPlan,
                  parents: SharedParents) -> DataFrame:
    if plan.mode != "delta":
        return read_partition(spark, ds, lake, day)
    if ds.load is LoadKind.REPLACE_SET:  # a bridge following the catalogue's delta
        assert ds.parent_key is not None
        return parents.only_changed(read_partition(spark, ds, lake, day), ds.parent_key)
    assert plan.base is not None
    previous = read_fingerprinted(spark, ds, lake, plan.base)
    return read_fingerprinted(spark, ds, lake, day).transform(rows_not_in(previous, ds.key)).select(*ds.column_names)


def load_mart(spark: SparkSession, lake: Lake, conn: Any, ds: Dataset, day: dt.date, url: str, schema: str,
              expected_rows: int, parents: SharedParents, mode: str = "auto") -> dict[str, Any]:
    """Stage what the plan says, then one transaction: the mart's table becomes D's content per its
    load kind, and `loaded_partitions` records the partition it took in."""
    began = time.monotonic()
    phases: dict[str, float] = {}  # seconds per phase, in the log line: where a slow load spends its time

    def lap(phase: str, since: float) -> float:
        now = time.monotonic()
        phases[phase] = round(now - since, 2)
        return now

    digest = partition_digest(lake, ds, day)
    if digest is None:
        raise LoadError(f"{ds.partition_rel_path(day.isoformat())} has no files: run the transform of {day}")
    with waiting_advisory_lock(conn, MART_LOCK_NAMESPACE, _mart_lock_key(ds)):
        with conn, conn.cursor() as cur:
            plan = plan_load(cur, schema, lake, ds, day, digest, mode,
                             parents.following if ds.load is LoadKind.REPLACE_SET else None)
        mark = lap("plan", began)
        if plan.mode == "unchanged":
            event(log, f"{ds.name}: unchanged since loaded, nothing sent", rows=expected_rows, mode=plan.mode)
            return {"rows": expected_rows, "changed": 0, "staged": 0, "mode": plan.mode,
                    "seconds": round(time.monotonic() - began, 2), "phases": phases}
        with conn, conn.cursor() as cur:
            cur.execute(stage_ddl(ds, schema, day))
        try:
            statement = copy_statement(ds, schema, day).as_string(conn)
            lines = copy_lines(_rows_to_send(spark, lake, ds, day, plan, parents).withColumn(SOURCE_DT, F.lit(day)))
            staged = int(sum(lines.rdd.mapPartitions(lambda rows: copy_text_partition(rows, url, statement))
                             .collect()))
            if staged != expected_rows and not (plan.mode == "delta" and staged <= expected_rows):
                raise LoadError(f"{ds.rel_path}/dt={day}: staged {staged} rows but validation counted {expected_rows}")
            mark = lap("stage", mark)
            if ds.parents_from:
                parents.ensure(ds)  # staged by the first bridge that gets here; the others wait for it
                mark = lap("parents", mark)
            with conn, conn.cursor() as cur:
                cur.execute(analyze_stage(ds, schema, day))
            changed, purged = 0, {}
            with contextlib.ExitStack() as turns, conn, conn.cursor() as cur:  # one transaction: all or none
                for upsert in upsert_statements(ds, schema, day):
                    cur.execute(upsert, {"day": day})
                    changed += max(cur.rowcount, 0)
                purged = purge_followers(cur, conn, turns, ds, schema, day)
                cur.execute(record_loaded_partition(schema), {"mart": ds.name, "dt": day, "digest": digest,
                                                              "mode": plan.mode, "staged": staged})
                cur.execute(drop_stage(ds, schema, day))
            lap("upsert", mark)
        except BaseException:
            with conn, conn.cursor() as cur:
                cur.execute(drop_stage(ds, schema, day))
            raise
    seconds = round(time.monotonic() - began, 2)
    timings: dict[str, Any] = {f"{phase}_seconds": s for phase, s in phases.items()}
    removed: dict[str, Any] = {"purged": purged} if purged else {}  # a dimension's deleted keys, from its followers
    event(log, f"loaded {ds.name}", rows=expected_rows, staged=staged, changed=changed, mode=plan.mode,
          why=plan.why, seconds=seconds, **timings, **removed)
    based: dict[str, Any] = {"base": plan.base.isoformat()} if plan.base else {}  # what a delta compared with
    return {"rows": expected_rows, "changed": changed, "staged": staged, "mode": plan.mode, "seconds": seconds,
            "phases": phases, **removed, **based}


def purge_followers(cur: Any, conn: Any, turns: contextlib.ExitStack, ds: Dataset, schema: str, day: dt.date
                    ) -> dict[str, int]:
    """In a dimension's load transaction: when it marked keys deleted as of D, remove their rows
    from every mart that follows it (`follows_deletions_of`), each taken in its turn (the mart
    locks, held by `turns` until the transaction ends); rows removed per mart."""
    marts = followers(ds)
    if not marts:
        return {}
    cur.execute(deleted_by_load(ds, schema), {"day": day})
    if not cur.fetchone()[0]:
        return {}
    cur.execute(analyze(ds, schema))
    purged = {}
    for mart in marts:  # in name order, the same in every load: no two loads wait on each other
        turns.enter_context(waiting_advisory_lock(conn, MART_LOCK_NAMESPACE, _mart_lock_key(mart)))
        cur.execute(purge_deleted(mart, ds, schema), {"day": day, "mart": mart.name})
        purged[mart.name] = max(cur.rowcount, 0)
    return purged


def load_waves(marts: Sequence[Dataset]) -> list[list[Dataset]]:
    """The order of a date's marts: first, alone, the marts others are versioned by (the catalogue,
    whose `source_dt` the bridges' freshness check reads), so a date whose catalogue cannot be loaded
    loads nothing; then every other mart, side by side (each its own transaction and connection)."""
    versions = {ds.parents_versioned_by for ds in marts if ds.parents_versioned_by}
    first = [ds for ds in marts if ds.name in versions]
    rest = [ds for ds in marts if ds.name not in versions]
    return [wave for wave in (first, rest) if wave]


def load_marts(spark: SparkSession, lake: Lake, day: dt.date, url: str, schema: str, marts: Sequence[Dataset],
               expected_rows: Mapping[str, int], mode: str = "auto", parallel_marts: int = 4
               ) -> dict[str, dict[str, Any]]:
    """`load_mart` for each of these marts of D, wave by wave (`load_waves`), up to `parallel_marts` at
    once, each on a connection of its own; results by mart name, in the marts' order.

    Most marts are small, and a small mart's load is mostly round trips and Spark job start-up, which
    overlap: the bridges of a date with few changes load in about the time of the largest.
    """

    parents = SharedParents(spark, lake, day, url, schema)

    def load_one(ds: Dataset) -> dict[str, Any]:
        with connection(url) as own:
            return load_mart(spark, lake, own, ds, day, url, schema, expected_rows[ds.name], parents, mode)

    done: dict[str, dict[str, Any]] = {}
    try:
        for wave in load_waves(marts):
            follow_the_catalogue(url, schema, parents, wave, done)
            done |= zip([ds.name for ds in wave], map_in_threads(load_one, wave, parallel_marts, "load"),
                        strict=True)
    except BaseException:
        with contextlib.suppress(Exception):  # the load's own error is the one to report; a leftover
            parents.drop_all(marts)  # UNLOGGED table is dropped by the next load of D
        raise
    parents.drop_all(marts)
    return {ds.name: done[ds.name] for ds in marts}


def follow_the_catalogue(url: str, schema: str, parents: SharedParents, wave: Sequence[Dataset],
                         done: Mapping[str, Mapping[str, Any]]) -> None:
    """Before a wave of bridges: when the catalogue they are versioned by loaded as a delta in this
    load and the bridges took in every date it did (`bridges_follow`), they follow it."""
    bridges = [ds for ds in wave if ds.load is LoadKind.REPLACE_SET and ds.parents_versioned_by in done]
    if not bridges:
        return
    name = bridges[0].parents_versioned_by
    assert name is not None and all(b.parents_versioned_by == name for b in bridges)
    loaded = done[name]
    plan = LoadPlan(loaded["mode"], "", dt.date.fromisoformat(loaded["base"]) if loaded.get("base") else None)
    with connection(url) as conn, conn.cursor() as cur:
        if bridges_follow(cur, schema, plan, bridges):
            parents.follow(DATASETS[f"{Layer.MARTS.value}/{name}"], plan)


def run_load(spark: SparkSession, lake: Lake, day: dt.date, url: str, schema: str, on_empty: str = "load",
             mode: str = "auto", parallel_marts: int = 4) -> dict[str, Any]:
    """Load every mart of D; returns rows, staged rows, changed rows and the plan's mode per mart."""
    started = time.monotonic()
    with log_context(step="load"):
        summary = require_validated(lake, day)
        rows = summary["rows"]
        with connection(url) as conn:
            with advisory_lock(conn, LOCK_NAMESPACE, day, "load"):  # held while the marts load on their own
                ensure_schema(conn, schema)
                # only a mart the gate lets be empty (a ranked mart no game qualifies for) gets here empty
                empty = [ds.rel_path for ds in LOADED if int(rows.get(ds.rel_path, 0)) == 0 and ds.min_rows]
                if empty and on_empty == "fail":
                    raise LoadError(f"{', '.join(empty)} empty for dt={day}: nothing was loaded (load.on_empty=fail; "
                                    f"'load' replaces D's rows with none, 'skip' keeps what D had)")
                skipped = empty if on_empty == "skip" else []
                for name in empty:
                    event(log, f"{name}: empty for {day}, " + ("skipped (D's stored rows kept)" if name in skipped
                                                               else "loaded as empty (D's stored rows removed)"),
                          logging.WARNING)

                loaded = load_marts(spark, lake, day, url, schema, [ds for ds in LOADED if ds.rel_path not in skipped],
                                    {ds.name: int(rows[ds.rel_path]) for ds in LOADED if ds.rel_path in rows},
                                    mode, parallel_marts)
        result = {"dt": day.isoformat(), "marts": loaded, "seconds": round(time.monotonic() - started, 2)}
        event(log, "load done", marts=len(loaded), rows=sum(m["rows"] for m in loaded.values()),
              changed=sum(m["changed"] for m in loaded.values()), seconds=result["seconds"])
    return result
