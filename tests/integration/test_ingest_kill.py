"""SIGKILL while a partition is being landed: the old partition stays whole, the rerun is clean.

The kill must hit a live run in the middle of its landing, or the test proves nothing: it comes
after a random number of pages (fewer than half of what a whole run fetches, counted by the
sandbox), the process must still be running when it is sent and must die of it, and the lake must
still hold the run's staging folder (a finished landing removes it).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ingestion.sandbox.faults import Faults, Limits
from ingestion.sandbox.server import RunningSandbox
from tests.conftest import CLI, DAY, cli_environ, partition_bytes, sandbox_environ

ENTITIES = "games,genres"


# --force: every run fetches again (an ingest otherwise keeps what an earlier run of D published)
INGEST = [*CLI, "ingest", "--date", DAY.isoformat(), "--force"]


def _run(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(INGEST, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _games_pages_served(sandbox: RunningSandbox) -> int:
    """Pages of games the sandbox has answered so far (single queries and multiquery elements)."""
    with sandbox.state.lock:
        return sandbox.state.stats["queried:games"]


def _staging_folders(lake: Path) -> list[Path]:
    """The games partition's folders staged by a run and not swapped in (yet)."""
    return sorted(p for p in (lake / "raw" / "games" / "_tmp").glob(f"dt={DAY}.*") if not p.name.endswith(".previous"))


def _verify_manifest(lake: Path, entity: str) -> None:
    """Every file the manifest lists is there with its checksum, and nothing else."""
    folder = lake / "raw" / entity / f"dt={DAY}"
    manifest = json.loads((folder / "_manifest.json").read_text())
    listed = {f["name"]: f for f in manifest["files"]}
    assert set(listed) == {p.name for p in folder.glob("part-*.jsonl")}
    for name, entry in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == entry["sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_sigkill_during_landing_keeps_old_partition_and_rerun_is_identical(trial: int, make_sandbox, pg_url,
                                                                          pg_schema, tmp_path: Path) -> None:
    # slower than the suite's default sandbox, so a landing lasts long enough to be interrupted
    sandbox = make_sandbox(games=2000, faults=Faults(latency_ms=(5, 15)), limits=Limits(per_second=40, max_open=8))
    store = sandbox.state.store
    lake = tmp_path / "lake"
    # the ledger goes to the tests' server: a killed ingest must not leave an embedded one running
    ledger = {"DATABASE_URL": pg_url, "DATABASE_SCHEMA": pg_schema}
    env = cli_environ(**sandbox_environ(sandbox, lake, IGDB_PAGE_SIZE=10, INGEST_ENTITIES=ENTITIES, **ledger))

    assert _run(env, tmp_path).returncode == 0
    old = {e: partition_bytes(lake, e) for e in ENTITIES.split(",")}
    # the data changes, so a mix of old and new files would show
    store.touch("games", 0, sandbox.state.dice, ids=store.ids("games")[::7])

    reference_lake = tmp_path / "reference"
    reference_env = cli_environ(**sandbox_environ(sandbox, reference_lake, IGDB_PAGE_SIZE=10,
                                                  INGEST_ENTITIES=ENTITIES, **ledger))
    served = _games_pages_served(sandbox)
    assert _run(reference_env, tmp_path).returncode == 0
    whole_run = _games_pages_served(sandbox) - served  # the games pages a complete landing fetches
    reference = {e: partition_bytes(reference_lake, e) for e in ENTITIES.split(",")}
    assert reference["games"] != old["games"]
    assert whole_run >= 100, f"a landing of {whole_run} pages is too short to be interrupted"

    kill_after = random.Random(trial).randint(1, whole_run // 2)
    served = _games_pages_served(sandbox)
    proc = subprocess.Popen(INGEST, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _games_pages_served(sandbox) - served < kill_after:
        assert proc.poll() is None, "the run ended before it had fetched the pages to be killed after"
        assert time.monotonic() < deadline, "the run fetched too few pages in a minute"
        time.sleep(0.002)
    staged = _staging_folders(lake)
    assert staged, "games pages are being fetched, yet the run has no staging folder"
    assert proc.poll() is None, "the run had exited before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL, "the run did not die of the kill: it had ended before"

    # the kill came mid-landing: part of the pages fetched, the staging folder never swapped in
    fetched = _games_pages_served(sandbox) - served
    # a whole landing's page count varies by a few percent (ranges split as they go): 0.9 leaves room
    assert kill_after <= fetched < 0.9 * whole_run, f"killed after {fetched} of ~{whole_run} pages: not mid-landing"
    left = _staging_folders(lake)
    assert left and left == staged, "the run's staging folder is gone: its landing had finished"
    assert any(left[0].iterdir()), "the staging folder holds no fetched pages"
    assert partition_bytes(lake, "games") == old["games"], "an unfinished landing changed the partition"

    for entity in ENTITIES.split(","):
        now = partition_bytes(lake, entity)
        assert now in (old[entity], reference[entity]), f"{entity}: a mix of old and new files is visible"
        _verify_manifest(lake, entity)

    rerun = _run(env, tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert {e: partition_bytes(lake, e) for e in ENTITIES.split(",")} == reference
    assert not list(lake.glob("raw/*/_tmp")), "the killed run's staging folder was not cleaned up"
