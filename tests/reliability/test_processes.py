"""Locks, backfill and notifications proven with real `igdb-pipeline` processes: each run is its
own process on one lake and one database, as two operators (or a scheduler and an operator) would
start them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest

from core.errors import ExitCode
from ingestion.sandbox.faults import Faults
from pipeline.ledger import read_ledger
from reliability.scenarios import Context
from reliability.world import Postgres, Run, World

pytestmark = pytest.mark.slow  # an end-to-end scenario: xdist starts it first (tests/conftest.py)

D1, D2, D3 = (dt.date(2026, 11, day) for day in (17, 18, 19))


def _warnings(run: Run, about: str) -> list[str]:
    """The WARNING log lines of a run (JSON logs) whose message mentions `about`."""
    found = []
    for line in run.stderr.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("level") == "WARNING" and about in str(record.get("msg")):
                found.append(record["msg"])
    return found


@pytest.fixture
def failing_webhook() -> Iterator[str]:
    """A webhook that answers every message with HTTP 503."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_runs_of_one_date_exclude_each_other_runs_of_two_dates_do_not_and_a_killed_run_frees_its_date(
        pg_url: str, tmp_path: Path, failing_webhook: str) -> None:
    ctx = Context(tmp_path, Postgres(tmp_path, url=pg_url), games=300)
    # slow answers, one small page per request: an ingest lasts seconds, long enough to meet it
    with ctx.sandbox(faults=Faults(latency_ms=(200, 300))) as sandbox:
        world = World.create("locks", tmp_path, ctx.postgres, sandbox, IGDB_MULTIQUERY="false", IGDB_PAGE_SIZE="20")
        ingest_only = ("--to-step", "ingest")
        with world.start("run", "--date", str(D1), *ingest_only) as holder, \
                world.start("run", "--date", str(D2), *ingest_only, SLACK_WEBHOOK_URL=failing_webhook) as other:
            assert holder.wait_for("ingest started", timeout=120), "the first run never started its ingest"
            assert other.wait_for("ingest started", timeout=120), "a run of another date waited for the lock"
            refused = world.run("run", "--date", str(D1), *ingest_only)
            assert holder.handle.poll() is None, "the holder ended before the second run met its lock"
            holder.kill()
            killed = holder.finish()
            finished = other.finish()
        again = world.run("run", "--date", str(D1), *ingest_only, SLACK_WEBHOOK_URL="http://127.0.0.1:9/hook")
        ledger = {r["step"]: r["status"] for r in read_ledger(world.url, world.schema, D1)}
        world.discard()

    assert refused.code == ExitCode.BUSY, refused.describe()
    assert f"another run of dt={D1} is running (PostgreSQL backend pid" in refused.stdout + refused.stderr
    assert killed.code == -9 and killed.killed
    assert finished.code == 0, finished.describe()
    assert again.code == 0, f"the killed run's lock was not released: {again.describe()}"
    assert ledger == {"ingest": "done"}
    # a webhook answering 503, then one nobody listens on: the runs end well, one warning each
    assert len(_warnings(finished, "notification")) == 1, _warnings(finished, "notification")
    assert "HTTP 503" in _warnings(finished, "notification")[0]
    assert len(_warnings(again, "notification")) == 1, _warnings(again, "notification")


def test_backfill_and_catchup_stop_at_a_failing_date_in_the_middle(pg_url: str, tmp_path: Path) -> None:
    ctx = Context(tmp_path, Postgres(tmp_path, url=pg_url), games=120)
    with ctx.sandbox() as sandbox:
        # Data Docs off: not this test's subject, and seconds of a cold process (tests/jobs/test_gx_artifacts.py)
        world = World.create("middle", tmp_path, ctx.postgres, sandbox, PIPELINE_START_DATE=str(D1),
                             VALIDATION_DATA_DOCS="false")
        damaged = world.lake / "raw" / "games" / f"dt={D2}" / "_manifest.json"
        damaged.parent.mkdir(parents=True)
        damaged.write_text("{ not json")  # D2's ingest cannot plan its window: D2 fails, D1 and D3 could not

        backfill = world.run("backfill", "--from", str(D1), "--to", str(D3))
        after_backfill = {day: read_ledger(world.url, world.schema, day) for day in (D1, D2, D3)}
        catchup = world.run("run", "--catchup", "--until", str(D3))
        after_catchup = {day: read_ledger(world.url, world.schema, day) for day in (D1, D2, D3)}
        d3_files = sorted(str(p.relative_to(world.lake)) for p in world.lake.rglob(f"*dt={D3}*"))
        world.discard()

    assert backfill.code == ExitCode.FAILED, backfill.describe()
    said = backfill.stdout + backfill.stderr
    assert f"dt={D2}" in said and "ingest" in said and "is not valid JSON" in said
    assert {r["step"]: r["status"] for r in after_backfill[D1]} == dict.fromkeys(
        ("ingest", "transform", "validate", "load"), "done")
    assert [(r["step"], r["status"]) for r in after_backfill[D2]] == [("ingest", "failed")]
    assert after_backfill[D3] == [], "the backfill went on past the failing date"

    assert catchup.code == ExitCode.FAILED, catchup.describe()
    assert {r["step"]: r["run_id"] for r in after_catchup[D1]} == {r["step"]: r["run_id"] for r in after_backfill[D1]}
    assert after_catchup[D3] == [], "the catch-up went on past the failing date"
    assert d3_files == [], f"D3 was touched: {d3_files[:5]}"
