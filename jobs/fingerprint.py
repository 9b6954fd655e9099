"""A row's fingerprint: one 64-bit hash of all its columns, so two dates of a table can be compared
by key and fingerprint (two numbers a row) instead of by every column of a wide catalogue row.

The writer stores it beside the rows of the datasets declared `fingerprinted` (jobs/io.py), and the
load's delta (jobs/load/plan.py) reads only it and the key from the date loaded before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

FINGERPRINT = "_row_fingerprint"


def with_fingerprint(frame: DataFrame) -> DataFrame:
    """The frame plus FINGERPRINT, a hash of every column computed in the JVM rather than by building
    each row's text."""
    return frame.withColumn(FINGERPRINT, fingerprint_of(frame))


def fingerprint_of(frame: DataFrame) -> Column:
    """The hash of every column of `frame`, as a column of it.

    Spark's hash skips nulls and chains array elements without their boundaries, so on its own
    (x, null) and (null, x), or [1, 2], [3] and [1], [2, 3], would collide: each value's null flag,
    and each array's size and null elements, are hashed with it.
    """
    parts: list[Column] = []
    for field in frame.schema.fields:
        column = F.col(field.name)
        parts += [column, column.isNull()]
        if isinstance(field.dataType, T.ArrayType):
            parts += [F.size(column), F.transform(column, lambda element: element.isNull())]
    return F.xxhash64(*parts)


def digest_of(names: Iterable[str]) -> str | None:
    """Identity of a partition's content from the names of the files listed in it: its data files'
    names (not Spark's hidden `_SUCCESS` and `.crc` files). Spark names every file it writes with
    the writing job's UUID, so a rewrite of the date always changes the digest. None: no data file."""
    data = sorted(n for n in names if not n.startswith((".", "_")))
    return hashlib.sha256("\n".join(data).encode()).hexdigest() if data else None
