"""Rows to PostgreSQL's COPY text format, and a COPY from each Spark partition.

Spark builds each row's line (a DataFrame -> DataFrame function, run in the JVM); executors
stream their own partition's lines into the staging table, so no table is collected on the
driver. Text format: tab-separated, \\N for null, backslash escapes; arrays as array literals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg2
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T


class RowStream:
    """A file-like view of a partition's COPY lines, for cursor.copy_expert, read in chunks."""

    def __init__(self, rows: Iterable[Any]) -> None:
        self._lines = (row[0] + "\n" for row in rows)
        self.rows = 0

    def read(self, size: int | None = -1) -> str:
        """About `size` characters of whole lines (COPY accepts any chunking); "" at the end."""
        want = size if size is not None and size > 0 else math.inf
        chunk: list[str] = []
        length = 0
        while length < want:  # a list and one join: appending to a str attribute would copy it each time
            line = next(self._lines, None)
            if line is None:
                break
            chunk.append(line)
            length += len(line)
            self.rows += 1
        return "".join(chunk)


def copy_text_partition(rows: Iterable[Any], url: str, statement: str) -> Iterator[int]:
    """Run on an executor: COPY this partition's lines (from copy_lines) into the staging table;
    yields the count."""
    stream = RowStream(rows)
    conn = psycopg2.connect(url, application_name="igdb-pipeline-copy", connect_timeout=10)
    try:
        with conn, conn.cursor() as cur:
            cur.copy_expert(statement, stream, size=1 << 20)
    finally:
        conn.close()
    yield stream.rows


def _replace(column: Column, search: str, replacement: str) -> Column:
    """Literal replacement: half the time of regexp_replace over the catalogue's 440 MB of text."""
    return F.replace(column, F.lit(search), F.lit(replacement))


def _text(column: Column) -> Column:
    """Escape a text value for COPY's text format (backslash first)."""
    out = column
    for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        out = _replace(out, raw, escaped)
    return out


def _literal(column: Column, kind: T.DataType) -> Column:
    """A value as PostgreSQL's input text (before COPY escaping); null stays null."""
    if isinstance(kind, T.ArrayType):
        if isinstance(kind.elementType, T.StringType):
            quoted = F.transform(column, lambda x: F.when(x.isNull(), F.lit("NULL")).otherwise(
                F.concat(F.lit('"'), _replace(_replace(x, "\\", "\\\\"), '"', '\\"'),
                         F.lit('"'))))
        else:
            quoted = F.transform(column, lambda x: F.coalesce(_literal(x, kind.elementType), F.lit("NULL")))
        return F.concat(F.lit("{"), F.array_join(quoted, ","), F.lit("}"))
    if isinstance(kind, T.TimestampType):  # the session's time zone is UTC (jobs/session.py)
        return F.concat(F.date_format(column, "yyyy-MM-dd HH:mm:ss.SSSSSS"), F.lit("+00"))
    if isinstance(kind, T.BooleanType):
        return F.when(column, F.lit("t")).when(~column, F.lit("f"))
    return column.cast("string")


def copy_lines(frame: DataFrame) -> DataFrame:
    """One column `line`: each row in COPY text format, built by Spark (not row by row in Python)."""
    fields = [F.coalesce(_text(_literal(F.col(f.name), f.dataType)), F.lit("\\N")) for f in frame.schema.fields]
    return frame.select(F.concat_ws("\t", *fields).alias("line"))

