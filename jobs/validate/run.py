"""The validation gate for a date D: every staging table and mart, checked with Great Expectations.

Reads each output of D as written (the files' own schema, not the declared one, so a type drift
shows) and appends an orphan_* column per declared reference (an existence join with the target). Its
suite (jobs/validate/suites.py) is measured in one Spark pass (jobs/validate/rule_pass.py); every expectation that
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

import great_expectations as gx
from great_expectations.data_context.types.base import ProgressBarsConfig
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from core.entities import ENTITIES
from core.errors import ConfigError, ExitCode, PipelineError
from core.lake import Lake
from core.logs import event, log_context
from core.raw_lake import DRIFT_REPORT, drift_lines, read_manifest
from core.threads import map_in_threads
from jobs.datasets import DELETED_AT, MARTS, STAGING, Dataset, Layer, References, Severity, dataset, staging_table
from jobs.fingerprint import digest_of
from jobs.footers import FooterStats, footer_schema, footer_stats, partition_footers, with_partition
from jobs.io import literal_frame
from jobs.reports import TRANSFORM_REPORT, VALIDATION_DIR, read_report
from jobs.validate.guards import HISTORY_KEY, Limits, figures, history_frame, history_suite
from jobs.validate.gx_artifacts import record_gate
from jobs.validate.report import render_html
from jobs.validate.rule_pass import Measure, measure_suite, signature
from jobs.validate.suites import (
    RECONCILIATION_KEY,
    dataset_suite,
    narrowed,
    orphan_column,
    reconciliation_suite,
    reference_rule,
    references,
)
from jobs.validate.user_expectations import UserSuite

log = logging.getLogger(__name__)

REPORT_DIR = VALIDATION_DIR
DRIFT = "checks/drift"
SAMPLES = 5  # unexpected values shown per failed expectation
ENGINES = ("fast", "gx")
# On an empty batch GX's value rules report no unexpected count, its uniqueness rules 0: the fast
# engine reports what GX would, so both engines' reports read the same
COUNTED_WHEN_EMPTY = frozenset({"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"})
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
    """GX's result in the report's words."""
    config = result.expectation_config
    found = result.result or {}
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
        """GX's results in the suite's order. Matched by the id the context gives each expectation:
        GX returns its own order, and a result's configuration has suite parameters (a user's
        `{"$PARAMETER": "now() - timedelta(days=2)"}`) already evaluated."""
        name = suite.name.replace("/", ".")
        with self._lock:
            added = self.context.suites.add(suite)
            batch = self._source().add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
            definition = self.context.validation_definitions.add(
                self._gx.ValidationDefinition(name=name, data=batch, suite=added))
        result = definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)
        by_id = {r.expectation_config.id: r for r in result.results if r.expectation_config is not None}
        return [by_id[e.id] for e in added.expectations]

    def explain(self, suite: Any, frame: DataFrame, index_columns: Sequence[str],
                positions: Collection[int]) -> dict[int, Outcome]:
        """GX's own outcome of the expectations at these positions, with up to SAMPLES unexpected
        rows (and their keys) for each one that fails."""
        detail = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLES,
                  "unexpected_index_column_names": list(index_columns)}
        picked = [i for i in range(len(suite.expectations)) if i in positions]
        results = self._results(narrowed(suite, set(picked)), frame, detail)
        return {i: _outcome(suite.name, result) for i, result in zip(picked, results, strict=True)}

    def evaluate(self, suite: Any, frame: DataFrame, index_columns: Sequence[str]) -> list[Outcome]:
        """Every expectation of the suite through GX's own engine, each with its unexpected count
        (BASIC results), the failures explained: the reference engine (`validate --engine gx`)."""
        return self.run(suite, frame, index_columns, "BASIC")

    def run(self, suite: Any, frame: DataFrame, index_columns: Sequence[str],
            result_format: str = "BOOLEAN_ONLY") -> list[Outcome]:
        """Validate all of `frame` with GX; outcomes in the suite's order (GX returns its own order)."""
        verdicts = self._results(suite, frame, result_format)
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
    validated: list[tuple[Any, list[Outcome]]] = field(default_factory=list)  # (GX suite, its outcomes)
    disagreements: list[dict[str, Any]] = field(default_factory=list)  # where GX and the one-pass differ

    def add(self, suite: Any, outcomes: list[Outcome]) -> None:
        """A suite's outcomes, in its order: counted in the verdict and recorded in GX's project."""
        self.outcomes.extend(outcomes)
        self.validated.append((suite, outcomes))

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


def _measured_outcome(suite: str, expectation: Any, measure: Measure | None, rows: int) -> Outcome:
    """A passing expectation's outcome as the one-pass measured it (failures come from GX)."""
    assert measure is not None, f"{expectation.expectation_type} was neither measured nor asked of GX"
    kwargs = expectation.configuration.kwargs
    empty_count = expectation.expectation_type in COUNTED_WHEN_EMPTY
    unexpected = measure.unexpected_count if rows or empty_count else None
    return Outcome(suite=suite, expectation=expectation.expectation_type,
                   description=expectation.description or expectation.expectation_type, column=kwargs.get("column"),
                   severity=str(expectation.severity.value), success=measure.success, observed=_plain(measure.observed),
                   unexpected_count=unexpected,
                   unexpected_percent=None if unexpected is None or not rows else 100.0 * unexpected / rows)


@dataclass
class SameFiles:
    """What the outputs of one partition digest (a mart published as a copy of a staging table's
    files) have measured so far: rows and measures by expectation signature, shared between them."""

    rows: int | None = None
    measures: dict[str, Measure] = field(default_factory=dict)


@dataclass(frozen=True)
class Checked:
    """One output's suite as the gate decided it: its rows, the suite, one outcome per expectation
    in the suite's order, and where the one-pass and GX disagreed about a failure."""

    rows: int
    suite: Any
    outcomes: list[Outcome]
    disagreements: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def _cached(frame: DataFrame) -> Iterator[DataFrame]:
    """The frame cached while GX makes its several passes over it."""
    cached = frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        yield cached
    finally:
        cached.unpersist()


def _explained(runner: GxRunner, suite: Any, checked: DataFrame, key: Sequence[str],
               positions: Collection[int]) -> dict[int, Outcome]:
    """GX's outcome of these expectations over `checked`."""
    if not positions:
        return {}
    with _cached(checked) as cached:
        return runner.explain(suite, cached, key, positions)


def _disagreements(suite: Any, measures: Sequence[Measure | None], explained: Mapping[int, Outcome]
                   ) -> list[dict[str, Any]]:
    """The failures the one-pass measured that GX decided or counted otherwise: a bug in the
    one-pass evaluator (GX's outcome is the one reported), never expected."""
    found = []
    for i, outcome in explained.items():
        measure = measures[i]
        if measure is not None and (outcome.success or measure.unexpected_count != outcome.unexpected_count):
            found.append({"suite": suite.name, "description": outcome.description, "expectation": outcome.expectation,
                          "one_pass_unexpected": measure.unexpected_count, "gx_success": outcome.success,
                          "gx_unexpected": outcome.unexpected_count})
    return found


def _validate_dataset(runner: GxRunner, ds: Dataset, written: Written, known: Mapping[tuple[str, str], str],
                      day: dt.date, now: dt.datetime, same_files: SameFiles, targets: dict[str, str],
                      user: Sequence[Any] = (), engine: str = "fast") -> Checked:
    """One dataset's suite (declared rules, then the users' own `user`). The fast engine: one pass
    measures every expectation not measured on the same files already nor proved by their footers;
    GX explains (and has the last word on) each one found failing, and decides those the pass
    cannot measure. The gx engine: GX's own Spark engine decides every expectation.
    `targets` names each output's files (`reference_identity`)."""
    began, frame = time.monotonic(), written.frame
    suite = dataset_suite(ds, day, now, targets, user)
    if engine == "gx":
        with _cached(with_orphans(frame, ds, known)) as cached:
            checked = Checked(_rows_of(written), suite, runner.evaluate(suite, cached, ds.key))
    else:
        checked = _measured(runner, ds, written, known, suite, same_files, targets)
    event(log, f"validated {ds.rel_path}", rows=checked.rows, failed=sum(not o.success for o in checked.outcomes),
          seconds=round(time.monotonic() - began, 2))
    return checked


def _measured(runner: GxRunner, ds: Dataset, written: Written, known: Mapping[tuple[str, str], str], suite: Any,
              same_files: SameFiles, targets: dict[str, str]) -> Checked:
    """The fast engine's outcomes of one suite (see `_validate_dataset`)."""
    settled = [ref for ref in references(ds)
               if (found := same_files.measures.get(signature(reference_rule(ref, targets).configuration)))
               and found.success]
    checked = with_orphans(written.frame, ds, known, settled)
    rows, measures = measure_suite(suite, checked, keyed=written.frame, known=same_files.measures,
                                   rows=same_files.rows, footers=written.footers)
    same_files.rows = rows
    same_files.measures.update((signature(e.configuration), m)
                               for e, m in zip(suite.expectations, measures, strict=True) if m is not None)
    # GX decides what the pass found failing and what it cannot measure (users' rules of other kinds)
    asked = {i for i, measure in enumerate(measures) if measure is None or not measure.success}
    explained = _explained(runner, suite, checked, ds.key, asked)
    disagreements = _disagreements(suite, measures, explained)
    if disagreements:
        event(log, "GX and the one-pass measure disagree; GX's outcome is reported", level=logging.WARNING,
              output=ds.rel_path, expectations=[d["description"] for d in disagreements])
    outcomes = [explained[i] if i in explained else _measured_outcome(suite.name, e, measures[i], rows)
                for i, e in enumerate(suite.expectations)]
    return Checked(rows, suite, outcomes, disagreements)


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
                    ) -> tuple[Any, list[Outcome]]:
    """The change guards' suite and verdicts: D's deletions and counts against its base and the last loaded date."""
    found = figures(spark, lake, report, _live_of(read["marts/dim_games"]), _rows_of(read["marts/fct_game_popularity"]),
                    last_loaded)
    suite = history_suite(found, limits)
    return suite, runner.run(suite, history_frame(spark, day, found), HISTORY_KEY)


def run_validation(spark: SparkSession, lake: Lake, day: dt.date, run_id: str, max_quarantine_share: float = 0.01,
                   now: dt.datetime | None = None, only: Collection[str] | None = None,
                   limits: Limits | None = None, last_loaded: dt.date | None = None,
                   user: Mapping[str, UserSuite] | None = None, engine: str = "fast",
                   data_docs: bool = True) -> dict[str, Any]:
    """Validate every staging table and mart of D; write the report; return its summary.

    `user` holds the users' own suites by output (jobs/validate/user_expectations.py), added to the
    generated ones. `engine` "fast" decides with the one-pass evaluator and asks GX only about
    failures and what it cannot measure; "gx" asks GX's own Spark engine about everything.
    `data_docs`: record the gate in the lake's GX project and update its Data Docs.

    `only` limits the suites to some outputs ("layer/name"), to re-check one after a fix; such a
    summary says `complete: false`, and only a complete one lets the load run. The count
    reconciliation, the change guards (`limits`; against `last_loaded`, the last date loaded
    before D) and the schema drift ingestion found always run. Raises ValidationFailed (exit 3)
    when a critical expectation failed; warnings never raise.
    """
    limits = limits or Limits()
    user = user or {}
    if engine not in ENGINES:
        raise ConfigError(f"unknown validation engine {engine!r}: one of {', '.join(ENGINES)}")
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

        def validate(members: list[Dataset]) -> list[Checked]:
            same_files = SameFiles()
            return [_validate_dataset(runner, ds, present[ds.rel_path], known, day, now, same_files, files,
                                      user[ds.rel_path].expectations if ds.rel_path in user else (), engine)
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
                checked = done[ds.rel_path]
                gate.rows[ds.rel_path] = checked.rows
                gate.add(checked.suite, checked.outcomes)
                gate.disagreements.extend(checked.disagreements)
            else:
                absent = sorted({r.target for r in references(ds)} - set(frames))
                gate.outcomes.append(_missing(ds, day, f"its references cannot be checked: {', '.join(absent)} "
                                                       f"missing for {day}"))
        reconciliation = reconciliation_suite(max_quarantine_share)
        gate.add(reconciliation, runner.run(reconciliation, _reconciliation(spark, lake, day, report, read, gate.rows),
                                            RECONCILIATION_KEY))
        gate.add(*_guard_outcomes(runner, spark, lake, day, report, read, limits, last_loaded))
        gate.outcomes.extend(_drift_outcomes(lake, day))
        summary = gate.summary(time.monotonic() - started, max_quarantine_share)
        summary["complete"] = only is None
        summary["engine"] = engine
        summary["user_suites"] = sorted(user)
        summary["disagreements"] = gate.disagreements
        summary["accepted_changes"] = limits.accepted
        summary["last_loaded"] = None if last_loaded is None else last_loaded.isoformat()
        summary["transform_finished_at"] = report.get("finished_at")  # the load checks it is still current
        summary["data_docs"], summary["docs_seconds"] = (_record_in_gx(lake, gate, summary["validated_at"])
                                                         if data_docs else (None, 0.0))
        summary["report"] = _write_report(lake, day, summary)
        event(log, "validation done", passed=summary["passed"], expectations=summary["expectations"],
              critical_failures=summary["critical_failures"], warnings=summary["warnings"],
              seconds=summary["seconds"])
    if not summary["passed"]:
        raise ValidationFailed(failure_message(summary), summary)
    return summary


def _record_in_gx(lake: Lake, gate: Gate, validated_at: str) -> tuple[str | None, float]:
    """The gate's results stored in the lake's GX project and its Data Docs updated (jobs/validate/gx_artifacts.py):
    (the Data Docs index URI, seconds it took, apart from the verdict's). A failure to record is
    logged as an error and leaves the URI None: the verdict stands either way."""
    started = time.monotonic()
    try:
        docs: str | None = record_gate(lake.uri, gate.day, gate.run_id, dt.datetime.fromisoformat(validated_at),
                                       gate.validated)
    except Exception as exc:  # noqa: BLE001 - documentation of a verdict never overturns it; the error is reported
        docs = None
        event(log, f"the GX project and Data Docs could not be updated: {exc}", level=logging.ERROR)
    seconds = round(time.monotonic() - started, 2)
    if docs:
        event(log, "validation results stored in the GX project, Data Docs updated", data_docs=docs, seconds=seconds)
    return docs, seconds


def _write_report(lake: Lake, day: dt.date, summary: dict[str, Any]) -> str:
    """summary.json and index.html under reports/validation/dt=D/; the page's URI."""
    folder = REPORT_DIR.format(day=day.isoformat())
    lake.write_text(f"{folder}/summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    lake.write_text(f"{folder}/index.html", render_html(summary))
    return lake.uri_of(f"{folder}/index.html")


def verdicts(summary: dict[str, Any]) -> dict[str, list[tuple[str, str, bool, int | None]]]:
    """Per suite of a gate's summary, in its order: each expectation's type, description, verdict and
    unexpected count: what two engines must agree on."""
    return {suite: [(o["expectation"], o["description"], o["success"], o["unexpected_count"]) for o in outcomes]
            for suite, outcomes in summary["suites"].items()}


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
    if summary.get("data_docs"):
        lines.append(f"  data docs: {summary['data_docs']}")
    return "\n".join(lines)

