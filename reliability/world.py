"""A world for one scenario: the sandbox on 127.0.0.1, a lake folder, a PostgreSQL database, and
`igdb-pipeline` run in its own process (so it can be SIGKILLed like a real job) against them.

Worlds can be snapshotted and cloned: the lake is copied, the database is created from the
snapshot's database as a PostgreSQL template. That lets a kill trial start exactly where a step
starts without redoing the steps before it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from core.config import without_pipeline_settings
from ingestion.sandbox.server import RunningSandbox

CLI = [sys.executable, "-m", "pipeline.cli"]
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Postgres:
    """One PostgreSQL server for the whole suite, one database per world: DATABASE_URL's server
    (its role must be allowed to CREATE DATABASE), else pgserver's, started in `folder`."""

    def __init__(self, folder: Path, url: str | None = None) -> None:
        self._server: Any = None
        url = url or os.environ.get("DATABASE_URL")
        if not url:
            import pgserver

            self._server = pgserver.get_server(folder, cleanup_mode="delete")
            url = str(self._server.get_uri())
        self.admin_url = url

    def url_for(self, database: str, *, user: str | None = None, password: str | None = None) -> str:
        """The server URL with another database (and optionally another role)."""
        parts = urlsplit(self.admin_url)
        netloc = parts.netloc
        if user is not None:
            host = netloc.rsplit("@", 1)[-1]
            netloc = f"{user}:{password}@{host}" if password else f"{user}@{host}"
        return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, parts.fragment))

    def execute(self, statement: sql.Composable, params: tuple[Any, ...] = ()) -> None:
        conn = psycopg2.connect(self.admin_url)
        conn.autocommit = True  # CREATE DATABASE refuses to run inside a transaction
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
        finally:
            conn.close()

    def create_database(self, name: str, template: str | None = None) -> str:
        if template:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                          sql.Identifier(template))
            for attempt in range(50):  # a finished run's backend may take a moment to go away
                try:
                    self.execute(statement)
                    break
                except psycopg2.errors.ObjectInUse:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
        else:
            self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        self.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()


@dataclass
class Run:
    """One finished `igdb-pipeline` process: exit code, both streams, wall time, whether we killed it."""

    args: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float
    killed: bool = False

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines (LOG_FORMAT=json), in order."""
        out = []
        for line in self.stderr.splitlines():
            if _message(line) is not None:
                out.append(json.loads(line))
        return out

    def step_seconds(self) -> dict[str, float]:
        """Each step's own time, from its `<step> done` event."""
        return {e["msg"].split()[0]: float(e["seconds"]) for e in self.events()
                if e.get("msg", "").endswith(" done") and "seconds" in e}

    def describe(self) -> str:
        tail = (self.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
        shown = " ".join(a for a in self.args if a not in CLI)
        return f"`igdb-pipeline {shown}` exited {self.code}: {tail}"


@dataclass
class World:
    """Everything one scenario's runs share. `env` holds the pipeline settings of this world."""

    name: str
    root: Path
    postgres: Postgres
    sandbox: RunningSandbox
    database: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def url(self) -> str:
        return self.postgres.url_for(self.database)

    @property
    def schema(self) -> str:
        return self.env.get("DATABASE_SCHEMA", "igdb")

    @classmethod
    def create(cls, name: str, root: Path, postgres: Postgres, sandbox: RunningSandbox,
               template: str | None = None, **settings: str) -> World:
        database = f"rel_{name}".replace("-", "_")
        postgres.drop_database(database)
        postgres.create_database(database, template)
        world = cls(name, root / name, postgres, sandbox, database)
        world.root.mkdir(parents=True, exist_ok=True)
        world.env = world.base_env(**settings)
        return world

    def base_env(self, **settings: str) -> dict[str, str]:
        keep = without_pipeline_settings(os.environ)  # a scenario sets them; the caller's never leak in
        limits = self.sandbox.state.limits
        return {
            **keep,
            "IGDB_API_URL": self.sandbox.api_url, "TWITCH_TOKEN_URL": self.sandbox.token_url,
            "IGDB_CLIENT_ID": self.sandbox.state.client_id,
            "IGDB_CLIENT_SECRET": self.sandbox.state.client_secret,
            "IGDB_RATE_LIMIT": str(limits.per_second), "IGDB_MAX_IN_FLIGHT": str(limits.max_open),
            "IGDB_BACKOFF_BASE": "0.05", "IGDB_BACKOFF_MAX": "1",
            "LAKE_URI": str(self.lake), "PIPELINE_DATA_DIR": str(self.root / "data"),
            "DATABASE_URL": self.url, "DATABASE_SCHEMA": "igdb",
            "SPARK_SHUFFLE_PARTITIONS": "2", "SPARK_DRIVER_MEMORY": "1g", "MARTS_TOP_N": "20",
            "LOG_FORMAT": "json", "PYTHONPATH": str(PROJECT_ROOT),
            **settings,
        }

    def clone(self, name: str) -> World:
        """A new world whose lake and database start as copies of this one's (no run may be open)."""
        twin = World.create(name, self.root.parent, self.postgres, self.sandbox, template=self.database)
        shutil.rmtree(twin.lake, ignore_errors=True)
        if self.lake.exists():
            shutil.copytree(self.lake, twin.lake, symlinks=True)
        twin.env = {**self.env, "LAKE_URI": str(twin.lake), "PIPELINE_DATA_DIR": str(twin.root / "data"),
                    "DATABASE_URL": twin.url}
        return twin

    def discard(self) -> None:
        self.postgres.drop_database(self.database)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- running the pipeline ------------------------------------------------------------------

    def command(self, *args: str) -> list[str]:
        return [*CLI, *args]

    def run(self, *args: str, timeout: float = 900, **extra_env: str) -> Run:
        """Run `igdb-pipeline <args>` to the end."""
        started = time.monotonic()
        proc = subprocess.run(self.command(*args), env={**self.env, **extra_env}, cwd=self.root,
                              capture_output=True, text=True, timeout=timeout)
        return Run(list(args), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

    def start(self, *args: str, **extra_env: str) -> Running:
        """Start `igdb-pipeline <args>` in its own process group (use as a context manager: a
        process still running at the end of the block is killed)."""
        return start_process(self.command(*args), {**self.env, **extra_env}, self.root)


def start_process(command: list[str], env: dict[str, str], cwd: Path) -> Running:
    """Start a process in its own group (so a SIGKILL reaches Spark's JVM too), streams piped."""
    handle = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    return Running(command, handle, time.monotonic())


@dataclass
class Running:
    """A pipeline process in flight: stderr is read line by line so a scenario can wait for an event."""

    args: list[str]
    handle: subprocess.Popen[str]
    started: float
    lines: list[str] = field(default_factory=list)
    killed: bool = False

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle.poll() is None:
            self.kill()
        self.handle.communicate(timeout=120)

    def wait_for(self, message: str, timeout: float = 600) -> bool:
        """Read stderr until a JSON log line says `message`; False if the process ended first."""
        stream: IO[str] | None = self.handle.stderr
        assert stream is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = stream.readline()
            if not line:
                return False
            self.lines.append(line)
            if _message(line) == message:
                return True
        return False

    def kill(self) -> None:
        """SIGKILL the whole process group: the Python driver and Spark's JVM alike."""
        try:
            os.killpg(self.handle.pid, signal.SIGKILL)
            self.killed = True
        except ProcessLookupError:
            pass

    def finish(self, timeout: float = 900) -> Run:
        """Wait for the end; the whole run's streams and exit code."""
        out, err = self.handle.communicate(timeout=timeout)
        stderr = "".join(self.lines) + (err or "")
        return Run(self.args, self.handle.returncode, out or "", stderr, time.monotonic() - self.started,
                   self.killed)


def _message(line: str) -> str | None:
    if not line.startswith("{"):
        return None
    try:
        return str(json.loads(line).get("msg"))
    except json.JSONDecodeError:
        return None


def day_after(day: dt.date, days: int = 1) -> dt.date:
    return day + dt.timedelta(days=days)
