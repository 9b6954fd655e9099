"""The run ledger: one row per (dt, step) in PostgreSQL's `pipeline_runs`, upserted as a step
starts and ends, so an operator (and `status`, resume) can see what ran, when, and why it failed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from psycopg2 import sql

from core.database import connection, create_schema
from core.logs import redact

LEDGER = "pipeline_runs"
STEPS = ("ingest", "transform", "validate", "load")  # a date's steps, in order


@dataclass
class StepRecord:
    """What a step reports for the ledger while it runs."""

    rows_in: int | None = None
    rows_out: int | None = None
    rows_quarantined: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepResult(StepRecord):
    """What a step did: the ledger's counts and details (kept in its done marker too), and lines
    for the console."""

    lines: list[str] = field(default_factory=list)
    complete: bool = True  # False for a partial run (--entities, --only): it never counts as done


def ledger_ddl(schema: str) -> sql.Composed:
    return sql.SQL("""CREATE TABLE IF NOT EXISTS {}.{} (
        dt date NOT NULL,
        step text NOT NULL,
        status text NOT NULL,
        run_id text NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        rows_in bigint,
        rows_out bigint,
        rows_quarantined bigint,
        error text,
        details jsonb,
        PRIMARY KEY (dt, step))""").format(sql.Identifier(schema), sql.Identifier(LEDGER))


def ensure_ledger(conn: Any, schema: str) -> None:
    with conn, conn.cursor() as cur:
        create_schema(cur, schema)
        cur.execute(ledger_ddl(schema))


def _write(conn: Any, schema: str, day: dt.date, step: str, status: str, run_id: str,
           started_at: dt.datetime, finished_at: dt.datetime | None, record: StepRecord, error: str | None) -> None:
    statement = sql.SQL(
        "INSERT INTO {} (dt, step, status, run_id, started_at, finished_at, rows_in, rows_out, rows_quarantined, "
        "error, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (dt, step) DO UPDATE SET "
        "status = excluded.status, run_id = excluded.run_id, started_at = excluded.started_at, "
        "finished_at = excluded.finished_at, rows_in = excluded.rows_in, rows_out = excluded.rows_out, "
        "rows_quarantined = excluded.rows_quarantined, error = excluded.error, details = excluded.details"
    ).format(sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(LEDGER)))
    with conn, conn.cursor() as cur:
        cur.execute(statement, (day, step, status, run_id, started_at, finished_at, record.rows_in, record.rows_out,
                                record.rows_quarantined, redact(error) if error else None,
                                json.dumps(record.details, default=str) if record.details else None))


@contextmanager
def ledger_step(url: str, schema: str, day: dt.date, step: str, run_id: str) -> Iterator[StepRecord]:
    """Record `running` now, then `done` or `failed` (with the error and details) when the block ends."""
    record = StepRecord()
    started = dt.datetime.now(dt.UTC)
    with connection(url) as conn:
        ensure_ledger(conn, schema)
        _write(conn, schema, day, step, "running", run_id, started, None, record, None)
    try:
        yield record
    except BaseException as exc:
        details = getattr(exc, "summary", None)
        if isinstance(details, dict):  # a failed validation: which expectations, with sample values
            record.details = {"failures": details.get("failures", []), "report": details.get("report")}
        with connection(url) as conn:
            _write(conn, schema, day, step, "failed", run_id, started, dt.datetime.now(dt.UTC), record,
                   str(exc) or type(exc).__name__)
        raise
    with connection(url) as conn:
        _write(conn, schema, day, step, "done", run_id, started, dt.datetime.now(dt.UTC), record, None)


def read_ledger(url: str, schema: str, day: dt.date | None = None) -> list[dict[str, Any]]:
    query = sql.SQL("SELECT dt, step, status, run_id, started_at, finished_at, rows_in, rows_out, rows_quarantined, "
                    "error, details FROM {}.{} {} ORDER BY dt, step").format(
        sql.Identifier(schema), sql.Identifier(LEDGER), sql.SQL("WHERE dt = %s") if day else sql.SQL(""))
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (sql.SQL("{}.{}").format(sql.Identifier(schema),
                                                                       sql.Identifier(LEDGER)).as_string(conn),))
        if cur.fetchone()[0] is None:  # nothing has run against this database yet
            return []
        cur.execute(query, (day,) if day else None)
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
