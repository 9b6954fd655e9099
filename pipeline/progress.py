"""What is done for a date: done markers in the lake (`_done/<step>/dt=D`) read with the run ledger.

A step counts as done only when both agree: its marker exists and its ledger row says `done`.
A step clears its own marker and every later step's before it starts, so redoing the transform
makes validate and load "not done" again (their outputs were derived from what was replaced),
and a crash at any point leaves the step not done. One LIST per step reads a whole date range.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.lake import Lake
from pipeline.ledger import STEPS, StepResult

MARKER_DIR = "_done/{step}"


def marker_path(step: str, day: dt.date) -> str:
    return f"{MARKER_DIR.format(step=step)}/dt={day.isoformat()}"


def write_marker(lake: Lake, step: str, day: dt.date, run_id: str, result: StepResult, seconds: float) -> None:
    body = {"step": step, "dt": day.isoformat(), "run_id": run_id, "seconds": round(seconds, 2),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "rows_in": result.rows_in, "rows_out": result.rows_out, "rows_quarantined": result.rows_quarantined,
            "details": result.details}
    lake.write_text(marker_path(step, day), json.dumps(body, indent=2, default=str) + "\n")


def read_marker(lake: Lake, step: str, day: dt.date) -> dict[str, Any] | None:
    text = lake.read_text(marker_path(step, day))
    return None if text is None else json.loads(text)


def clear_markers(lake: Lake, day: dt.date, first_step: str) -> None:
    """`first_step` and everything after it are no longer done for D (later steps first)."""
    for step in reversed(STEPS[STEPS.index(first_step):]):
        lake.delete(marker_path(step, day))


def marked_dates(lake: Lake, steps: Sequence[str] = STEPS) -> dict[str, set[dt.date]]:
    """Per step, the dates that have a done marker."""
    found: dict[str, set[dt.date]] = {}
    for step in steps:
        names = lake.list_files(MARKER_DIR.format(step=step))
        found[step] = {dt.date.fromisoformat(n[3:]) for n in names if n.startswith("dt=")}
    return found


def last_loaded_before(lake: Lake, day: dt.date) -> dt.date | None:
    """The newest date before D whose load is marked done: what the change guards compare D with."""
    earlier = [d for d in marked_dates(lake, ("load",))["load"] if d < day]
    return max(earlier) if earlier else None


@dataclass(frozen=True)
class StepState:
    """One cell of the status table."""

    status: str  # done | failed | running | stale | missing
    error: str | None = None
    run_id: str | None = None


def step_states(ledger_rows: list[dict[str, Any]], markers: dict[str, set[dt.date]]
                ) -> dict[dt.date, dict[str, StepState]]:
    """date -> step -> state, for every date the ledger or a marker knows about.

    `stale`: the ledger says done but the marker is gone, because an earlier step was redone since.
    `running`: started and not finished; if no run is alive, it was killed (the next run redoes it).
    """
    rows = {(r["dt"], r["step"]): r for r in ledger_rows}
    dates = {r["dt"] for r in ledger_rows} | {d for days in markers.values() for d in days}
    states: dict[dt.date, dict[str, StepState]] = {}
    for day in sorted(dates):
        states[day] = {}
        for step in STEPS:
            row = rows.get((day, step))
            if row is None:
                state = StepState("missing")
            elif row["status"] == "done":
                state = StepState("done" if day in markers[step] else "stale", run_id=row["run_id"])
            else:
                state = StepState(row["status"], row["error"], row["run_id"])
            states[day][step] = state
    return states


def is_done(states: dict[str, StepState]) -> bool:
    return all(states[s].status == "done" for s in STEPS)


def plan(states: dict[str, StepState] | None, force: bool = False, from_step: str | None = None,
         to_step: str | None = None) -> list[str]:
    """The steps to run for a date: all (--force), from a named step, or from the first not done;
    none after `to_step` (--to-step validate checks a date without loading it)."""
    if force:
        steps = list(STEPS)
    elif from_step is not None:
        steps = list(STEPS[STEPS.index(from_step):])
    else:
        first = next((i for i, step in enumerate(STEPS) if states is None or states[step].status != "done"),
                     len(STEPS))
        steps = list(STEPS[first:])
    return steps if to_step is None else [s for s in steps if STEPS.index(s) <= STEPS.index(to_step)]
