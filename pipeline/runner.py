"""Running dates: one step with its bookkeeping, a whole date with resume, ranges and catch-up.

Every step, however started (`igdb-pipeline transform`, `run`, `backfill`, an EMR step), goes
through `execute_step`: it takes the date's run lock, clears its own and later done markers,
records itself in the ledger (`running`, then `done` or `failed` with the cause), and writes its
done marker last. So `run` can resume at the first step not done, and a failure leaves every
earlier step's work in place.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from core.config import Settings
from core.database import RUN_LOCK_NAMESPACE, advisory_lock, connection, resolve_url
from core.days import days_between
from core.errors import PipelineError
from core.lake import Lake, open_lake
from core.logs import event, log_context, new_run_id
from core.raw_lake import drift_lines
from pipeline.ledger import STEPS, StepResult, ledger_step, read_ledger
from pipeline.notify import notify
from pipeline.progress import (
    StepState,
    clear_markers,
    is_done,
    marked_dates,
    plan,
    read_marker,
    step_states,
    write_marker,
)
from pipeline.retention import GcPlan, collect, collection_lines
from pipeline.steps import STEP_FUNCTIONS, RunContext, SparkHandle, preload_modules

log = logging.getLogger(__name__)


class StepFailed(PipelineError):
    """A step of a date failed: names the step and the cause, keeps the cause's exit code."""

    def __init__(self, day: dt.date, step: str, cause: BaseException) -> None:
        super().__init__(f"dt={day} failed at step {step}: {cause}")
        self.day, self.step, self.cause = day, step, cause
        self.exit_code = getattr(cause, "exit_code", PipelineError.exit_code)


@dataclass
class DateRun:
    """What `run` did for one date: the steps it ran and their time; the rest was already done."""

    day: dt.date
    run_id: str
    ran: dict[str, float] = field(default_factory=dict)  # step -> seconds
    results: dict[str, StepResult] = field(default_factory=dict)
    markers: dict[str, dict[str, Any]] = field(default_factory=dict)  # every step's done marker, after the run
    held: list[str] = field(default_factory=list)  # steps due but not run: after --to-step
    gc: GcPlan | None = None  # what retention removed after the load (retention.after_load)


def context(settings: Settings, day: dt.date, run_id: str, spark: SparkHandle) -> RunContext:
    return RunContext(settings, day, run_id, spark, resolve_url(settings.database_url, settings.data_dir))


@contextmanager
def run_lock(ctx: RunContext) -> Iterator[None]:
    """Held for the whole run of a date (or single step): a second run of D exits 4."""
    with connection(ctx.database_url) as conn:
        conn.autocommit = True
        with advisory_lock(conn, RUN_LOCK_NAMESPACE, ctx.day, "run"):
            yield


def execute_step(ctx: RunContext, step: str, **options: Any) -> StepResult:
    """Run one step for D with its ledger row and done marker. The caller holds the run lock."""
    lake = ctx.lake
    clear_markers(lake, ctx.day, step)
    started = time.monotonic()
    with log_context(run_id=ctx.run_id, dt=ctx.day.isoformat(), step=step), \
            ledger_step(ctx.database_url, ctx.settings.database_schema, ctx.day, step, ctx.run_id) as record:
        event(log, f"{step} started")
        result = STEP_FUNCTIONS[step](ctx, **options)
        record.rows_in, record.rows_out = result.rows_in, result.rows_out
        record.rows_quarantined, record.details = result.rows_quarantined, result.details
        seconds = time.monotonic() - started
        event(log, f"{step} done", seconds=round(seconds, 2), rows_in=result.rows_in, rows_out=result.rows_out,
              rows_quarantined=result.rows_quarantined)
    if result.complete:
        write_marker(lake, step, ctx.day, ctx.run_id, result, seconds)
    return result


def run_single_step(settings: Settings, day: dt.date, step: str, spark: SparkHandle, **options: Any) -> StepResult:
    """One subcommand (`igdb-pipeline transform --date D`), with the same bookkeeping as `run`."""
    ctx = context(settings, day, new_run_id(), spark)
    with run_lock(ctx):
        return execute_step(ctx, step, **options)


def date_states(settings: Settings, url: str) -> dict[dt.date, dict[str, StepState]]:
    """Every date the ledger or the done markers know, with each step's state."""
    return step_states(read_ledger(url, settings.database_schema), marked_dates(open_lake(settings.lake_uri)))


def run_date(settings: Settings, day: dt.date, spark: SparkHandle, force: bool = False,
             from_step: str | None = None, to_step: str | None = None, accept_changes: bool = False) -> DateRun:
    """Run D from the first step not done (or all with `force`, or from `from_step`), and no
    further than `to_step` when given. `accept_changes`: the operator checked D, whose change
    guards then warn instead of blocking. After a load, `gc` runs when `retention.after_load`.

    Raises StepFailed naming the step; a notification goes out either way when a webhook is set.
    """
    ctx = context(settings, day, new_run_id(), spark)
    outcome = DateRun(day, ctx.run_id)
    with log_context(run_id=ctx.run_id, dt=day.isoformat()):
        step = "start"
        try:
            with run_lock(ctx):
                states = date_states(settings, ctx.database_url).get(day)
                steps = plan(states, force, from_step, to_step)
                outcome.held = [s for s in plan(states, force, from_step) if s not in steps]
                skipped = [s for s in STEPS if s not in steps and s not in outcome.held]
                event(log, f"run dt={day}: " + (f"running {', '.join(steps)}" if steps
                                             else "nothing to run" if outcome.held else "already done")
                      + (f" ({', '.join(skipped)} already done)" if steps and skipped else "")
                      + (f" (not {', '.join(outcome.held)}: --to-step {to_step})" if outcome.held else ""))
                preload_modules(steps)
                for step in steps:
                    started = time.monotonic()
                    options = {"accept_changes": True} if step == "validate" and accept_changes else {}
                    if step == "ingest" and (force or from_step == "ingest"):
                        options = {"force": True}  # refetch every entity, not only those not yet landed
                    outcome.results[step] = execute_step(ctx, step, **options)
                    outcome.ran[step] = round(time.monotonic() - started, 2)
                outcome.markers = {s: m for s in STEPS if (m := read_marker(ctx.lake, s, day)) is not None}
            if "load" in outcome.ran and settings.retention_after_load:
                step = "gc"
                outcome.gc = collect_garbage(settings, day, ctx.lake)
        except BaseException as exc:
            failed = StepFailed(day, step, exc)
            notify(settings.notify_slack_webhook_url, failure_text(failed))
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise failed from exc
    notify(settings.notify_slack_webhook_url, summary_text(outcome))
    return outcome


def collect_garbage(settings: Settings, as_of: dt.date, lake: Lake | None = None, dry_run: bool = False) -> GcPlan:
    """`gc` as of a date, with the states of every date the ledger and the markers know."""
    return collect(settings, date_states(settings, resolve_url(settings.database_url, settings.data_dir)), as_of,
                   dry_run, lake)


def missing_dates(states: dict[dt.date, dict[str, StepState]], first: dt.date, last: dt.date) -> list[dt.date]:
    """Dates from first to last (inclusive) that are not fully done: never run, failed, or stale."""
    return [d for d in days_between(first, last) if d not in states or not is_done(states[d])]


def catchup_range(settings: Settings, states: dict[dt.date, dict[str, StepState]], until: dt.date
                  ) -> tuple[dt.date, dt.date]:
    """From `pipeline.start_date` (else the earliest date ever run, else `until`) to `until`."""
    first = settings.pipeline_start_date or (min(states) if states else until)
    return min(first, until), until


def run_dates(settings: Settings, days: list[dt.date], spark: SparkHandle, force: bool = False
              ) -> Iterator[DateRun]:
    """Dates in order, each yielded when done; stops at the first failure (later dates build on
    earlier ones' watermarks and catalogue)."""
    for number, day in enumerate(days, 1):
        event(log, f"date {number}/{len(days)}: dt={day}")
        yield run_date(settings, day, spark, force=force)


def summary_text(run: DateRun) -> str:
    """The end-of-run summary: rows per table, quarantined, validation, time per step, the report."""
    markers = run.markers
    state = f"stopped before {run.held[0]}, as asked" if run.held else "done"
    lines = [f"igdb-pipeline dt={run.day}: {state} (run {run.run_id})"]
    times = ", ".join(f"{s} {run.ran[s]:.1f}s" if s in run.ran else f"{s} not run" if s in run.held
                      else f"{s} already done" for s in STEPS)
    lines.append(f"  steps: {times}")
    ingest = markers.get("ingest")
    if ingest:
        lines += [f"  schema drift: {line}" for line in drift_lines(ingest["details"].get("drift", {})).values()]
    transform = markers.get("transform")
    if transform:
        lines.append(f"  quarantined: {transform['rows_quarantined']} of {transform['rows_in']} raw records"
                     + (f" ({', '.join(f'{e} {n}' for e, n in transform['details']['quarantined'].items())})"
                        if transform["details"].get("quarantined") else ""))
        if deleted := transform["details"].get("deleted"):
            lines.append(f"  deleted as of {run.day}: " + ", ".join(f"{name} {n}" for name, n in deleted.items()))
    validate = markers.get("validate")
    if validate:
        details = validate["details"]
        lines.append(f"  validation: passed{' with changes accepted' if details.get('accepted_changes') else ''}, "
                     f"{details['expectations']} expectations, "
                     f"{len(details['warnings'])} warning(s); report {details['report']}")
        lines += [f"    warning: {w['suite']}: {w['description']}" for w in details["warnings"]]
    load = markers.get("load")
    if load:
        lines.append(f"  loaded into schema {load['details']['schema']}:")
        lines += [f"    {name:<26} {m['rows']:>9} rows {m['changed']:>9} changed"
                  + (f" (removed the rows of its deleted keys: {m['purged']})" if m.get("purged") else "")
                  for name, m in load["details"]["marts"].items()]
    if run.gc is not None:
        lines += [f"  {line}" for line in collection_lines(run.gc, dry_run=False)[:1]]
    return "\n".join(lines)


def failure_text(failed: StepFailed) -> str:
    first_line = str(failed.cause).splitlines()[0] if str(failed.cause) else type(failed.cause).__name__
    return (f"igdb-pipeline dt={failed.day}: FAILED at step {failed.step} (exit {int(failed.exit_code)}): "
            f"{first_line}\n  rerun `igdb-pipeline run --date {failed.day}`: it resumes at {failed.step}")
