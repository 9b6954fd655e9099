"""The transform step for a date D: raw -> quarantine + staging + bridges -> marts.

I/O lives here; every transformation is a pure function from jobs.parse, jobs.staging and
jobs.marts. Counts reconcile per entity: raw lines = staged-or-collapsed + quarantined.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ingestion.entities import ENTITIES
from ingestion.landing import read_manifest
from jobs import marts, staging
from jobs.datasets import BRIDGES, DATASETS, REFERENCE_COLUMNS, Dataset, Layer, dataset
from jobs.io import (
    TransformError,
    copy_partition,
    latest_partition_before,
    read_partition,
    read_raw_lines,
    write_partition,
)
from jobs.parse import REASON, RECORD, REQUIRED, parse_lines, quarantine_rows, valid_records
from jobs.schemas import RAW_SCHEMAS
from pipeline.lake import Lake
from pipeline.logs import event, log_context, map_in_threads

log = logging.getLogger(__name__)

REPORT_PATH = "reports/transform/dt={day}/summary.json"

STAGING_THREADS = 3


@dataclass(frozen=True)
class EntityCounts:
    raw_lines: int  # lines in the raw partition (equal to the manifest's record count)
    quarantined: int  # lines rejected, each with its reason in quarantine/<entity>/dt=D
    valid: int  # lines parsed into a record
    staged: int  # rows in the staging table after keeping one row per key

    @property
    def collapsed(self) -> int:
        """Valid lines folded into a newer version of the same key (dedupe, not loss)."""
        return self.valid - self.staged


def staging_table(entity: str) -> str:
    """The staging table ("staging/<name>") a raw entity lands in: reference snapshots are ref_<entity>."""
    name = entity if entity in ("games", "popularity_primitives") else f"ref_{entity}"
    return dataset(Layer.STAGING, name).rel_path


def _stage(valid: DataFrame, entity: str, day: dt.date, keys_unique: bool) -> tuple[Dataset, DataFrame]:
    target = DATASETS[staging_table(entity)]
    if entity == "games":
        return target, staging.stage_games(valid, keys_unique)
    if entity == "popularity_primitives":
        return target, staging.stage_popularity(valid, day, keys_unique)
    return target, staging.stage_reference(valid, entity, keys_unique)


def largest_first(manifests: dict[str, dict | None]) -> list[str]:
    """Entities ordered by the bytes of their raw partition, largest first (no manifest: last,
    where staging reports it missing)."""

    def raw_bytes(entity: str) -> int:
        manifest = manifests[entity]
        return sum(f["bytes"] for f in manifest["files"]) if manifest else -1

    return sorted(manifests, key=raw_bytes, reverse=True)


def stage_entity(spark: SparkSession, lake: Lake, entity: str, day: dt.date, manifest: dict | None
                 ) -> EntityCounts:
    """Parse raw/<entity>/dt=D once (cached), write its quarantine and its staging table."""
    lines = read_raw_lines(spark, lake, entity, day, manifest)
    parsed = parse_lines(lines, RAW_SCHEMAS[entity], REQUIRED.get(entity, ("id",)))
    parsed = parsed.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        key = [F.col(f"{RECORD}.{k}") for k in staging.dedupe_key(entity)]
        totals = {row["ok"]: (row["lines"], row["keys"]) for row in
                  parsed.groupBy(F.col(REASON).isNull().alias("ok"))
                  .agg(F.count(F.lit(1)).alias("lines"), F.countDistinct(*key).alias("keys")).collect()}
        (valid, distinct_keys), (rejected, _) = totals.get(True, (0, 0)), totals.get(False, (0, 0))
        assert manifest is not None  # read_raw_lines refuses a partition without one
        if valid + rejected != manifest["records"]:
            raise TransformError(f"raw/{entity}/dt={day} holds {valid + rejected} lines but its manifest says "
                                 f"{manifest['records']}: the partition is damaged, ingest {day} again")
        write_partition(quarantine_rows(parsed, entity), dataset(Layer.QUARANTINE, entity), lake, day, rejected)
        target, staged = _stage(valid_records(parsed), entity, day, keys_unique=distinct_keys == valid)
        # staging keeps one row per key: its row count is the number of distinct valid keys
        staged_rows = write_partition(staged, target, lake, day, distinct_keys)
    finally:
        parsed.unpersist()
    counts = EntityCounts(valid + rejected, rejected, valid, staged_rows)
    event(log, f"staged {entity}", **asdict(counts), collapsed=counts.collapsed)
    if rejected:
        event(log, f"{entity}: {rejected} line(s) quarantined, see quarantine/{entity}/dt={day}", logging.WARNING)
    return counts


def write_bridges(spark: SparkSession, lake: Lake, day: dt.date) -> dict[str, int]:
    """Bridge tables of D's games, to staging and (the same files) to marts for the loader."""
    games = read_partition(spark, dataset(Layer.STAGING, "games"), lake, day).persist()
    # bridge table -> (the staged games' id array, the bridge's id column)
    sources = {table: (f"{id_column.removesuffix('_id')}_ids", id_column) for table, _, id_column, _ in BRIDGES}
    try:
        # the id arrays are clean sets, so a bridge has exactly as many rows as its array elements
        sizes = games.agg(*[F.coalesce(F.sum(F.size(ids)), F.lit(0)).alias(t) for t, (ids, _) in sources.items()]
                          ).collect()[0]

        def write(table: str) -> int:
            pairs = staging.bridge(games, *sources[table])
            written = write_partition(pairs, dataset(Layer.STAGING, table), lake, day, sizes[table])
            return copy_partition(dataset(Layer.STAGING, table), dataset(Layer.MARTS, table), lake, day, written)

        # each bridge is one small file written by one task: two at once keep both cores busy
        return dict(zip(sources, map_in_threads(write, sources, STAGING_THREADS, "bridge"), strict=True))
    finally:
        games.unpersist()


def build_marts(spark: SparkSession, lake: Lake, day: dt.date, full_refresh: bool, top_n: int,
                staged: dict[str, EntityCounts]) -> dict[str, int]:
    rows: dict[str, int] = {}
    names: dict[str, dict[int, str]] = {}
    for entity, columns in REFERENCE_COLUMNS.items():
        source = dataset(Layer.STAGING, f"ref_{entity}")
        rows[f"dim_{entity}"] = copy_partition(source, dataset(Layer.MARTS, f"dim_{entity}"), lake, day,
                                               staged[entity].staged)
        ref = read_partition(spark, source, lake, day)
        id_column = columns[0][0]
        names[entity] = {r[id_column]: r["name"] for r in ref.select(id_column, "name").collect()
                         if r["name"] is not None}

    dim_games = dataset(Layer.MARTS, "dim_games")
    changes = read_partition(spark, dataset(Layer.STAGING, "games"), lake, day)
    before = latest_partition_before(lake, dim_games, day)
    if before is None and not full_refresh:
        event(log, "no earlier dim_games: the catalogue holds only this date's changed games; "
                   "run a full refresh to rebuild it", logging.WARNING)
    previous = read_partition(spark, dim_games, lake, before) if before and not full_refresh else None
    catalogue = marts.resolve_names(marts.merge_catalogue(previous, changes, full_refresh), names)
    rows["dim_games"] = write_partition(catalogue, dim_games, lake, day)

    fct = dataset(Layer.MARTS, "fct_game_popularity")
    popularity = read_partition(spark, dataset(Layer.STAGING, "popularity_primitives"), lake, day)
    rows["fct_game_popularity"] = write_partition(marts.popularity_fact(popularity, day), fct, lake, day)

    # the marketing marts need a few columns of the catalogue, not its free text
    catalogue = read_partition(spark, dim_games, lake, day).select(*marts.CATALOGUE_COLUMNS).persist()
    facts = read_partition(spark, fct, lake, day).persist()
    try:
        earlier = latest_partition_before(lake, fct, day)
        previous_facts = read_partition(spark, fct, lake, earlier) if earlier else None
        frames = {
            "mart_top_rated": marts.top_rated(catalogue, day, top_n),
            "mart_top_hyped": marts.top_hyped(catalogue, facts, day, top_n),
            "mart_trending_now": marts.trending_now(catalogue, facts, previous_facts, day, top_n),
            "mart_hidden_gems": marts.hidden_gems(catalogue, facts, day, top_n),
        }

        def write(name: str) -> int:
            return write_partition(frames[name], dataset(Layer.MARTS, name), lake, day)

        # small outputs, mostly per-job overhead: written side by side
        rows.update(zip(frames, map_in_threads(write, frames, STAGING_THREADS, "mart"), strict=True))
    finally:
        catalogue.unpersist()
        facts.unpersist()
    return rows


def run_transform(spark: SparkSession, lake: Lake, day: dt.date, top_n: int = 100) -> dict[str, Any]:
    """Everything Spark does for D; returns (and writes to the lake) the counts per entity and table."""
    started = time.monotonic()
    with log_context(step="transform"):
        manifests = {entity: read_manifest(lake, entity, day) for entity in ENTITIES}  # each read once

        def stage(entity: str) -> EntityCounts:
            with log_context(entity=entity):
                return stage_entity(spark, lake, entity, day, manifests[entity])

        # The small reference entities are mostly per-job overhead, which overlaps with the large
        # entities' work on threads. The largest start first, so the small ones fill the gaps
        # instead of holding the large ones back.
        order = largest_first(manifests)
        entities = dict(zip(order, map_in_threads(stage, order, STAGING_THREADS, "stage"), strict=True))
        games_manifest = manifests["games"]
        assert games_manifest is not None  # staging games refused to run without it
        full_refresh = games_manifest["mode"] == "full"
        rows = write_bridges(spark, lake, day)
        rows.update(build_marts(spark, lake, day, full_refresh, top_n, entities))
        report = {
            "dt": day.isoformat(),
            "full_refresh": full_refresh,
            "entities": {e: {**asdict(c), "collapsed": c.collapsed} for e, c in entities.items()},
            "rows": rows,
            "seconds": round(time.monotonic() - started, 2),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        }
        lake.write_text(REPORT_PATH.format(day=day.isoformat()), json.dumps(report, indent=2) + "\n")
        event(log, "transform done", seconds=report["seconds"], dim_games=rows["dim_games"])
    return report
