"""Step states, resume plans, catch-up ranges and the status table: pure functions, small inputs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from core.config import load_settings
from core.lake import LocalLake
from pipeline.ledger import STEPS, StepResult
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
from pipeline.runner import catchup_range, missing_dates
from pipeline.status import render_status, status_range

D1, D2, D3 = dt.date(2026, 11, 18), dt.date(2026, 11, 19), dt.date(2026, 11, 20)


def _row(day: dt.date, step: str, status: str, error: str | None = None) -> dict[str, Any]:
    return {"dt": day, "step": step, "status": status, "run_id": f"r-{day}-{step}", "error": error}


def _states(**by_step: str) -> dict[str, StepState]:
    return {s: StepState(by_step.get(s, "missing")) for s in STEPS}


@pytest.mark.parametrize(
    ("states", "force", "from_step", "expected"),
    [
        (None, False, None, list(STEPS)),  # a date never run
        (_states(ingest="done", transform="done", validate="failed"), False, None, ["validate", "load"]),
        (_states(ingest="done", transform="stale", validate="done", load="done"), False, None,
         ["transform", "validate", "load"]),
        (_states(ingest="done", transform="done", validate="done", load="done"), False, None, []),
        (_states(ingest="done", transform="done", validate="done", load="done"), True, None, list(STEPS)),
        (_states(ingest="done", transform="done", validate="done", load="done"), False, "validate",
         ["validate", "load"]),
        (_states(ingest="running"), False, None, list(STEPS)),  # a killed ingest is redone
    ],
)
def test_plan_resumes_at_the_first_step_not_done(states, force, from_step, expected) -> None:
    assert plan(states, force, from_step) == expected


@pytest.mark.parametrize(
    ("states", "force", "from_step", "expected"),
    [
        (None, False, None, ["ingest", "transform", "validate"]),
        (_states(ingest="done", transform="failed"), False, None, ["transform", "validate"]),
        (_states(ingest="done", transform="done", validate="done"), False, None, []),  # only the load is due
        (_states(ingest="done", transform="done", validate="done", load="done"), True, None,
         ["ingest", "transform", "validate"]),
        (_states(ingest="done", transform="done", validate="done", load="done"), False, "transform",
         ["transform", "validate"]),
    ],
)
def test_to_step_runs_nothing_after_it(states, force, from_step, expected) -> None:
    assert plan(states, force, from_step, to_step="validate") == expected


def test_states_need_both_the_ledger_and_the_marker() -> None:
    rows = [_row(D1, s, "done") for s in STEPS] + [_row(D2, "ingest", "done"), _row(D2, "transform", "failed", "boom")]
    markers = {s: {D1} for s in STEPS}
    markers["ingest"] = {D1, D2}
    markers["load"] = set()  # the load of D1 was invalidated (an earlier step redone since)
    states = step_states(rows, markers)
    assert [states[D1][s].status for s in STEPS] == ["done", "done", "done", "stale"]
    assert [states[D2][s].status for s in STEPS] == ["done", "failed", "missing", "missing"]
    assert states[D2]["transform"].error == "boom"
    assert not is_done(states[D1])


def test_missing_dates_are_those_not_fully_done_within_the_range() -> None:
    done = {s: StepState("done") for s in STEPS}
    states = {D1: done, D2: {**done, "load": StepState("failed")}}
    assert missing_dates(states, D1, D3) == [D2, D3]
    assert missing_dates(states, D1, D1) == []


def test_catchup_starts_at_the_setting_else_the_earliest_known_date() -> None:
    states = {D2: _states()}
    assert catchup_range(load_settings(environ={}), states, D3) == (D2, D3)
    assert catchup_range(load_settings(environ={}), {}, D3) == (D3, D3)
    assert catchup_range(load_settings(environ={"PIPELINE_START_DATE": "2026-11-18"}), states, D3) == (D1, D3)


def test_status_range_defaults_and_flags() -> None:
    states = {D2: _states(), D3: _states()}
    assert status_range(states, None, None, None, D2) == (D2, D3)  # a later known date widens the range
    assert status_range(states, D1, None, None, D2) == (D1, D3)
    assert status_range(states, None, D3, D3, D2) == (D3, D3)


def test_render_status_shows_every_date_with_reasons() -> None:
    done = {s: StepState("done") for s in STEPS}
    states = {D1: done, D2: {**done, "validate": StepState("failed", "validation of dt=2026-11-19\nfailed: 2"),
                             "load": StepState("missing")}}
    text = render_status(states, D1, D3).splitlines()
    assert text[0].split() == ["dt", *STEPS, "complete"]
    assert text[1].split() == [str(D1), "done", "done", "done", "done", "yes"]
    assert text[2].split() == [str(D2), "done", "done", "failed", "missing", "no"]
    assert text[3].strip() == "validate failed: validation of dt=2026-11-19 failed: 2"
    assert text[4].split() == [str(D3), "missing", "missing", "missing", "missing", "no"]
    assert text[5].startswith("1 date(s) complete, 2 not")


def test_markers_are_written_read_and_cleared_from_a_step_on(tmp_path) -> None:
    lake = LocalLake(tmp_path)
    for step in STEPS:
        write_marker(lake, step, D1, "run-1", StepResult(rows_out=3, details={"step": step}), 1.5)
    write_marker(lake, "ingest", D2, "run-2", StepResult(), 0.1)
    assert read_marker(lake, "load", D1)["details"] == {"step": "load"}
    clear_markers(lake, D1, "transform")
    assert marked_dates(lake) == {"ingest": {D1, D2}, "transform": set(), "validate": set(), "load": set()}
    assert read_marker(lake, "transform", D1) is None
