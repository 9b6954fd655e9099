"""Running dates like production: resume after a failure in each step, catch-up, status, notifications.

One story on one lake and one database, told once (module fixture), then checked claim by claim:
  D1  ingest fails (the API answers 5xx), the rerun completes the date;
  D2  validation fails (quarantine over the threshold); the rerun, with the threshold raised,
      resumes at validate and the load meets another load's lock (exit 4);
  D3  only ingested, then a raw file goes missing;
  catch-up to D3 finishes D2 at its load and fails D3 at its transform; the file is put back and
  catch-up finishes D3 from its transform; `--from-step load` redoes only the load.
Every run is real: the sandbox over HTTP, the shared local SparkSession, a real PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql

from core.errors import ExitCode
from ingestion.sandbox.faults import Faults
from ingestion.sandbox.generator import GeneratorSpec
from ingestion.sandbox.server import start_sandbox
from ingestion.sandbox.store import Store
from jobs.load.run import LOCK_NAMESPACE
from pipeline.ledger import STEPS, read_ledger
from pipeline.progress import marker_path
from pipeline.runner import (
    RUN_LOCK_NAMESPACE,
    StepFailed,
    catchup_range,
    date_states,
    missing_dates,
    run_date,
    run_dates,
    run_single_step,
    summary_text,
)
from pipeline.status import render_status
from pipeline.steps import SparkHandle
from tests.conftest import FAST_LIMITS, settings_for

pytestmark = pytest.mark.slow  # an end-to-end scenario: xdist starts it first (tests/conftest.py)

D1, D2, D3, D4 = (dt.date(2026, 11, day) for day in (17, 18, 19, 20))


class Webhook:
    """A Slack-compatible receiver on 127.0.0.1 that keeps every message posted to it."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/secret-hook-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self) -> list[str]:
        return [message["text"] for message in self.received]


def _ledger_ids(url: str, schema: str, day: dt.date) -> dict[str, tuple[str, str]]:
    return {r["step"]: (r["status"], r["run_id"]) for r in read_ledger(url, schema, day)}


def _failure(call: Any) -> StepFailed:
    with pytest.raises(StepFailed) as caught:
        call()
    return caught.value


@pytest.fixture(scope="module")
def story(spark, pg_url, tmp_path_factory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("run")
    lake = root / "lake"
    schema = "run_story"
    webhook = Webhook()
    sandbox = start_sandbox(Store.generated(GeneratorSpec(games=150, seed=5)), limits=FAST_LIMITS)
    handle = SparkHandle.of(spark)
    seen: dict[str, Any] = {"lake": lake, "schema": schema, "url": pg_url, "webhook": webhook}

    def settings(**extra: Any) -> Any:
        return settings_for(sandbox, lake, DATABASE_URL=pg_url, DATABASE_SCHEMA=schema, MARTS_TOP_N=20,
                            SLACK_WEBHOOK_URL=webhook.url, IGDB_MAX_ATTEMPTS=2, IGDB_RETRY_ROUNDS=0, **extra)

    def ledger(day: dt.date) -> dict[str, tuple[str, str]]:
        return _ledger_ids(pg_url, schema, day)

    try:
        # D1: the API fails every request, then recovers
        sandbox.set_faults(Faults(error_rate=1.0))
        seen["d1_failure"] = _failure(lambda: run_date(settings(), D1, handle))
        seen["d1_after_failure"] = ledger(D1)
        seen["d1_markers_after_failure"] = [s for s in STEPS if (lake / marker_path(s, D1)).exists()]
        sandbox.set_faults(Faults())
        seen["d1_run"] = run_date(settings(), D1, handle)
        seen["d1_done"] = ledger(D1)

        # a second run of D1 while one holds the date's run lock
        with psycopg2.connect(pg_url) as holder:
            with holder.cursor() as cur:
                cur.execute("SELECT pg_advisory_lock(%s, %s)", (RUN_LOCK_NAMESPACE, D1.toordinal()))
            seen["busy"] = _failure(lambda: run_date(settings(), D1, handle, force=True))
        holder.close()
        seen["d1_after_busy"] = ledger(D1)

        # D2: one game's record has a wrong type, so it is quarantined; no quarantine is tolerated
        store = sandbox.state.store
        store.update("games", store.ids("games")[3], total_rating="ninety")
        seen["d2_validate_failure"] = _failure(
            lambda: run_date(settings(VALIDATION_MAX_QUARANTINE_SHARE="0"), D2, handle))
        seen["d2_after_validate_failure"] = ledger(D2)
        # the operator accepts the quarantine; meanwhile another load of D2 holds the load lock
        with psycopg2.connect(pg_url) as holder:
            with holder.cursor() as cur:
                cur.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, D2.toordinal()))
            seen["d2_load_failure"] = _failure(
                lambda: run_date(settings(VALIDATION_MAX_QUARANTINE_SHARE="1"), D2, handle))
        holder.close()
        seen["d2_after_load_failure"] = ledger(D2)

        # D3: ingested alone, then one raw file of it is lost
        run_single_step(settings(), D3, "ingest", handle)
        seen["d3_after_ingest"] = ledger(D3)
        part = next((lake / "raw" / "platforms" / f"dt={D3}").glob("part-*.jsonl"))
        aside = root / part.name
        part.rename(aside)
        lenient = settings(VALIDATION_MAX_QUARANTINE_SHARE="1")
        states = date_states(lenient, pg_url)
        seen["status_before_catchup"] = render_status(states, D1, D4)
        first, last = catchup_range(lenient, states, D3)
        seen["catchup_dates"] = missing_dates(states, first, last)
        seen["d3_transform_failure"] = _failure(lambda: list(run_dates(lenient, seen["catchup_dates"], handle)))
        seen["d2_after_catchup"] = ledger(D2)
        seen["d3_after_transform_failure"] = ledger(D3)

        aside.rename(part)
        states = date_states(lenient, pg_url)
        seen["second_catchup_dates"] = missing_dates(states, *catchup_range(lenient, states, D3))
        seen["second_catchup"] = list(run_dates(lenient, seen["second_catchup_dates"], handle))
        seen["d3_done"] = ledger(D3)

        seen["reload"] = run_date(lenient, D3, handle, from_step="load")
        seen["d3_after_reload"] = ledger(D3)
        seen["d1_final"] = ledger(D1)
        seen["status_final"] = render_status(date_states(lenient, pg_url), D1, D4)
        with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT count(*), count(DISTINCT game_id) FROM {}.dim_games")
                        .format(sql.Identifier(schema)))
            seen["dim_games"] = cur.fetchone()
        conn.close()

        # D3 rebuilt and checked without loading it (--to-step validate), then loaded by a plain run
        seen["checked"] = run_date(lenient, D3, handle, from_step="transform", to_step="validate")
        seen["d3_after_check"] = ledger(D3)
        seen["status_after_check"] = render_status(date_states(lenient, pg_url), D3, D3)
        seen["after_check"] = run_date(lenient, D3, handle)
        seen["d3_after_check_loaded"] = ledger(D3)
        yield seen
    finally:
        sandbox.stop()
        webhook.server.shutdown()


def test_an_ingest_failure_names_the_step_and_the_rerun_completes_the_date(story) -> None:
    failure = story["d1_failure"]
    assert failure.step == "ingest" and failure.exit_code == ExitCode.FAILED
    assert str(failure).startswith(f"dt={D1} failed at step ingest: ")
    assert story["d1_after_failure"]["ingest"][0] == "failed"
    assert set(story["d1_after_failure"]) == {"ingest"}  # nothing after it ran
    assert story["d1_markers_after_failure"] == []
    assert list(story["d1_run"].ran) == list(STEPS)
    assert {status for status, _ in story["d1_done"].values()} == {"done"}


def test_a_second_run_of_a_date_is_refused_and_changes_nothing(story) -> None:
    busy = story["busy"]
    assert busy.exit_code == ExitCode.BUSY and busy.step == "start"
    assert f"another run of dt={D1} is running" in str(busy)
    assert story["d1_after_busy"] == story["d1_done"]


def test_a_validation_failure_keeps_ingest_and_transform_and_the_rerun_resumes_at_validate(story) -> None:
    failure = story["d2_validate_failure"]
    assert failure.step == "validate" and failure.exit_code == ExitCode.VALIDATION
    before = story["d2_after_validate_failure"]
    assert before["ingest"][0] == "done" and before["transform"][0] == "done" and before["validate"][0] == "failed"
    assert "load" not in before

    load_failure = story["d2_load_failure"]
    assert load_failure.step == "load" and load_failure.exit_code == ExitCode.BUSY
    after = story["d2_after_load_failure"]
    assert after["ingest"] == before["ingest"] and after["transform"] == before["transform"]  # not redone
    assert after["validate"][0] == "done" and after["load"][0] == "failed"


def test_catchup_runs_exactly_the_dates_not_done_and_resumes_each_at_its_failed_step(story) -> None:
    assert story["catchup_dates"] == [D2, D3]  # D1 is done; D4 is after the last date asked for
    d2 = story["d2_after_catchup"]
    assert d2["load"][0] == "done"
    for step in ("ingest", "transform", "validate"):  # D2 resumed at its load only
        assert d2[step] == story["d2_after_load_failure"][step]

    failure = story["d3_transform_failure"]
    assert failure.step == "transform" and failure.day == D3
    d3 = story["d3_after_transform_failure"]
    assert d3["ingest"] == story["d3_after_ingest"]["ingest"] and d3["transform"][0] == "failed"

    assert story["second_catchup_dates"] == [D3]
    assert list(story["second_catchup"][0].ran) == ["transform", "validate", "load"]
    assert story["d3_done"]["ingest"] == story["d3_after_ingest"]["ingest"]
    assert story["d1_final"] == story["d1_done"]  # a done date is never touched again


def test_from_step_redoes_that_step_and_the_later_ones_only(story) -> None:
    reload = story["reload"]
    assert list(reload.ran) == ["load"]
    assert all(m["changed"] == 0 for m in reload.results["load"].details["marts"].values())
    before, after = story["d3_done"], story["d3_after_reload"]
    assert {s: after[s] for s in ("ingest", "transform", "validate")} == \
        {s: before[s] for s in ("ingest", "transform", "validate")}
    assert after["load"][0] == "done" and after["load"][1] != before["load"][1]


def test_to_step_stops_after_that_step_and_the_next_run_resumes_at_the_step_left(story) -> None:
    checked = story["checked"]
    assert list(checked.ran) == ["transform", "validate"] and checked.held == ["load"]
    text = summary_text(checked)
    assert f"igdb-pipeline dt={D3}: stopped before load, as asked" in text
    assert "steps: ingest already done, transform" in text and "load not run" in text
    assert "validation: passed" in text and "loaded into schema" not in text
    after = story["d3_after_check"]
    assert after["transform"][1] == after["validate"][1] == checked.run_id  # both redone by this run
    # the load's ledger row is the older run's; its done marker went with the transform redone
    assert after["load"] == story["d3_after_reload"]["load"]
    row = next(line.split() for line in story["status_after_check"].splitlines() if line.startswith(str(D3)))
    assert row[1:] == ["done", "done", "done", "stale", "no"]

    resumed = story["after_check"]
    assert list(resumed.ran) == ["load"] and resumed.held == []
    assert story["d3_after_check_loaded"]["load"] == ("done", resumed.run_id)


def test_status_shows_done_failed_with_reason_and_missing(story) -> None:
    before = story["status_before_catchup"].splitlines()
    row = {line[:10]: line.split() for line in before if line[:4] == "2026"}
    assert row[str(D1)][1:] == ["done", "done", "done", "done", "yes"]
    assert row[str(D2)][1:] == ["done", "done", "done", "failed", "no"]
    assert row[str(D3)][1:] == ["done", "missing", "missing", "missing", "no"]
    assert row[str(D4)][1:] == ["missing"] * 4 + ["no"]
    assert any(line.strip().startswith(f"load failed: another load of dt={D2} is running") for line in before)

    final = {line[:10]: line.split()[-1] for line in story["status_final"].splitlines() if line[:4] == "2026"}
    assert final == {str(D1): "yes", str(D2): "yes", str(D3): "yes", str(D4): "no"}
    assert story["dim_games"][0] == story["dim_games"][1] == 150  # every game once


def test_notifications_tell_success_and_the_failing_step_without_secrets(story) -> None:
    texts = story["webhook"].texts()
    failures = [t for t in texts if "FAILED" in t]
    successes = [t for t in texts if ": done (run " in t]
    assert any(f"dt={D1}: FAILED at step ingest (exit 1)" in t for t in failures)
    assert any(f"dt={D2}: FAILED at step validate (exit 3)" in t for t in failures)
    assert any(f"dt={D2}: FAILED at step load (exit 4)" in t for t in failures)
    assert any(f"dt={D3}: FAILED at step transform (exit 1)" in t and "resumes at transform" in t for t in failures)
    d1 = next(t for t in successes if f"dt={D1}" in t)
    assert "dim_games" in d1 and "validation: passed" in d1 and "steps: ingest" in d1
    # D1, D2 (catch-up), D3 (second catch-up), D3 --from-step load, D3 loaded after its --to-step check
    assert len(successes) == 5
    assert any(f"dt={D3}: stopped before load, as asked" in t for t in texts)
    assert not any("secret-hook-token" in t or "sandbox-secret" in t for t in texts)


def test_an_unreachable_webhook_never_fails_a_run(tmp_path: Path) -> None:
    import socket

    from pipeline.notify import notify

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert notify(f"http://127.0.0.1:{port}/hook", "hello", timeout=1) is False
    assert notify(None, "hello") is False
