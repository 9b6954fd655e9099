"""SIGKILL while a partition is being landed: the old partition stays whole, the rerun is clean."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ingestion.sandbox.faults import Faults
from tests.conftest import CLI, DAY, cli_environ, partition_bytes, sandbox_environ

ENTITIES = "games,genres"


def _run(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "ingest", "--date", DAY.isoformat()], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


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
    sandbox = make_sandbox(games=2000, faults=Faults(latency_ms=(5, 15)))
    store = sandbox.state.store
    lake = tmp_path / "lake"
    # the ledger goes to the tests' server: a killed ingest must not leave an embedded one running
    ledger = {"DATABASE_URL": pg_url, "DATABASE_SCHEMA": pg_schema}
    env = cli_environ(**sandbox_environ(sandbox, lake, IGDB_PAGE_SIZE=40, INGEST_ENTITIES=ENTITIES, **ledger))

    assert _run(env, tmp_path).returncode == 0
    old = {e: partition_bytes(lake, e) for e in ENTITIES.split(",")}
    # the data changes, so a mix of old and new files would show
    store.touch("games", 0, sandbox.state.dice, ids=store.ids("games")[::7])

    reference_lake = tmp_path / "reference"
    reference_env = cli_environ(**sandbox_environ(sandbox, reference_lake, IGDB_PAGE_SIZE=40,
                                                  INGEST_ENTITIES=ENTITIES, **ledger))
    assert _run(reference_env, tmp_path).returncode == 0
    reference = {e: partition_bytes(reference_lake, e) for e in ENTITIES.split(",")}
    assert reference["games"] != old["games"]

    proc = subprocess.Popen([*CLI, "ingest", "--date", DAY.isoformat()], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = lake / "raw" / "games" / "_tmp"
    deadline = time.monotonic() + 60
    while not (staging.exists() and any(staging.iterdir())):
        assert proc.poll() is None, "the run ended before landing started"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(random.Random(trial).uniform(0.0, 0.8))
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    for entity in ENTITIES.split(","):
        now = partition_bytes(lake, entity)
        assert now in (old[entity], reference[entity]), f"{entity}: a mix of old and new files is visible"
        _verify_manifest(lake, entity)

    rerun = _run(env, tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert {e: partition_bytes(lake, e) for e in ENTITIES.split(",")} == reference
    assert not list(lake.glob("raw/*/_tmp")), "the killed run's staging folder was not cleaned up"
