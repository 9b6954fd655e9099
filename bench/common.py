"""Shared benchmark plumbing: a sandbox in its own process, results written as JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.config import without_pipeline_settings

OUT = Path(__file__).resolve().parent / "out"
CLI = [sys.executable, "-m", "pipeline.cli"]


@contextmanager
def sandbox_process(*args: str, timeout: float = 300.0) -> Iterator[dict[str, Any]]:
    """Run `igdb-pipeline sandbox` in its own process (so it does not share our GIL)."""
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready.json"
        proc = subprocess.Popen([*CLI, "sandbox", "--port", "0", "--ready-file", str(ready), *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + timeout
            while not ready.exists():
                if proc.poll() is not None:
                    raise RuntimeError(f"sandbox exited: {proc.stderr.read().decode() if proc.stderr else ''}")
                if time.monotonic() > deadline:
                    raise TimeoutError("sandbox did not start")
                time.sleep(0.2)
            time.sleep(0.05)
            yield json.loads(ready.read_text())
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def sandbox_env(info: dict[str, Any], **extra: str) -> dict[str, str]:
    env = without_pipeline_settings(os.environ)
    env.update(IGDB_API_URL=info["api_url"], TWITCH_TOKEN_URL=info["token_url"],
               IGDB_CLIENT_ID="sandbox-client", IGDB_CLIENT_SECRET="sandbox-secret", **extra)
    return env


@contextmanager
def bench_database(folder: Path) -> Iterator[str]:
    """The URL of the PostgreSQL a benchmark uses: DATABASE_URL, else a pgserver started under
    `folder` for the benchmark alone and deleted after it."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    import pgserver

    server = pgserver.get_server(folder / "pg", cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()




def run_env(url: str, data_dir: Path, schema: str) -> dict[str, str]:
    """The environment of a measured `igdb-pipeline` process: the benchmark's database, schema and
    data folder, none of the caller's pipeline settings (no webhook, no other lake or schema)."""
    env = without_pipeline_settings(os.environ)
    env.update(DATABASE_URL=url, DATABASE_SCHEMA=schema, PIPELINE_DATA_DIR=str(data_dir))
    return env


def write_result(name: str, result: dict[str, Any]) -> Path:
    """bench/out/<name>.json, stamped with when it was measured (the report shows it per row)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    stamped = {**result, "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    path.write_text(json.dumps(stamped, indent=2) + "\n", encoding="utf-8")
    return path
