"""The transform step for a date D: raw -> quarantine + staging + bridges -> marts.

I/O lives here; every transformation is a pure function from jobs.transform.parse, jobs.transform.staging and
jobs.transform.marts. Counts reconcile per entity: raw lines = staged-or-collapsed + quarantined.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from core.entities import ENTITIES
from core.lake import Lake
from core.logs import event, log_context
from core.raw_lake import read_manifest
from core.threads import Task, map_in_threads, run_graph
from jobs.datasets import BRIDGES, DELETED_AT, Dataset, Layer, dataset
from jobs.fingerprint import with_fingerprint
from jobs.io import (
    TransformError,
    conform,
    copy_partition,
    distinct_keys,
    latest_partition_before,
    live_rows,
    read_partition,
    read_raw_lines,
    require_manifest,
    stored_rows,
    write_counted,
    write_partition,
)
from jobs.reports import TRANSFORM_REPORT, validation_verdict
from jobs.schemas import RAW_SCHEMAS
from jobs.transform import deletions, marts, staging
from jobs.transform.deletions import Evidence, deletion_evidence, present_keys
from jobs.transform.entities import CATALOGUE, FACT, TRANSFORMS, EntityTransform, source_of
from jobs.transform.parse import REASON, parse_lines, quarantine_rows, valid_records

log = logging.getLogger(__name__)

REPORT_PATH = TRANSFORM_REPORT

# Below this many raw lines (reference snapshots, a quiet day's games) the dedupe ranking runs as
# the staging table is written: cheaper than a second job counting the keys of the written table.
RANK_AT_ONCE_BELOW = 50_000

TRANSFORM_THREADS = 3  # Spark jobs of one date at once: a few, so the cores stay busy between one job's stages

# bridge table -> (the staged games' id array, the bridge's id column)
BRIDGE_SOURCES = {table: (f"{id_column.removesuffix('_id')}_ids", id_column) for table, _, id_column, _ in BRIDGES}


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


def stage_task(entity: str) -> str:
    """The name of the task staging a raw entity, in the transform's graph."""
    return f"stage {entity}"


def largest_first(manifests: Mapping[str, dict | None]) -> list[str]:
    """Entities ordered by the bytes of their raw partition, largest first (no manifest: last,
    where staging reports it missing)."""

    def raw_bytes(entity: str) -> int:
        manifest = manifests[entity]
        return sum(f["bytes"] for f in manifest["files"]) if manifest else -1

    return sorted(manifests, key=raw_bytes, reverse=True)


def _parse(spark: SparkSession, lake: Lake, entity: str, day: dt.date, manifest: dict) -> DataFrame:
    return parse_lines(read_raw_lines(spark, lake, entity, day, manifest), RAW_SCHEMAS[entity],
                       TRANSFORMS[entity].required)


def ranked_as_written(manifest: dict, rank_at_once_below: int = RANK_AT_ONCE_BELOW) -> bool:
    """A partition this small is ranked (latest version per key) as its staging table is written."""
    return bool(manifest["records"] < rank_at_once_below)


def stage_entity(spark: SparkSession, lake: Lake, entity: str, day: dt.date, manifest: dict | None,
                 rank_at_once_below: int = RANK_AT_ONCE_BELOW) -> EntityCounts:
    """Stage raw/<entity>/dt=D in one pass over its JSON, with a second pass only for the rare cases.

    Parsing is most of the transform's time, so the usual day parses once: the staging table is
    written straight from the parse, while the write job counts the lines read and rejected. A
    large partition is written taking each key to appear once (ingestion lands each record once
    per date); one under `rank_at_once_below` lines is ranked (latest version per key) as it is
    written, which costs less than the job that would count its distinct keys. Then:
      - lines that differ from the manifest fail the step, and the staging partition just written
        from the damaged partition is removed;
      - rejected lines (rare: IGDB sends valid JSON) are parsed again to write the quarantine;
      - a large table holding a key twice (the same id in two files) is written again from a
        ranked parse, latest version first (`restage_latest`). Until then D's staging partition
        holds every version; the step is not done, so nothing downstream reads it.
    An entity whose fact counts the keys on the way, in its own aggregation (`EntityTransform.
    stage_counts_keys`), leaves that last check to it; the counts then take the keys as unique.
    """
    transform = TRANSFORMS[entity]
    target, count_keys = transform.staging, transform.stage_counts_keys
    manifest = require_manifest(entity, day, manifest)
    ranked_at_once = ranked_as_written(manifest, rank_at_once_below)
    seen = Observation()
    parsed = _parse(spark, lake, entity, day, manifest).observe(
        seen, F.count(F.lit(1)).alias("lines"), F.count_if(F.col(REASON).isNotNull()).alias("rejected"))
    written = write_partition(transform.staged(valid_records(parsed), day, keys_unique=not ranked_at_once),
                              target, lake, day)
    lines, rejected = int(seen.get["lines"]), int(seen.get["rejected"])
    if lines != manifest["records"]:
        lake.delete(target.partition_rel_path(day.isoformat()))
        raise TransformError(f"raw/{entity}/dt={day} holds {lines} lines but its manifest says "
                             f"{manifest['records']}: the partition is damaged, ingest {day} again")
    write_partition(quarantine_rows(_parse(spark, lake, entity, day, manifest), entity),
                    dataset(Layer.QUARANTINE, entity), lake, day, empty=rejected == 0)
    if rejected:
        event(log, f"{entity}: {rejected} line(s) quarantined, see quarantine/{entity}/dt={day}", logging.WARNING)
    counts = EntityCounts(lines, rejected, lines - rejected, written)
    if not ranked_at_once and count_keys and distinct_keys(spark, target, lake, day) != written:
        return restage_latest(spark, lake, entity, day, manifest, counts)  # it logs the counts
    _log_staged(entity, counts, None if count_keys or ranked_at_once else "counted downstream")
    return counts


def _log_staged(entity: str, counts: EntityCounts, keys: str | None = None) -> None:
    fields: dict[str, Any] = {**asdict(counts), "collapsed": counts.collapsed}
    if keys is not None:
        fields["keys"] = keys  # how the key's uniqueness was settled, when not by stage_entity's own count
    event(log, f"staged {entity}", **fields)


def restage_latest(spark: SparkSession, lake: Lake, entity: str, day: dt.date, manifest: dict,
                   counts: EntityCounts) -> EntityCounts:
    """Write D's staging table again from a ranked parse, the latest version of each key only: some
    key came more than once. The same lines, fewer rows; the counts say how many folded."""
    transform = TRANSFORMS[entity]
    staged = write_partition(transform.staged(valid_records(_parse(spark, lake, entity, day, manifest)), day),
                             transform.staging, lake, day)
    counts = EntityCounts(counts.raw_lines, counts.quarantined, counts.valid, staged)
    _log_staged(entity, counts, "repeated: ranked")
    return counts


def write_bridge(spark: SparkSession, lake: Lake, day: dt.date, table: str) -> int:
    """One bridge of D's games, to staging and (the same files) to marts for the loader. It reads
    only the game id and one id array of the staged games."""
    ids, id_column = BRIDGE_SOURCES[table]
    games = read_partition(spark, source_of(table).staging, lake, day)
    written = write_partition(staging.bridge(games, ids, id_column), dataset(Layer.STAGING, table), lake, day)
    return copy_partition(dataset(Layer.STAGING, table), dataset(Layer.MARTS, table), lake, day, written)


@dataclass(frozen=True)
class Deletions:
    """What a dimension of D records about deletions, for the transform's report and the gate."""

    evidence: str  # what D's raw list could show (deletion_evidence's words)
    deleted: int  # rows found gone on D (deleted_at = D)
    live: int  # rows not deleted
    rows: int  # every row, the deleted ones included
    base: str | None  # the date of the earlier dimension D built on
    previous_live: int | None  # its live rows


def _counted_deletions(counted: dict[str, int], evidence: Evidence, base: dt.date | None,
                       previous: tuple[int, int] | None) -> Deletions:
    return Deletions(evidence.why, counted["deleted"], counted["live"], counted["rows"],
                     None if base is None else base.isoformat(), None if previous is None else previous[1])


def _deletion_counts(day: dt.date) -> dict[str, Column]:
    return {"deleted": F.col(DELETED_AT) == F.lit(day), "live": F.col(DELETED_AT).isNull()}


def _earlier(spark: SparkSession, lake: Lake, ds: Dataset, base: dt.date | None) -> DataFrame | None:
    """The partition of `ds` of the base date, when it has one."""
    if base is None or not lake.list_files(ds.partition_rel_path(base.isoformat())):
        return None
    return read_partition(spark, ds, lake, base)


def write_dimension(spark: SparkSession, lake: Lake, day: dt.date, transform: EntityTransform, base: dt.date | None,
                    manifest: dict, staged: EntityCounts) -> tuple[Deletions, dict[int, str]]:
    """The entity's dimension of D: D's snapshot, and the earlier rows it no longer lists, marked
    deleted; with the snapshot's names by id, for the catalogue."""
    assert transform.dimension is not None
    target = dataset(Layer.MARTS, transform.dimension)
    id_column = target.key[0]
    snapshot = read_partition(spark, transform.staging, lake, day)
    evidence = deletion_evidence(spark, lake, transform.entity, day, manifest, staged.quarantined)
    present = present_keys(spark, snapshot, id_column, evidence) if evidence.complete else None
    dimension = deletions.as_of(snapshot, _earlier(spark, lake, target, base), id_column, day, present)
    counted = write_counted(dimension, target, lake, day, _deletion_counts(day))
    names = {r[id_column]: r["name"] for r in snapshot.select(id_column, "name").collect() if r["name"] is not None}
    previous = live_rows(spark, lake, target, base) if base else None
    return _counted_deletions(counted, evidence, base, previous), names


NAMES_FILE = "_names.json"  # in marts/dim_games/dt=D, beside the files: the reference names they hold


def names_record(names: Mapping[str, Mapping[int, str]]) -> str:
    """The reference names a catalogue was given, as text that is equal exactly when the names are."""
    return json.dumps({entity: {str(i): name for i, name in sorted(ids.items())} for entity, ids in names.items()},
                      sort_keys=True, ensure_ascii=False)


def kept_catalogue(spark: SparkSession, lake: Lake, day: dt.date, names: Mapping[str, Mapping[int, str]]
                   ) -> DataFrame | None:
    """dim_games of `day` with its names and fingerprints as stored, when they are still right: the
    names file beside them (written after the files, removed with them on a rewrite) records the
    same names, and the files hold today's file columns. None: they must be computed again."""
    dim_games = dataset(Layer.MARTS, CATALOGUE)
    if lake.read_text(f"{dim_games.partition_rel_path(day.isoformat())}/{NAMES_FILE}") != names_record(names):
        return None
    return stored_rows(spark, dim_games, lake, day)


def catalogue_base(lake: Lake, day: dt.date, require_validated: bool = True) -> dt.date | None:
    """The earlier date D builds on: the newest date before D with a catalogue. Its catalogue,
    dimensions and fact are what D's are made from, so it must have passed validation: a failed
    or unvalidated date in between stops D, naming it (`require_validated`)."""
    base = latest_partition_before(lake, dataset(Layer.MARTS, CATALOGUE), day)
    if base is not None and require_validated and (why := validation_verdict(lake, base)) is not None:
        raise TransformError(f"dt={day} would build on the catalogue of dt={base}, which has not passed "
                             f"validation: {why}. Finish dt={base} first (rerun it, or load it with "
                             f"--accept-changes once checked); nothing of dt={day} was written")
    return base


def write_catalogue(spark: SparkSession, lake: Lake, day: dt.date, base: dt.date | None, full_refresh: bool,
                    names: dict[str, dict[int, str]], evidence: Evidence) -> Deletions:
    """dim_games of D: the catalogue of the base date with D's changed games, names resolved, and
    the games a complete full refresh no longer lists marked deleted as of D.

    On a usual day the reference names are those of the day before, so the earlier catalogue's
    rows keep the names and fingerprints they have, and only D's changed games (a small share of
    the catalogue) are given theirs; when a name changed, every row is given its names again."""
    dim_games = dataset(Layer.MARTS, CATALOGUE)
    changes = read_partition(spark, source_of(CATALOGUE).staging, lake, day).withColumn(
        DELETED_AT, F.lit(None).cast(T.DateType()))
    if base is None and not full_refresh:
        event(log, "no earlier dim_games: the catalogue holds only this date's changed games; "
                   "run a full refresh to rebuild it", logging.WARNING)
    present = present_keys(spark, changes, "game_id", evidence) if evidence.complete else None
    kept = kept_catalogue(spark, lake, base, names) if base else None
    if kept is not None:
        changed = with_fingerprint(conform(marts.resolve_names(changes, names), dim_games))
        catalogue = marts.merge_catalogue(deletions.mark_deleted(kept, present, "game_id", day), changed,
                                          full_refresh, dim_games.file_column_names)
    else:
        previous = _earlier(spark, lake, dim_games, base)
        marked = None if previous is None else deletions.mark_deleted(previous, present, "game_id", day)
        catalogue = marts.resolve_names(marts.merge_catalogue(marked, changes, full_refresh,
                                                              [*marts.GAME_COLUMN_NAMES, DELETED_AT]), names)
    counted = write_counted(catalogue, dim_games, lake, day, _deletion_counts(day))
    lake.write_text(f"{dim_games.partition_rel_path(day.isoformat())}/{NAMES_FILE}", names_record(names))
    event(log, "dim_games: names " + (f"kept from dt={base} for its unchanged rows" if kept is not None
                                      else "given to every row"), **counted, deletions=evidence.why)
    return _counted_deletions(counted, evidence, base, live_rows(spark, lake, dim_games, base) if base else None)


def deleted_games(spark: SparkSession, lake: Lake, day: dt.date, base: dt.date | None, evidence: Evidence
                  ) -> DataFrame | None:
    """The game ids deleted as of D (the catalogue of D marks them: the same rule, computed from the
    base catalogue's two columns so that the fact need not wait for the catalogue); None when there
    is none to leave out (no earlier catalogue, or none deleted in it and no complete refresh)."""
    dim_games = dataset(Layer.MARTS, CATALOGUE)
    counted = live_rows(spark, lake, dim_games, base) if base else None
    if base is None or counted is None or (counted[0] == counted[1] and not evidence.complete):
        return None
    changes = read_partition(spark, source_of(CATALOGUE).staging, lake, day)
    previous = read_partition(spark, dim_games, lake, base).select("game_id", DELETED_AT)
    present = present_keys(spark, changes, "game_id", evidence) if evidence.complete else None
    return deletions.deleted_keys(deletions.mark_deleted(previous, present, "game_id", day), changes, "game_id")


def write_fact(spark: SparkSession, lake: Lake, day: dt.date, check_keys: bool = False,
               deleted: DataFrame | None = None) -> tuple[int, int, int]:
    """fct_game_popularity of D: (rows, staging's key repeats, rows whose key it could not check).
    Games `deleted` as of D are left out before the percentiles are ranked. With `check_keys`,
    the fact's aggregation counts the repeats (`marts.key_repeat_counts`): the popularity staging
    table's key check without a job of its own."""
    popularity = read_partition(spark, source_of(FACT).staging, lake, day)
    if deleted is not None:
        popularity = deletions.without_keys(popularity, deleted, "game_id")
    fact = marts.popularity_fact(popularity, day, count_key_repeats=check_keys)
    keys = Observation()
    if check_keys:
        fact = fact.observe(keys, F.sum(marts.KEY_REPEATS).alias("repeats"),
                            F.sum(marts.KEY_UNCHECKED).alias("unchecked"))
    rows = write_partition(fact, dataset(Layer.MARTS, FACT), lake, day)  # drops the helper columns
    if not check_keys:
        return rows, 0, 0
    return rows, int(keys.get["repeats"] or 0), int(keys.get["unchecked"] or 0)


def write_checked_fact(spark: SparkSession, lake: Lake, day: dt.date, manifest: dict, staged: EntityCounts,
                       rank_at_once_below: int = RANK_AT_ONCE_BELOW, deleted: DataFrame | None = None
                       ) -> tuple[int, EntityCounts]:
    """The popularity fact of D, and the popularity staging counts with its key checked.

    A large popularity partition is staged without counting its keys (its declaration's
    `stage_counts_keys`): several rows a game, whose count is a shuffle of its own on the path to
    the fact. The fact counts repeated keys as it aggregates instead; in the rare case one repeats,
    staging is ranked again and the fact rebuilt from it. Rows of a type the count cannot check
    (an id over 62) fall back to counting the keys. `deleted`: the games deleted as of D."""
    source = source_of(FACT)
    unique = ranked_as_written(manifest, rank_at_once_below)  # then ranked as it was written: nothing to check
    rows, repeats, unchecked = write_fact(spark, lake, day, check_keys=not unique, deleted=deleted)
    if repeats or (unchecked and distinct_keys(spark, source.staging, lake, day) != staged.staged):
        staged = restage_latest(spark, lake, source.entity, day, manifest, staged)
        rows, _, _ = write_fact(spark, lake, day, deleted=deleted)
    return rows, staged


def write_marketing_marts(spark: SparkSession, lake: Lake, day: dt.date, base: dt.date | None, top_n: int
                          ) -> dict[str, int]:
    """The four ranked marts of D, from the live catalogue and the popularity fact of D (and the
    base date's fact, for the momentum)."""
    fct = dataset(Layer.MARTS, FACT)
    # the marketing marts need a few columns of the catalogue, not its free text. Each mart reads
    # its columns from the files again: caching the two frames first cost more than the reads it
    # saved (measured: the README's benchmark notes)
    catalogue = deletions.live(read_partition(spark, dataset(Layer.MARTS, CATALOGUE), lake, day)
                               ).select(*marts.CATALOGUE_COLUMNS)
    facts = read_partition(spark, fct, lake, day)
    previous_facts = _earlier(spark, lake, fct, base)
    frames = {
        "mart_top_rated": marts.top_rated(catalogue, day, top_n),
        "mart_top_hyped": marts.top_hyped(catalogue, facts, day, top_n),
        "mart_trending_now": marts.trending_now(catalogue, facts, previous_facts, day, top_n),
        "mart_hidden_gems": marts.hidden_gems(catalogue, facts, day, top_n),
    }

    def write(name: str) -> int:
        return write_partition(frames[name], dataset(Layer.MARTS, name), lake, day)

    # small outputs, mostly per-job overhead: written side by side
    return dict(zip(frames, map_in_threads(write, frames, TRANSFORM_THREADS, "mart"), strict=True))


def transform_tasks(spark: SparkSession, lake: Lake, day: dt.date, manifests: dict[str, dict], top_n: int,
                    base: dt.date | None, rank_at_once_below: int = RANK_AT_ONCE_BELOW) -> list[Task[Any]]:
    """Every output of D as a task after the outputs it reads, in the order to prefer among those ready:
    the largest raw entities first (so the small ones fill the gaps instead of holding them back),
    then the popularity fact and the catalogue, whose jobs are the longest. `base`: the earlier
    date D builds on (`catalogue_base`)."""
    games, popularity = source_of(CATALOGUE), source_of(FACT)  # the entities they are made from
    full_refresh = manifests[games.entity]["mode"] == "full"
    evidence_task = f"{games.entity} evidence"
    dimensions = {t.entity: t.dimension for t in TRANSFORMS.values() if t.dimension is not None}

    def stage(entity: str) -> Callable[[Mapping[str, Any]], EntityCounts]:
        def work(_: Mapping[str, Any]) -> EntityCounts:
            with log_context(entity=entity):
                return stage_entity(spark, lake, entity, day, manifests[entity], rank_at_once_below)
        return work

    def evidence(needs: Mapping[str, Any]) -> Evidence:
        return deletion_evidence(spark, lake, games.entity, day, manifests[games.entity],
                                 needs[stage_task(games.entity)].quarantined)

    def fact(needs: Mapping[str, Any]) -> tuple[int, EntityCounts]:
        with log_context(entity=popularity.entity):
            deleted = deleted_games(spark, lake, day, base, needs[evidence_task])
            return write_checked_fact(spark, lake, day, manifests[popularity.entity],
                                      needs[stage_task(popularity.entity)], rank_at_once_below, deleted)

    def dimension(transform: EntityTransform) -> Callable[[Mapping[str, Any]], tuple[Deletions, dict[int, str]]]:
        return lambda staged: write_dimension(spark, lake, day, transform, base, manifests[transform.entity],
                                              staged[stage_task(transform.entity)])

    # the reference entities whose names the catalogue holds: their dimensions list the names
    named = {entity: dimensions[entity] for _, entity, _, _ in BRIDGES}

    def catalogue(needs: Mapping[str, Any]) -> Deletions:
        names = {entity: needs[name][1] for entity, name in named.items()}
        return write_catalogue(spark, lake, day, base, full_refresh, names, needs[evidence_task])

    def bridge(table: str) -> Callable[[Mapping[str, Any]], int]:
        return lambda _: write_bridge(spark, lake, day, table)

    return [
        *[Task(stage_task(entity), stage(entity)) for entity in largest_first(manifests)],
        Task(evidence_task, evidence, (stage_task(games.entity),)),
        Task(FACT, fact, (stage_task(popularity.entity), evidence_task)),
        Task(CATALOGUE, catalogue, (evidence_task, *named.values())),
        *[Task(name, dimension(TRANSFORMS[entity]), (stage_task(entity),)) for entity, name in dimensions.items()],
        *[Task(table, bridge(table), (stage_task(games.entity),)) for table in games.bridges],
        Task("marketing marts", lambda _: write_marketing_marts(spark, lake, day, base, top_n), (CATALOGUE, FACT)),
    ]


def run_transform(spark: SparkSession, lake: Lake, day: dt.date, top_n: int = 100,
                  rank_at_once_below: int = RANK_AT_ONCE_BELOW, require_validated_base: bool = True
                  ) -> dict[str, Any]:
    """Everything Spark does for D; returns (and writes to the lake) the counts per entity and table.

    Each output is written as soon as the outputs it reads are (jobs.transform_tasks), a few at once:
    one Spark job of a date rarely keeps every core busy on its own. D builds on the newest earlier
    date with a catalogue, which must have passed validation (`catalogue_base`;
    `require_validated_base=False` lets a test build on a date it did not validate).
    """
    started = time.monotonic()
    with log_context(step="transform"):
        manifests = {entity: read_manifest(lake, entity, day) for entity in ENTITIES}  # each read once
        # before any Spark job: a missing entity, or an earlier date not validated, fails the step
        checked = {entity: require_manifest(entity, day, manifest) for entity, manifest in manifests.items()}
        base = catalogue_base(lake, day, require_validated_base)
        done = run_graph(transform_tasks(spark, lake, day, checked, top_n, base, rank_at_once_below),
                         TRANSFORM_THREADS, "transform")
        games, popularity = source_of(CATALOGUE), source_of(FACT)
        facts, done[stage_task(popularity.entity)] = done[FACT]  # the counts with the keys checked
        entities = {entity: done[stage_task(entity)] for entity in largest_first(manifests)}
        dimensions: dict[str, Deletions] = {t.dimension: done[t.dimension][0] for t in TRANSFORMS.values()
                                            if t.dimension is not None}
        dimensions[CATALOGUE] = done[CATALOGUE]
        rows = {table: done[table] for table in games.bridges}
        rows |= {name: counted.rows for name, counted in dimensions.items()}
        rows |= {FACT: facts, **done["marketing marts"]}
        report = {
            "dt": day.isoformat(),
            "full_refresh": checked[games.entity]["mode"] == "full",
            "base": None if base is None else base.isoformat(),
            "entities": {e: {**asdict(c), "collapsed": c.collapsed} for e, c in entities.items()},
            "rows": rows,
            "deletions": {name: asdict(counted) for name, counted in dimensions.items()},
            "seconds": round(time.monotonic() - started, 2),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        }
        lake.write_text(REPORT_PATH.format(day=day.isoformat()), json.dumps(report, indent=2) + "\n")
        event(log, "transform done", seconds=report["seconds"], dim_games=rows[CATALOGUE],
              deleted_games=dimensions[CATALOGUE].deleted)
    return report
