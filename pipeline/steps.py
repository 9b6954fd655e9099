"""The four steps of a date, as functions of one `RunContext`, each returning a `StepResult`.

They are the only place that knows how to call ingestion, the Spark jobs and the load, so the
single-step subcommands, `run`, backfill and catch-up all do the same thing. Bookkeeping (ledger,
done markers, locks) is the runner's job, not theirs.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

from core.config import PROJECT_ROOT, Settings, expectations_folder
from core.lake import Lake, open_lake
from core.raw_lake import drift_lines
from ingestion.ingest import ingest
from pipeline.ledger import StepResult
from pipeline.progress import last_loaded_before

log = logging.getLogger(__name__)

# What each step imports when it starts (Great Expectations is the heaviest).
STEP_MODULES = {"ingest": "ingestion.ingest", "transform": "jobs.transform.run", "validate": "jobs.validate.run",
                "load": "jobs.load.run"}


def preload_modules(steps: Sequence[str]) -> threading.Thread | None:
    """Import the modules of the later steps of a run on a background thread while its transform runs.

    The transform waits on the JVM most of the time, so the imports overlap it instead of adding
    their seconds between steps. Only behind a transform: its module, imported here first, brings
    in everything the step uses (pyspark included), so the two threads never import one module
    at once; Python's import locks do not make that safe (a thread can get a half-initialised
    module). A failed preload is left for the step to raise itself.
    """
    if len(steps) < 2 or steps[0] != "transform":
        return None
    importlib.import_module(STEP_MODULES["transform"])
    later = [STEP_MODULES[step] for step in steps[1:]]

    def load() -> None:
        for module in later:
            try:
                importlib.import_module(module)
            except Exception as exc:  # noqa: BLE001 - the step imports it again and reports the error
                log.debug("preloading %s failed: %s", module, exc)

    thread = threading.Thread(target=load, name="preload", daemon=True)
    thread.start()
    return thread


class SparkHandle:
    """One SparkSession per process, created on first use (ingest alone never starts a JVM)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._session: Any = None

    def get(self) -> Any:
        if self._session is None:
            self._session = self._factory()
        return self._session

    @classmethod
    def of(cls, session: Any) -> SparkHandle:
        """A handle on a session that already exists (tests, notebooks)."""
        handle = cls(lambda: session)
        handle._session = session
        return handle


@dataclass
class RunContext:
    settings: Settings
    day: dt.date
    run_id: str
    spark: SparkHandle
    database_url: str

    @cached_property
    def lake(self) -> Lake:
        """Opened once per run (on S3, one boto3 client for every step)."""
        return open_lake(self.settings.lake_uri, staging_root=f"{self.settings.data_dir}/staging")


def ingest_step(ctx: RunContext, entities: tuple[str, ...] | None = None, full_refresh: bool = False,
                force: bool = False) -> StepResult:
    """Land D's entities; those an earlier ingest of D published with the same window are kept
    (`force` refetches them)."""
    reports = ingest(ctx.settings, ctx.day, ctx.run_id, entities, full_refresh, force)
    drift = {r.entity: asdict(r.drift) for r in reports if r.drift is not None and r.drift.drifted}
    return StepResult(
        rows_out=sum(r.records for r in reports),
        details={"entities": {r.entity: {"mode": r.mode, "records": r.records, "files": r.files,
                                         "queries": r.queries, "seconds": r.seconds, "resumed": r.resumed}
                              for r in reports},
                 "drift": drift},
        lines=[f"{r.entity:<22} {r.mode:<11} {r.records:>9} records {r.files:>3} files "
               + ("  kept: landed by an earlier ingest of this date" if r.resumed
                  else f"{r.queries:>5} queries {r.seconds:>8.1f}s") for r in reports]
        + [f"schema drift: {line}" for line in drift_lines(drift).values()],
        complete=entities is None,
    )


def transform_step(ctx: RunContext) -> StepResult:
    from jobs.transform.run import run_transform  # the stages load when their step runs: pyspark, GX

    report = run_transform(ctx.spark.get(), ctx.lake, ctx.day, ctx.settings.marts_top_n)
    entities = report["entities"]
    deleted = {name: d["deleted"] for name, d in report["deletions"].items() if d["deleted"]}
    return StepResult(
        rows_in=sum(c["raw_lines"] for c in entities.values()),
        rows_out=sum(c["staged"] for c in entities.values()),
        rows_quarantined=sum(c["quarantined"] for c in entities.values()),
        details={"full_refresh": report["full_refresh"], "base": report["base"], "rows": report["rows"],
                 "quarantined": {e: c["quarantined"] for e, c in entities.items() if c["quarantined"]},
                 "deleted": deleted},
        lines=[f"{e:<22} raw {c['raw_lines']:>8}  staged {c['staged']:>8}  quarantined {c['quarantined']:>5}  "
               f"collapsed {c['collapsed']:>5}" for e, c in entities.items()]
        + [f"{table:<26} {rows:>9} rows" for table, rows in report["rows"].items()]
        + [f"{name:<26} {d['deleted']:>9} deleted as of {ctx.day} ({d['evidence']}), {d['live']} live"
           for name, d in report["deletions"].items() if d["deleted"]],
    )


def user_suites(settings: Settings) -> dict[str, Any]:
    """The users' own GX suites by output, read and checked (ConfigError, exit 2, when one is wrong)."""
    folder = expectations_folder(settings.validation_expectations_dir, PROJECT_ROOT)
    if folder is None:
        return {}
    from jobs.validate.user_expectations import read_user_suites  # GX loads only when there are suites

    return read_user_suites(folder)


def validate_step(ctx: RunContext, only: tuple[str, ...] | None = None, accept_changes: bool = False
                  ) -> StepResult:
    from jobs.datasets import Severity  # the stages load when their step runs: pyspark, GX
    from jobs.validate.guards import Limits
    from jobs.validate.run import run_validation, transform_report

    transform_report(ctx.lake, ctx.day)  # before Spark starts: a missing transform fails at once
    settings = ctx.settings
    user = user_suites(settings)  # before Spark starts too: a wrong suite file is a config error
    limits = Limits(settings.guards_max_deleted_share, settings.guards_max_drop_share,
                    Severity(settings.guards_severity),
                    accepted=accept_changes or ctx.day in settings.guards_accept_dates)
    summary = run_validation(ctx.spark.get(), ctx.lake, ctx.day, ctx.run_id, settings.validation_max_quarantine_share,
                             only=only, limits=limits, last_loaded=last_loaded_before(ctx.lake, ctx.day),
                             user=user, engine=settings.validation_engine, data_docs=settings.validation_data_docs)
    lines = [f"{summary['expectations']} expectations passed, {summary['warnings']} warning(s)"
             + ("" if summary["complete"] else f" (only {', '.join(only or ())})")
             + (" (changes accepted)" if limits.accepted else "")]
    lines += [f"warning: {w['suite']}: {w['description']} ({w['unexpected_count']} unexpected)"
              for w in summary["warned"]]
    lines.append(f"report: {summary['report']}")
    if settings.validation_data_docs:
        lines.append(f"data docs: {summary['data_docs'] or 'not updated (see the error above)'}")
    return StepResult(
        rows_in=sum(summary["rows"].values()),
        details={"expectations": summary["expectations"], "warnings": summary["warned"],
                 "complete": summary["complete"], "report": summary["report"], "engine": summary["engine"],
                 "data_docs": summary["data_docs"],
                 "accepted_changes": limits.accepted},
        lines=lines,
        complete=summary["complete"],
    )


def load_step(ctx: RunContext) -> StepResult:
    from jobs.load.run import require_validated, run_load  # the stages load when their step runs: pyspark

    require_validated(ctx.lake, ctx.day)  # before Spark starts: an unvalidated date is refused at once
    result = run_load(ctx.spark.get(), ctx.lake, ctx.day, ctx.database_url, ctx.settings.database_schema,
                      ctx.settings.load_on_empty, ctx.settings.load_mode, ctx.settings.load_parallel_marts)
    marts = result["marts"]
    return StepResult(
        rows_in=sum(m["rows"] for m in marts.values()),
        rows_out=sum(m["changed"] for m in marts.values()),
        details={"schema": ctx.settings.database_schema, "marts": marts},
        lines=[f"{name:<26} {m['rows']:>9} rows  {m['staged']:>9} sent  {m['changed']:>9} changed  ({m['mode']})"
               for name, m in marts.items()],
    )


STEP_FUNCTIONS: dict[str, Callable[..., StepResult]] = {
    "ingest": ingest_step,
    "transform": transform_step,
    "validate": validate_step,
    "load": load_step,
}
