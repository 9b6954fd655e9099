"""Rows to PostgreSQL's COPY text format, and a COPY from each Spark partition.

Executors stream their own partition into the staging table (no table is collected on the
driver). Text format: tab-separated, \\N for null, backslash escapes; arrays as array literals.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator
from typing import Any

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _array_element(value: Any) -> str:
    if value is None:
        return "NULL"
    text = _scalar(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity") if math.isinf(value) \
            else repr(value)
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # the session's timestamps are UTC
        return stamp.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def encode_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, list | tuple):
        text = "{" + ",".join(_array_element(v) for v in value) + "}"
    else:
        text = _scalar(value)
    return text.translate(_ESCAPES)


def encode_rows(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    for row in rows:
        yield "\t".join(encode_value(v) for v in row) + "\n"


class RowStream:
    """A file-like view of encoded rows, for cursor.copy_expert, read in chunks as COPY asks."""

    def __init__(self, rows: Iterable[Iterable[Any]]) -> None:
        self._lines = encode_rows(rows)
        self._buffer = ""
        self.rows = 0

    def read(self, size: int | None = -1) -> str:
        want = size if size is not None and size >= 0 else math.inf
        while len(self._buffer) < want:
            line = next(self._lines, None)
            if line is None:
                break
            self._buffer += line
            self.rows += 1
        if want is math.inf:
            out, self._buffer = self._buffer, ""
        else:
            out, self._buffer = self._buffer[: int(want)], self._buffer[int(want):]
        return out


def copy_partition(rows: Iterable[Any], url: str, statement: str) -> Iterator[int]:
    """Run on an executor: COPY this partition's rows into the staging table; yields the count."""
    import psycopg2

    stream = RowStream(rows)
    conn = psycopg2.connect(url, application_name="igdb-pipeline-copy", connect_timeout=10)
    try:
        with conn, conn.cursor() as cur:
            cur.copy_expert(statement, stream, size=1 << 20)
    finally:
        conn.close()
    yield stream.rows
