"""Where PostgreSQL is: `database.url` (RDS in production), else an embedded server of our own.

The embedded server is pgserver's PostgreSQL 16 (a real server shipped in a wheel), with its
data under `<data_dir>/postgres`, so a laptop with no database runs the whole pipeline and
keeps the loaded marts between runs. Errors name the setting and never show the password.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from core.errors import ExitCode, PipelineError
from core.logs import event, redact

log = logging.getLogger(__name__)

_embedded: dict[Path, Any] = {}  # data folder -> running pgserver handle (one per process)
RUN_LOCK_NAMESPACE = 0x1CDA  # pg_advisory_lock(0x1CDA, D's day number): one run (or gc) of a date at a time
DDL_LOCK_NAMESPACE = 0x1CDD  # pg_advisory_xact_lock(0x1CDD, hashtext(schema)): one process creating a schema's tables


def serialize_ddl(cur: Any, schema: str) -> None:
    """Make this transaction the only one creating or migrating `schema`'s tables until it ends.
    `CREATE ... IF NOT EXISTS` is not safe against itself: two processes starting on a new
    database (two dates at once) both pass the check and one fails on a duplicate catalogue key."""
    cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (DDL_LOCK_NAMESPACE, schema))


def create_schema(cur: Any, schema: str) -> None:
    """The schema, in the caller's transaction, which then holds the schema's DDL lock
    (serialize_ddl): every creation of a schema's tables starts here."""
    serialize_ddl(cur, schema)
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


class DatabaseError(PipelineError):
    """PostgreSQL is unreachable or refused us. The message never carries the password."""


class LockBusy(PipelineError):
    """Another process holds the advisory lock of this date (a run, or a load)."""

    exit_code = ExitCode.BUSY


def safe_url(url: str) -> str:
    """The URL with its password replaced by ***, for messages."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def embedded_url(data_dir: str | Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under <data_dir>/postgres; its connection URL."""
    folder = (Path(data_dir) / "postgres").resolve()
    if folder not in _embedded:
        try:
            import pgserver  # an optional extra: only machines without a database server install it
        except ImportError as exc:  # pragma: no cover - installed with the project
            raise DatabaseError("DATABASE_URL is not set and the embedded PostgreSQL (pgserver) is not "
                                "installed: run `make setup`, or set DATABASE_URL") from exc
        folder.mkdir(parents=True, exist_ok=True)
        # stops when the last process using it exits; the data stays for the next run
        _embedded[folder] = pgserver.get_server(folder, cleanup_mode="stop")
        event(log, "embedded PostgreSQL ready", folder=str(folder))
    return str(_embedded[folder].get_uri())


def resolve_url(configured: str | None, data_dir: str | Path) -> str:
    return configured or embedded_url(data_dir)


def connect(url: str, *, application: str = "igdb-pipeline") -> psycopg2.extensions.connection:
    """A connection, or a DatabaseError naming DATABASE_URL (with the password hidden)."""
    try:
        return psycopg2.connect(url, application_name=application, connect_timeout=10)
    except psycopg2.Error as exc:
        reason = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        parts = urlsplit(url)
        if parts.password:
            reason = reason.replace(parts.password, "***")
        reason = re.sub(r"password=\S+", "password=***", reason)
        raise DatabaseError(f"cannot connect to PostgreSQL at {safe_url(url)} ({reason}); check DATABASE_URL") \
            from None


@contextmanager
def connection(url: str) -> Iterator[psycopg2.extensions.connection]:
    conn = connect(url)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def advisory_lock(conn: Any, namespace: int, day: dt.date, what: str) -> Iterator[None]:
    """A session-level advisory lock on (namespace, D's day number), or LockBusy naming the holder.

    Session-level, so it is released when the process dies: a killed run never blocks the next.
    """
    key = (namespace, day.toordinal())
    with conn.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        if not cur.fetchone()[0]:
            cur.execute("SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l JOIN pg_stat_activity a "
                        "USING (pid) WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s", key)
            holder = cur.fetchone()
            who = f" (PostgreSQL backend pid {holder[0]}, connected since {holder[2]:%Y-%m-%d %H:%M:%S})" \
                if holder else ""
            raise LockBusy(f"another {what} of dt={day} is running{who}: wait for it, or end that session")
    with _releasing(conn, key):
        yield


@contextmanager
def waiting_advisory_lock(conn: Any, namespace: int, key: int) -> Iterator[None]:
    """A session-level advisory lock on (namespace, key), waited for rather than refused: for
    work that must take turns (released too when the process dies)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s, %s)", (namespace, key))
    with _releasing(conn, (namespace, key)):
        yield


@contextmanager
def _releasing(conn: Any, key: tuple[int, int]) -> Iterator[None]:
    try:
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s, %s)", key)
