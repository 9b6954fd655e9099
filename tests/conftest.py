"""Shared fixtures: real parts only (a sandbox on 127.0.0.1, a temporary lake, moto over HTTP)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from core.config import PIPELINE_VARIABLES, Settings, load_settings, without_pipeline_settings
from ingestion.sandbox.faults import Faults, Limits
from ingestion.sandbox.generator import GeneratorSpec
from ingestion.sandbox.server import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, RunningSandbox, start_sandbox
from ingestion.sandbox.store import Store
from pipeline.cli import main

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("IGDB_SAMPLES_DIR") or PROJECT_ROOT.parent / "shared" / "igdb-samples")
DAY = dt.date(2026, 11, 20)

# Fast but faithful: the limits are enforced, just higher than IGDB's so the suite stays quick.
FAST_LIMITS = Limits(per_second=200.0, max_open=8)


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., RunningSandbox]]:
    """Start sandboxes on 127.0.0.1 (real HTTP); all are stopped after the test."""
    started: list[RunningSandbox] = []

    def make(games: int = 600, seed: int = 42, store: Store | None = None, limits: Limits = FAST_LIMITS,
             faults: Faults | None = None) -> RunningSandbox:
        sandbox = start_sandbox(store or Store.generated(GeneratorSpec(games=games, seed=seed)), limits=limits,
                                faults=faults)
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


def sandbox_environ(sandbox: RunningSandbox, lake: Path | str, **extra: Any) -> dict[str, str]:
    """Environment variables that point the pipeline at a running sandbox and a lake."""
    env = {
        "IGDB_API_URL": sandbox.api_url,
        "TWITCH_TOKEN_URL": sandbox.token_url,
        "IGDB_CLIENT_ID": SANDBOX_CLIENT_ID,
        "IGDB_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
        "LAKE_URI": str(lake),
        "PIPELINE_DATA_DIR": str(Path(str(lake)).parent / "data") if "://" not in str(lake) else "/tmp/igdb-data",
        "IGDB_RATE_LIMIT": str(sandbox.state.limits.per_second),
        "IGDB_MAX_IN_FLIGHT": str(sandbox.state.limits.max_open),
        "IGDB_BACKOFF_BASE": "0.02",
        "IGDB_BACKOFF_MAX": "0.2",
        "INGEST_PROGRESS_SECONDS": "0.5",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def settings_for(sandbox: RunningSandbox, lake: Path | str, **extra: Any) -> Settings:
    """Settings of an in-process run against a sandbox. Data Docs are off unless asked for: they
    have tests of their own (tests/jobs/test_gx_artifacts.py, test_gate_engines.py, the CLI and
    cluster runs), and would add seconds to every gate of the many-date tests."""
    return load_settings(environ=sandbox_environ(sandbox, lake, **{"VALIDATION_DATA_DOCS": False, **extra}))


def cli_environ(**extra: str) -> dict[str, str]:
    """A clean environment for running `igdb-pipeline` as a subprocess: none of the caller's
    pipeline settings, only `extra`."""
    return {**without_pipeline_settings(os.environ), **extra}


CLI = [sys.executable, "-m", "pipeline.cli"]


@contextmanager
def cli_in_process(monkeypatch: pytest.MonkeyPatch, cwd: Path,
                   environ: Mapping[str, str]) -> Iterator[Callable[[list[str]], int]]:
    """`igdb-pipeline`'s entry point (its return value is the exit code), to call in this process on
    the worker's warm session: for a test whose subject is what a command does, not its process (a
    cold JVM costs a warm date's time again). The pipeline settings are those of `environ` only,
    the working folder is `cwd`, and the root logger main() sets up is put back afterwards."""
    for name in PIPELINE_VARIABLES & set(os.environ):
        monkeypatch.delenv(name)
    for name in PIPELINE_VARIABLES & set(environ):
        monkeypatch.setenv(name, environ[name])
    monkeypatch.chdir(cwd)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield main
    finally:
        root.handlers[:], root.level = handlers, level


def landed_records(lake: Path, entity: str, day: dt.date = DAY) -> list[dict[str, Any]]:
    """Every record of a local raw partition, in file order, checked against its manifest."""
    folder = lake / "raw" / entity / f"dt={day.isoformat()}"
    manifest = json.loads((folder / "_manifest.json").read_text())
    records = []
    for entry in manifest["files"]:
        lines = (folder / entry["name"]).read_bytes().splitlines()
        assert len(lines) == entry["records"], f"{entry['name']}: manifest count differs from the file"
        records.extend(json.loads(line) for line in lines)
    assert len(records) == manifest["records"]
    return records


def partition_bytes(lake: Path, entity: str, day: dt.date = DAY) -> dict[str, bytes]:
    """The data files of a partition (not the manifest, whose run id and time differ per run)."""
    folder = lake / "raw" / entity / f"dt={day.isoformat()}"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("part-*.jsonl"))}


BUCKET = "igdb-lake-test"


@pytest.fixture
def aws_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto in server mode on 127.0.0.1 (S3, EMR, ...), with boto3 pointed at it; BUCKET exists."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._server.server_port}"
    for key, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()



@pytest.fixture(scope="session")
def spark():
    """One local SparkSession per test session (per xdist worker): 2 cores, 2 shuffle partitions."""
    from jobs.session import build_session

    session = build_session("igdb-pipeline-tests", master="local[2]", shuffle_partitions=2, driver_memory="2g")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory) -> Iterator[str]:
    """A real PostgreSQL for the session: DATABASE_URL when set, else pgserver's, started here."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("postgres"), cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@pytest.fixture
def pg_schema(pg_url) -> Iterator[str]:
    """A fresh schema name per test (the tests share one server); dropped afterwards."""
    import uuid

    import psycopg2
    from psycopg2 import sql

    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    conn = psycopg2.connect(pg_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    finally:
        conn.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding a slow test first, each file's own order kept. `make test` hands whole files
    to its two workers in collection order (--dist loadfile): started first, the few long files
    run side by side while the many short ones even out the end, instead of one long file
    starting last and running alone."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
