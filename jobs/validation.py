"""The validation gate for a date D: every staging table and mart, checked with Great Expectations.

Reads each output of D as written (the files' own schema, not the declared one, so a type drift
shows) and appends an orphan_* column per declared reference (an existence join with the target). Its
suite (jobs/suites.py) is measured in one Spark pass (jobs/rule_pass.py); every expectation that
pass finds failing is re-run by GX, whose verdict, counts and samples are what the report shows.
Then GX checks the count reconciliation per raw entity. The outcome is a summary (JSON and HTML
under reports/validation/dt=D/) and a verdict: any failed critical expectation blocks the load.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ingestion.drift import DRIFT_REPORT, drift_lines
from ingestion.entities import ENTITIES
from ingestion.landing import read_manifest
from jobs.datasets import DELETED_AT, MARTS, STAGING, Dataset, Layer, References, Severity, dataset
from jobs.footers import FooterStats, footer_schema, footer_stats, partition_footers, with_partition
from jobs.guards import HISTORY_KEY, Limits, figures, history_frame, history_suite
from jobs.io import literal_frame
from jobs.load_plan import digest_of
from jobs.reports import TRANSFORM_REPORT, VALIDATION_DIR, read_report
from jobs.rule_pass import Measure, measure_suite, signature
from jobs.suites import (
    RECONCILIATION_KEY,
    dataset_suite,
    narrowed,
    orphan_column,
    reconciliation_suite,
    reference_rule,
    references,
)
from jobs.transform import staging_table
from jobs.validation_report import render_html
from pipeline.errors import ConfigError, ExitCode, PipelineError
from pipeline.lake import Lake
from pipeline.logs import event, log_context
from pipeline.threads import map_in_threads

log = logging.getLogger(__name__)

REPORT_DIR = VALIDATION_DIR
DRIFT = "checks/drift"
SAMPLES = 5  # unexpected values shown per failed expectation
VALIDATION_THREADS = 3  # GX's Python work on one dataset overlaps Spark's work on another


class ValidationFailed(PipelineError):
    """A critical expectation failed: the load must not run. Carries the summary for the ledger."""

    exit_code = ExitCode.VALIDATION

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


class MissingInput(PipelineError):
    """Validation needs the transform's outputs and report for D."""


@dataclass(frozen=True)
class Outcome:
    """One expectation's verdict, in the words an operator reads in the report."""

    suite: str
    expectation: str
    description: str
    column: str | None
    severity: str
    success: bool
    observed: Any = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    samples: list[Any] = field(default_factory=list)
    error: str | None = None

    @property
    def blocking(self) -> bool:
        return not self.success and self.severity == Severity.CRITICAL.value


def _plain(value: Any) -> Any:
    """Spark/GX values as JSON: dates as ISO text, rows as dicts."""
    return json.loads(json.dumps(value, default=str))


def _outcome(suite: str, result: Any) -> Outcome:
    config, found = result.expectation_config, result.result or {}
    exception = result.exception_info or {}
    raised = exception.get("raised_exception") if isinstance(exception, dict) else False
    samples = found.get("partial_unexpected_index_list") or found.get("partial_unexpected_list") or []
    return Outcome(
        suite=suite,
        expectation=config.type,
        description=config.description or config.type,
        column=config.kwargs.get("column"),
        severity=str(getattr(config.severity, "value", config.severity)),
        success=bool(result.success),
        observed=_plain(found.get("observed_value")),
        unexpected_count=found.get("unexpected_count"),
        unexpected_percent=found.get("unexpected_percent"),
        samples=_plain(samples[:SAMPLES]),
        error=exception.get("exception_message") if raised else None,
    )


class GxRunner:
    """One ephemeral GX context with a Spark data source; one dataframe asset per suite.

    `explain` runs chosen expectations with SUMMARY results: GX's verdict, unexpected count and
    sample values with their keys. `run` validates a whole (small) frame: every expectation with
    BOOLEAN_ONLY results first, which GX computes in a few bundled aggregations, then the failed
    ones explained.
    """

    def __init__(self) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no phoning home from a batch job
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        self._gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._lock = threading.Lock()  # the context's stores are plain dicts: register one thing at a time
        self._local = threading.local()

    def _source(self) -> Any:
        """A Spark data source per thread: each has its own execution engine and active batch."""
        if not hasattr(self._local, "source"):
            self._local.source = self.context.data_sources.add_spark(
                f"lake-{threading.get_ident()}", persist=False)  # the gate caches exactly what is read
        return self._local.source

    def _results(self, suite: Any, frame: DataFrame, result_format: Any) -> list[Any]:
        name = suite.name.replace("/", ".")
        with self._lock:
            batch = self._source().add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
            definition = self.context.validation_definitions.add(
                self._gx.ValidationDefinition(name=name, data=batch, suite=self.context.suites.add(suite)))
        result = definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)
        return list(result.results)

    def explain(self, suite: Any, frame: DataFrame, index_columns: Sequence[str],
                positions: Collection[int]) -> dict[int, Outcome]:
        """GX's own outcome of the expectations at these positions, with up to SAMPLES unexpected
        rows (and their keys) for each one that fails."""
        detail = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLES,
                  "unexpected_index_column_names": list(index_columns)}
        chosen = narrowed(suite, set(positions))
        by_signature = {signature(r.expectation_config): r for r in self._results(chosen, frame, detail)}
        return {i: _outcome(suite.name, by_signature[signature(e.configuration)])
                for i, e in enumerate(suite.expectations) if i in positions}

    def run(self, suite: Any, frame: DataFrame, index_columns: Sequence[str]) -> list[Outcome]:
        """Validate all of `frame` with GX; outcomes in the suite's order (GX returns its own order)."""
        results = {signature(r.expectation_config): r for r in self._results(suite, frame, "BOOLEAN_ONLY")}
        verdicts = [results[signature(e.configuration)] for e in suite.expectations]
        failed = {i for i, result in enumerate(verdicts) if not result.success}
        explained = self.explain(suite, frame, index_columns, failed) if failed else {}
        return [explained.get(i) or _outcome(suite.name, result) for i, result in enumerate(verdicts)]


@dataclass(frozen=True)
class Written:
    """One output's dt=D as the gate reads it, from a single listing of the partition (a LIST
    request on S3): its rows, the digest naming its files (outputs published as copies of the
    same files share it), and what their footers say (None for files Spark did not write)."""

    frame: DataFrame
    digest: str
    footers: FooterStats | None = None


def read_written(spark: SparkSession, lake: Lake, ds: Dataset, day: dt.date) -> Written | None:
    """D's files as written, with the dt column from the path; None when the partition is missing.
    The footers give the schema (Spark's inference would run a job to read it) and statistics."""
    partition = ds.partition_rel_path(day.isoformat())
    listed = lake.list_files(partition)
    if not listed:
        return None
    reader = spark.read.option("basePath", lake.uri_of(ds.rel_path))
    footers = partition_footers(spark, lake, partition, listed)
    written = footer_schema(footers[0]) if footers else None
    frame = (reader.schema(written) if written is not None else reader).parquet(lake.uri_of(partition))
    return Written(frame, digest_of(listed) or ds.rel_path,
                   with_partition(footer_stats(footers, written), day) if written is not None else None)


def with_orphans(frame: DataFrame, ds: Dataset, known_views: Mapping[tuple[str, str], str],
                 settled: Collection[References] = ()) -> DataFrame:
    """The frame plus one orphan_<column> per declared reference: the value when the target lacks it.

    `known_views[(target, column)]` names a temp view of the target's values in a column named
    `_found` (`known_ids`). Each reference is an EXISTS over it, which Spark plans as a broadcast
    existence join: the target side is at most the catalogue's game ids, nothing is shuffled, and
    a target value present twice cannot multiply the frame's rows (a left join would), so the
    view needs no distinct. A `settled` reference (found passing on the same files against the
    same target files) gets an all-null column of the same type instead: nothing reads it but the
    column-set rule.
    """
    out = frame
    for ref in references(ds):
        if ref in settled:
            out = out.withColumn(orphan_column(ref), F.lit(None).cast(frame.schema[ref.column].dataType))
            continue
        view = known_views[(ref.target, ref.target_column)]
        found = F.expr(f"EXISTS (SELECT /*+ BROADCAST({view}) */ 1 FROM {view} WHERE {view}._found = `{ref.column}`)")
        out = out.withColumn(orphan_column(ref), F.when(~found, F.col(ref.column)))
    return out


RECONCILIATION_SCHEMA = T.StructType([
    T.StructField("entity", T.StringType(), False),
    T.StructField("raw_lines", T.LongType(), False),
    T.StructField("staged", T.LongType(), False),
    T.StructField("collapsed", T.LongType(), False),
    T.StructField("quarantined", T.LongType(), False),
    T.StructField("unaccounted_lines", T.LongType(), False),
    T.StructField("quarantine_share", T.DoubleType(), False),
])


def reconciliation_rows(raw_lines: int, staged: int, collapsed: int, quarantined: int) -> tuple[int, float]:
    """(unaccounted lines, quarantine share): what the reconciliation suite checks for one entity."""
    return raw_lines - staged - collapsed - quarantined, (quarantined / raw_lines if raw_lines else 0.0)


@dataclass
class Gate:
    """The checks of one date, collected: what ran, what failed, and the verdict."""

    day: dt.date
    run_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def blocking(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.blocking]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and not o.blocking]

    def summary(self, seconds: float, max_quarantine_share: float) -> dict[str, Any]:
        suites: dict[str, list[dict[str, Any]]] = {}
        for o in self.outcomes:
            suites.setdefault(o.suite, []).append(asdict(o))
        return {
            "dt": self.day.isoformat(),
            "run_id": self.run_id,
            "passed": not self.blocking,
            "validated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seconds": round(seconds, 2),
            "max_quarantine_share": max_quarantine_share,
            "expectations": len(self.outcomes),
            "critical_failures": len(self.blocking),
            "warnings": len(self.warnings),
            "failures": [asdict(o) for o in self.blocking],
            "warned": [asdict(o) for o in self.warnings],
            "rows": self.rows,
            "suites": suites,
        }


def _missing(ds: Dataset, day: dt.date, why: str | None = None) -> Outcome:
    """A suite that could not run fails critically: an unchecked output is never loaded."""
    return Outcome(suite=ds.rel_path, expectation="partition_exists", description=f"{ds.rel_path}/dt={day} exists",
                   column=None, severity=Severity.CRITICAL.value, success=False,
                   error=why or f"no files under {ds.partition_rel_path(day.isoformat())}: run the transform for {day}")


def transform_report(lake: Lake, day: dt.date) -> dict[str, Any]:
    """The transform's summary of D, or MissingInput naming the step to run first."""
    path = TRANSFORM_REPORT.format(day=day.isoformat())
    text = lake.read_text(path)
    if text is None:
        raise MissingInput(f"{path} is missing: run `igdb-pipeline transform --date {day}` before validating")
    report: dict[str, Any] = json.loads(text)
    return report


def _rows_of(written: Written | None) -> int:
    """Rows of an output as its footers count them (a Spark count only for files Spark did not write)."""
    if written is None:
        return 0
    return written.footers.rows if written.footers is not None else written.frame.count()


def _reconciliation(spark: SparkSession, lake: Lake, day: dt.date, report: dict[str, Any],
                    read: Mapping[str, Written | None], suite_rows: dict[str, int]) -> DataFrame:
    """Per raw entity: lines in the manifest, rows staged and quarantined as found in the lake, and
    lines the transform reported folded into a newer version of their key. `suite_rows` holds the
    rows the suites already counted; the rest are counted from the files' footers."""
    rows = []
    for entity in ENTITIES:
        manifest = read_manifest(lake, entity, day)
        if manifest is None:
            raise MissingInput(f"raw/{entity}/dt={day} has no manifest: ingest {day} first")
        counted = report["entities"].get(entity, {})
        quarantined = _rows_of(read.get(dataset(Layer.QUARANTINE, entity).rel_path))
        table = staging_table(entity)
        staged = suite_rows[table] if table in suite_rows else _rows_of(read.get(table))
        collapsed = int(counted.get("valid", 0)) - int(counted.get("staged", 0))
        unaccounted, share = reconciliation_rows(manifest["records"], staged, collapsed, quarantined)
        rows.append((entity, manifest["records"], staged, collapsed, quarantined, unaccounted, share))
    return literal_frame(spark, rows, RECONCILIATION_SCHEMA)


def _read_outputs(spark: SparkSession, lake: Lake, day: dt.date) -> dict[str, Written | None]:
    """Every staging table, mart and quarantine of D (None when missing), listed and footers read
    in parallel."""
    outputs = (*STAGING, *MARTS, *(dataset(Layer.QUARANTINE, entity) for entity in ENTITIES))
    read = map_in_threads(lambda ds: read_written(spark, lake, ds, day), outputs, VALIDATION_THREADS, "read")
    return {ds.rel_path: written for ds, written in zip(outputs, read, strict=True)}


@contextmanager
def known_ids(spark: SparkSession, frames: dict[str, DataFrame]) -> Iterator[dict[tuple[str, str], str]]:
    """A temp view per referenced (target, column) of the target's values as `_found`, cached
    while the gate runs. No distinct (a job per target): `with_orphans`'s EXISTS is right however
    often a value repeats, and every target column is its target's whole key, so the broadcast
    holds the target's rows and no more."""
    targets = {(r.target, r.target_column) for ds in (*STAGING, *MARTS) for r in references(ds)}
    run = uuid.uuid4().hex[:8]  # gates of one session (tests, threads) never share a view
    cached = {(t, c): frames[t].select(F.col(c).alias("_found")).persist(StorageLevel.MEMORY_AND_DISK)
              for t, c in sorted(targets) if t in frames}
    views = {key: f"_known_{run}_{i}" for i, key in enumerate(cached)}
    for key, frame in cached.items():
        frame.createOrReplaceTempView(views[key])
    try:
        yield views
    finally:
        for view in views.values():
            spark.catalog.dropTempView(view)
        for frame in cached.values():
            frame.unpersist()


def _measured_outcome(suite: str, expectation: Any, measure: Measure, rows: int) -> Outcome:
    """A passing expectation's outcome as the one-pass measured it (failures come from GX)."""
    kwargs, unexpected = expectation.configuration.kwargs, measure.unexpected_count
    return Outcome(suite=suite, expectation=expectation.expectation_type,
                   description=expectation.description or expectation.expectation_type, column=kwargs.get("column"),
                   severity=str(expectation.severity.value), success=measure.success, observed=_plain(measure.observed),
                   unexpected_count=unexpected,
                   unexpected_percent=None if unexpected is None else (100.0 * unexpected / rows if rows else 0.0))


@dataclass
class SameFiles:
    """What the outputs of one partition digest (a mart published as a copy of a staging table's
    files) have measured so far: rows and measures by expectation signature, shared between them."""

    rows: int | None = None
    measures: dict[str, Measure] = field(default_factory=dict)


def _validate_dataset(runner: GxRunner, ds: Dataset, written: Written, known: Mapping[tuple[str, str], str],
                      day: dt.date, now: dt.datetime, same_files: SameFiles,
                      targets: dict[str, str]) -> tuple[int, list[Outcome]]:
    """(rows, outcomes) of one dataset's suite: one pass measures every expectation not measured on
    the same files already nor proved by their footers, GX explains (and has the last word on)
    each one found failing. `targets` names each output's files (`reference_identity`)."""
    began, frame = time.monotonic(), written.frame
    suite = dataset_suite(ds, day, now, targets)
    settled = [ref for ref in references(ds)
               if (found := same_files.measures.get(signature(reference_rule(ref, targets).configuration)))
               and found.success]
    checked = with_orphans(frame, ds, known, settled)
    rows, measures = measure_suite(suite, checked, keyed=frame, known=same_files.measures, rows=same_files.rows,
                                   footers=written.footers)
    same_files.rows = rows
    same_files.measures.update(zip((signature(e.configuration) for e in suite.expectations), measures, strict=True))
    failing = {i for i, measure in enumerate(measures) if not measure.success}
    explained: dict[int, Outcome] = {}
    if failing:
        checked = checked.persist(StorageLevel.MEMORY_AND_DISK)  # GX makes several passes over it
        try:
            explained = runner.explain(suite, checked, ds.key, failing)
        finally:
            checked.unpersist()
        if cleared := sorted(explained[i].description for i in failing if explained[i].success):
            event(log, "GX passed what the one-pass measure rejected", level=logging.WARNING, output=ds.rel_path,
                  expectations=cleared)
    outcomes = [explained.get(i) or _measured_outcome(suite.name, e, measures[i], rows)
                for i, e in enumerate(suite.expectations)]
    event(log, f"validated {ds.rel_path}", rows=rows, failed=sum(not o.success for o in outcomes),
          seconds=round(time.monotonic() - began, 2))
    return rows, outcomes


def _drift_outcomes(lake: Lake, day: dt.date) -> list[Outcome]:
    """The schema drift ingestion found for D (reports/drift), as warnings: a field IGDB added or
    stopped returning needs a look, never a blocked load."""
    entities = (read_report(lake, DRIFT_REPORT, day) or {}).get("entities", {})
    return [Outcome(suite=DRIFT, expectation="schema_drift", description=line, column=None,
                    severity=Severity.WARNING.value, success=False, observed=entities[entity])
            for entity, line in drift_lines(entities).items()]


def _live_of(written: Written | None) -> int:
    """A dimension's rows not deleted, as its footers count them (a Spark count only without them)."""
    if written is None:
        return 0
    deleted = written.footers.columns.get(DELETED_AT) if written.footers is not None else None
    if deleted is not None and deleted.nulls is not None:
        return deleted.nulls
    return written.frame.where(F.col(DELETED_AT).isNull()).count()


def _guard_outcomes(runner: GxRunner, spark: SparkSession, lake: Lake, day: dt.date, report: dict[str, Any],
                    read: Mapping[str, Written | None], limits: Limits, last_loaded: dt.date | None
                    ) -> list[Outcome]:
    """The change guards' verdicts: D's deletions and counts against its base and the last loaded date."""
    found = figures(spark, lake, report, _live_of(read["marts/dim_games"]), _rows_of(read["marts/fct_game_popularity"]),
                    last_loaded)
    return runner.run(history_suite(found, limits), history_frame(spark, day, found), HISTORY_KEY)


def run_validation(spark: SparkSession, lake: Lake, day: dt.date, run_id: str, max_quarantine_share: float = 0.01,
                   now: dt.datetime | None = None, only: Collection[str] | None = None,
                   limits: Limits | None = None, last_loaded: dt.date | None = None) -> dict[str, Any]:
    """Validate every staging table and mart of D; write the report; return its summary.

    `only` limits the suites to some outputs ("layer/name"), to re-check one after a fix; such a
    summary says `complete: false`, and only a complete one lets the load run. The count
    reconciliation, the change guards (`limits`; against `last_loaded`, the last date loaded
    before D) and the schema drift ingestion found always run. Raises ValidationFailed (exit 3)
    when a critical expectation failed; warnings never raise.
    """
    limits = limits or Limits()
    selected = [ds for ds in (*STAGING, *MARTS) if only is None or ds.rel_path in only]
    if only is not None and (unknown := sorted(set(only) - {ds.rel_path for ds in (*STAGING, *MARTS)})):
        raise ConfigError(f"unknown output(s) {', '.join(unknown)}: give layer/name, e.g. marts/dim_games")
    started = time.monotonic()
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)  # naive UTC, like the session's timestamps
    gate = Gate(day, run_id)
    with log_context(step="validate"):
        report = transform_report(lake, day)
        runner = GxRunner()
        read = _read_outputs(spark, lake, day)
        present = {name: written for name, written in read.items() if written is not None}
        frames = {name: written.frame for name, written in present.items()}
        event(log, "read the outputs' footers", outputs=len(frames), seconds=round(time.monotonic() - started, 2))
        # a dataset whose partition (or a reference target's) is missing cannot run its suite
        ready = [ds for ds in selected
                 if ds.rel_path in frames and all(r.target in frames for r in references(ds))]

        # outputs published as copies of the same files (a mart bridge or dimension of its staging
        # table) form one group: a rule they share is measured once, in the order declared
        files = {name: written.digest for name, written in present.items()}
        groups: dict[str, list[Dataset]] = {}
        for ds in ready:
            groups.setdefault(files[ds.rel_path], []).append(ds)

        def validate(members: list[Dataset]) -> list[tuple[int, list[Outcome]]]:
            same_files = SameFiles()
            return [_validate_dataset(runner, ds, present[ds.rel_path], known, day, now, same_files, files)
                    for ds in members]

        with known_ids(spark, frames) as known:
            # largest first, so the many small ones fill the gaps at the end; GX's Python work on
            # one dataset overlaps Spark's work on another
            ordered = sorted(groups.values(), key=lambda g: -sum(len(d.columns) * (1 + len(references(d))) for d in g))
            done = {ds.rel_path: result for group, results in zip(ordered, map_in_threads(
                validate, ordered, VALIDATION_THREADS, "validate"), strict=True) for ds, result in zip(group, results,
                                                                                                       strict=True)}
        for ds in selected:  # the report lists outputs in declaration order
            if read[ds.rel_path] is None:
                gate.outcomes.append(_missing(ds, day))
            elif ds.rel_path in done:
                gate.rows[ds.rel_path], outcomes = done[ds.rel_path]
                gate.outcomes.extend(outcomes)
            else:
                absent = sorted({r.target for r in references(ds)} - set(frames))
                gate.outcomes.append(_missing(ds, day, f"its references cannot be checked: {', '.join(absent)} "
                                                       f"missing for {day}"))
        gate.outcomes.extend(runner.run(reconciliation_suite(max_quarantine_share),
                                        _reconciliation(spark, lake, day, report, read, gate.rows),
                                        RECONCILIATION_KEY))
        gate.outcomes.extend(_guard_outcomes(runner, spark, lake, day, report, read, limits, last_loaded))
        gate.outcomes.extend(_drift_outcomes(lake, day))
        summary = gate.summary(time.monotonic() - started, max_quarantine_share)
        summary["complete"] = only is None
        summary["accepted_changes"] = limits.accepted
        summary["last_loaded"] = None if last_loaded is None else last_loaded.isoformat()
        summary["transform_finished_at"] = report.get("finished_at")  # the load checks it is still current
        summary["report"] = _write_report(lake, day, summary)
        event(log, "validation done", passed=summary["passed"], expectations=summary["expectations"],
              critical_failures=summary["critical_failures"], warnings=summary["warnings"],
              seconds=summary["seconds"])
    if not summary["passed"]:
        raise ValidationFailed(failure_message(summary), summary)
    return summary


def _write_report(lake: Lake, day: dt.date, summary: dict[str, Any]) -> str:
    """summary.json and index.html under reports/validation/dt=D/; the page's URI."""
    folder = REPORT_DIR.format(day=day.isoformat())
    lake.write_text(f"{folder}/summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    lake.write_text(f"{folder}/index.html", render_html(summary))
    return lake.uri_of(f"{folder}/index.html")


def failure_message(summary: dict[str, Any], shown: int = 5) -> str:
    """What an operator reads first: how many failed, the first few with samples, where the report is."""
    failures = summary["failures"]
    lines = [f"validation of dt={summary['dt']} failed: {len(failures)} critical expectation(s); nothing was loaded."]
    for f in failures[:shown]:
        detail = f["error"] or (f"{f['unexpected_count']} unexpected" if f["unexpected_count"] is not None
                                else f"observed {f['observed']}")
        sample = f", e.g. {json.dumps(f['samples'][:3], default=str)}" if f["samples"] else ""
        lines.append(f"  - {f['suite']}: {f['description']} ({detail}{sample})")
    if len(failures) > shown:
        lines.append(f"  ... and {len(failures) - shown} more")
    lines.append(f"  report: {summary.get('report', REPORT_DIR.format(day=summary['dt']))}")
    return "\n".join(lines)

