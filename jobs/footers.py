"""What a partition's parquet footers say about its rows, read on the driver without a Spark job.

A parquet writer records, for every row group and column, the null count and the min and max of
the non-null values; Spark trusts these same statistics to skip row groups when it filters. The
gate uses them to prove value rules (not null, within bounds, equal to D) without reading the
rows (jobs/validate/rule_pass.py); a rule the statistics cannot prove is counted on the rows as before.
Only what can be decoded exactly is kept: whole numbers, floats without NaN, dates and
microsecond UTC timestamps. Anything else (INT96 timestamps, strings, nested columns) gives a
null count at most.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from core.lake import Lake
from jobs.datasets import PARTITION
from jobs.spark_internals import parquet_footer

EPOCH = dt.datetime(1970, 1, 1)
EPOCH_DATE = EPOCH.date()
SPARK_SCHEMA_KEY = "org.apache.spark.sql.parquet.row.metadata"  # where Spark's writer keeps its schema


@dataclass(frozen=True)
class ColumnStats:
    """One column over every file of a partition. `nulls` is None when a row group did not record
    its nulls; `bounded` says whether `low` and `high` cover every non-null value (both None
    when there is none)."""

    nulls: int | None
    low: Any = None
    high: Any = None
    bounded: bool = False


@dataclass(frozen=True)
class FooterStats:
    """A partition's row count and its top-level columns' statistics, as its footers hold them."""

    rows: int
    columns: Mapping[str, ColumnStats]


def open_footer(spark: SparkSession, uri: str) -> Any:
    """The parquet footer (parquet-mr's ParquetMetadata) of one file, read on the driver through the
    JVM (jobs/spark_internals.py): a local path locally, EMRFS on EMR."""
    return parquet_footer(spark, uri)


def footer_schema(footer: Any) -> T.StructType | None:
    """The Spark schema a footer records (None for a file Spark did not write)."""
    text = footer.getFileMetaData().getKeyValueMetaData().get(SPARK_SCHEMA_KEY)
    return T.StructType.fromJson(json.loads(text)) if text else None


def _decoder(field: T.StructField, physical: str, annotation: str) -> Any:
    """How a statistic of this column becomes the value Spark reads; None when it cannot exactly."""
    kind = field.dataType
    signed_whole = annotation == "None" or (annotation.startswith("INT(") and annotation.endswith(",true)"))
    if isinstance(kind, T.IntegralType) and physical in ("INT32", "INT64") and signed_whole:
        return int
    if isinstance(kind, T.FloatType | T.DoubleType) and physical in ("FLOAT", "DOUBLE"):
        return float
    if isinstance(kind, T.DateType) and physical == "INT32" and annotation == "DATE":
        return lambda days: EPOCH_DATE + dt.timedelta(days=int(days))
    if isinstance(kind, T.TimestampType) and physical == "INT64" and annotation == "TIMESTAMP(MICROS,true)":
        return lambda micros: EPOCH + dt.timedelta(microseconds=int(micros))
    return None


@dataclass
class _Tally:
    """One column's statistics gathered row group by row group."""

    chunks: int = 0
    nulls: int | None = 0
    low: Any = None
    high: Any = None
    bounded: bool = True

    def add(self, chunk: Any, decode: Any) -> None:
        self.chunks += 1
        stats = chunk.getStatistics()
        if stats is None or stats.isEmpty() or not stats.isNumNullsSet():
            self.nulls, self.bounded = None, False
            return
        nulls = int(stats.getNumNulls())
        if self.nulls is not None:
            self.nulls += nulls
        if not stats.hasNonNullValue():
            # no min/max: fine only when the row group holds nulls alone (else the writer dropped them)
            self.bounded = self.bounded and nulls == int(chunk.getValueCount())
            return
        if decode is None:
            self.bounded = False
            return
        low, high = decode(stats.genericGetMin()), decode(stats.genericGetMax())
        if isinstance(low, float) and (math.isnan(low) or math.isnan(high)):
            self.bounded = False
            return
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)


def footer_stats(footers: Iterable[Any], schema: T.StructType) -> FooterStats:
    """The statistics of a partition's files (their footers, read with `open_footer`) for the
    top-level columns of `schema` (the files' own Spark schema). A column missing from any row
    group gets no entry."""
    fields = {f.name: f for f in schema.fields}
    rows, tallies, groups = 0, {name: _Tally() for name in fields}, 0
    for footer in footers:
        for block in footer.getBlocks():
            groups += 1
            rows += int(block.getRowCount())
            for chunk in block.getColumns():
                path = list(chunk.getPath().toArray())
                if path[0] not in fields:
                    continue
                primitive = chunk.getPrimitiveType()
                # a list's one leaf counts a null list, an empty one and a null element alike as
                # nulls: no null there proves the column never null, but its min and max are the
                # elements', not the column's
                decode = _decoder(fields[path[0]], str(primitive.getPrimitiveTypeName()),
                                  str(primitive.getLogicalTypeAnnotation())) if len(path) == 1 else None
                tallies[path[0]].add(chunk, decode)
                if len(path) != 1:
                    tallies[path[0]].bounded = False
    # a column with several leaves (a struct, a map) has no one null count
    columns = {name: ColumnStats(t.nulls, t.low, t.high, t.bounded)
               for name, t in tallies.items() if t.chunks == groups}
    return FooterStats(rows=rows, columns=columns)


def with_partition(stats: FooterStats, day: dt.date) -> FooterStats:
    """The statistics plus the partition column of a frame read from the one folder dt=D: Spark
    gives every row of it the value in the folder's name."""
    return FooterStats(stats.rows, {**stats.columns, PARTITION: ColumnStats(nulls=0, low=day, high=day, bounded=True)})


def parquet_files(names: Iterable[str]) -> list[str]:
    """The parquet files among a partition's listed names, in name order."""
    return sorted(name for name in names if name.endswith(".parquet"))


def partition_footers(spark: SparkSession, lake: Lake, rel: str, names: Sequence[str]) -> list[Any]:
    """The footers of a partition's parquet files (`names`, as just listed), in name order."""
    return [open_footer(spark, lake.uri_of(f"{rel}/{name}")) for name in parquet_files(names)]
