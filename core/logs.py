"""Structured logging: every line carries the run id, date and step, plus the event's own counts.

`LOG_FORMAT=json` gives one JSON object per line (EMR, CloudWatch); `text` gives readable lines.
Secret values registered with `register_secrets` are replaced by `***` in every line, whatever
code path produced it (defence in depth: the code also never passes secrets to the logger).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import secrets
import sys
import threading
from collections.abc import Iterator
from typing import Any

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("log_context", default=None)
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def new_run_id() -> str:
    """Sortable and unique: UTC time plus 6 random hex digits."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def register_secrets(values: list[str]) -> None:
    with _secrets_lock:
        _secrets.update(v for v in values if v and len(v) >= 3)


def redact(text: str) -> str:
    for value in _secrets:
        if value in text:
            text = text.replace(value, "***")
    return text


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (run_id, dt, step, entity...) to every log line inside the block."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get() or {})


def bind_context(fields: dict[str, Any]) -> None:
    """Set the context in a worker thread (threads do not inherit contextvars)."""
    _context.set(dict(fields))


def event(logger: logging.Logger, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log a message with structured fields (counts, durations) next to the context."""
    logger.log(level, message, extra={"fields": fields})


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields = {**(_context.get() or {}), **getattr(record, "fields", {})}
        ts = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        if self.as_json:
            line = json.dumps(
                {"ts": ts, "level": record.levelname, "logger": record.name, "msg": message, **fields},
                default=str,
                ensure_ascii=False,
            )
        else:
            ctx = " ".join(f"{k}={v}" for k, v in fields.items())
            line = f"{ts[:-6]}Z {record.levelname:<7} {message}" + (f"  [{ctx}]" if ctx else "")
        return redact(line)


def configure_logging(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(as_json=fmt == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # libraries that log their own plumbing at INFO (pgserver: every pg_ctl call with its output)
    for noisy in ("urllib3", "botocore", "boto3", "s3transfer", "py4j", "pgserver", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
