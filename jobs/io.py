"""Spark's edges: read a raw partition through its manifest, read and write declared datasets.

Raw lines keep their source file and line number, so a quarantined line can be found again.
Line numbers come without a second pass: the session reads each raw file as one partition
(see jobs/session.py), where monotonically_increasing_id() counts rows from 0 in file order.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from core.errors import PipelineError
from core.lake import Lake
from core.logs import event
from core.raw_lake import partition_path
from jobs.datasets import DELETED_AT, PARTITION, Dataset, Layer
from jobs.fingerprint import FINGERPRINT, with_fingerprint
from jobs.footers import footer_schema, footer_stats, open_footer, parquet_files, partition_footers

log = logging.getLogger(__name__)

ROW_BITS = (1 << 33) - 1  # monotonically_increasing_id = partition index << 33 | row within partition
LINES_SCHEMA = T.StructType([
    T.StructField("source_file", T.StringType(), False),
    T.StructField("line_number", T.LongType(), False),
    T.StructField("value", T.StringType()),
])


class TransformError(PipelineError):
    """The Spark step cannot produce a trustworthy output for this date."""


def literal_frame(spark: SparkSession, rows: Sequence[Sequence[Any]], schema: T.StructType) -> DataFrame:
    """A few rows as a frame built in the JVM from literals. spark.createDataFrame(rows) would be
    served by Python workers, whose start costs more than any small check that reads it."""
    if not rows:
        return spark.createDataFrame([], schema)
    structs = [F.struct(*[F.lit(value).cast(f.dataType).alias(f.name) for value, f in zip(row, schema.fields,
                                                                                            strict=True)])
               for row in rows]
    return spark.range(1, numPartitions=1).select(F.inline(F.array(*structs))).to(schema)


def require_manifest(entity: str, day: dt.date, manifest: dict | None) -> dict:
    """The manifest of raw/<entity>/dt=D, or the error telling the operator to ingest D first."""
    if manifest is None:
        raise TransformError(f"{partition_path(entity, day)} has no _manifest.json: "
                             f"run `igdb-pipeline ingest --date {day}` first")
    return manifest


def read_raw_lines(spark: SparkSession, lake: Lake, entity: str, day: dt.date, manifest: dict | None) -> DataFrame:
    """Every line of raw/<entity>/dt=D, as its manifest (`read_manifest`; None when the partition
    has none) lists it: (source_file, line_number, value)."""
    folder = partition_path(entity, day)
    files = require_manifest(entity, day, manifest)["files"]
    if not files:
        return spark.createDataFrame([], LINES_SCHEMA)
    largest = max(f["bytes"] for f in files)
    split_at = int(str(spark.conf.get("spark.sql.files.maxPartitionBytes")).rstrip("b"))
    if largest > split_at:
        raise TransformError(
            f"{folder}: a raw file of {largest} bytes would be split, which breaks line numbers; "
            f"raise spark.sql.files.maxPartitionBytes above it (jobs/session.py) or ingest more, smaller ranges"
        )
    lines = spark.read.text([lake.uri_of(f"{folder}/{f['name']}") for f in files]).select(
        F.concat(F.lit(f"{folder}/"), F.element_at(F.split(F.input_file_name(), "/"), -1)).alias("source_file"),
        ((F.monotonically_increasing_id().bitwiseAND(F.lit(ROW_BITS))) + 1).alias("line_number"),
        F.col("value"),
    )
    return lines


def conform(df: DataFrame, ds: Dataset, columns: Sequence[tuple[str, T.DataType, bool]] | None = None) -> DataFrame:
    """Exactly the declared columns (or `columns`, e.g. the file columns), in order, with their
    types; a missing column is a bug."""
    columns = ds.columns if columns is None else columns
    missing = [n for n, _, _ in columns if n not in df.columns]
    if missing:
        raise TransformError(f"{ds.rel_path}: the transform did not produce column(s) {', '.join(missing)}")
    return df.select([F.col(n).cast(t).alias(n) for n, t, _ in columns])


def write_partition(df: DataFrame, ds: Dataset, lake: Lake, day: dt.date, empty: bool = False) -> int:
    """Replace dt=D of a dataset (dynamic partition overwrite: no other date is touched); rows written.

    The rows are counted while the files are written (an observed metric of the write job), so
    no output is computed twice: a count of its own would repeat every join and ranking above it.
    An empty output still replaces D: Spark's dynamic overwrite writes no folder for no rows,
    which would leave the old rows of D in place, so D's folder is replaced by a schema-only
    file. `empty=True` (the caller knows there is no row) does that without running Spark.
    """
    return write_counted(df, ds, lake, day, {}, empty)["rows"]


def write_counted(df: DataFrame, ds: Dataset, lake: Lake, day: dt.date, counts: Mapping[str, Column],
                  empty: bool = False) -> dict[str, int]:
    """`write_partition`, also counting `counts` (name -> a boolean column) over the rows written, in
    the same job: {"rows": n, name: rows where the column is true, ...}."""
    # rows may carry their fingerprint already (the catalogue's unchanged rows keep the stored one)
    carried = ds.fingerprinted and FINGERPRINT in df.columns
    out = conform(df, ds, ds.file_columns if carried else None)
    if ds.fingerprinted and not carried:
        out = with_fingerprint(out)
    partition = ds.partition_rel_path(day.isoformat())
    found = {"rows": 0, **{name: 0 for name in counts}}
    if not empty:
        written = Observation()
        shaped = out.observe(written, F.count(F.lit(1)).alias("rows"),
                             *[F.count_if(condition).alias(name) for name, condition in counts.items()])
        (shaped.coalesce(ds.files)  # no extra shuffle
         .withColumn(PARTITION, F.lit(day.isoformat()).cast(T.DateType()))
         .write.mode("overwrite").partitionBy(PARTITION).parquet(lake.uri_of(ds.rel_path)))
        found = {name: int(written.get[name] or 0) for name in found}
    if found["rows"] == 0:
        lake.delete(partition)
        if ds.layer is not Layer.QUARANTINE:  # no quarantine folder means no rejected line
            out.limit(0).coalesce(1).write.mode("overwrite").parquet(lake.uri_of(partition))
    event(log, f"wrote {ds.rel_path}/dt={day}", **found)
    return found


def distinct_keys(spark: SparkSession, ds: Dataset, lake: Lake, day: dt.date) -> int:
    """How many distinct keys D's partition holds: a read of the key columns alone."""
    return read_partition(spark, ds, lake, day).select(*ds.key).distinct().count()


def read_partition(spark: SparkSession, ds: Dataset, lake: Lake, day: dt.date) -> DataFrame:
    """One date of a dataset with its declared schema (a missing date is an error, not empty,
    except for quarantine, where no folder means no rejected line)."""
    rel = ds.partition_rel_path(day.isoformat())
    if not lake.list_files(rel):
        if ds.layer is Layer.QUARANTINE:
            return spark.createDataFrame([], ds.schema)
        raise TransformError(f"{rel} does not exist: run the step that writes it for {day} first")
    return spark.read.schema(ds.schema).parquet(lake.uri_of(rel))


def written_schema(spark: SparkSession, lake: Lake, rel: str) -> T.StructType | None:
    """The schema of a partition's files as Spark wrote them, read from one file's footer on the
    driver, without a Spark job; None when the partition has no parquet file or the file was not
    written by Spark. Spark's own inference runs a job to read that same footer."""
    names = parquet_files(lake.list_files(rel))
    return footer_schema(open_footer(spark, lake.uri_of(f"{rel}/{names[0]}"))) if names else None


def _shape(schema: T.StructType) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in schema.fields]


def stored_rows(spark: SparkSession, ds: Dataset, lake: Lake, day: dt.date) -> DataFrame | None:
    """D's rows of a `fingerprinted` dataset as its files hold them, FINGERPRINT included, when the
    files have exactly the file columns declared now (names and types); None otherwise (no such
    partition, a date written before the fingerprint was stored, or before a column was added)."""
    rel = ds.partition_rel_path(day.isoformat())
    written = written_schema(spark, lake, rel) if ds.fingerprinted else None
    if written is None or _shape(written) != _shape(ds.file_schema):
        return None
    return spark.read.schema(ds.file_schema).parquet(lake.uri_of(rel))


def read_fingerprinted(spark: SparkSession, ds: Dataset, lake: Lake, day: dt.date) -> DataFrame:
    """One date of a dataset with its declared columns plus FINGERPRINT: the stored one when its files
    have it (selecting the key and the fingerprint then reads two numbers a row), else computed from the
    rows (a dataset not declared `fingerprinted`, or a date written before it was)."""
    rows = read_partition(spark, ds, lake, day)  # a missing date is an error
    stored = stored_rows(spark, ds, lake, day)
    return stored if stored is not None else with_fingerprint(rows)


def copy_partition(source: Dataset, target: Dataset, lake: Lake, day: dt.date, rows: int) -> int:
    """Publish the files of one dataset's dt=D as another's: for marts identical to a staging table."""
    if source.file_column_names != target.file_column_names:
        raise TransformError(f"{target.rel_path} cannot be a copy of {source.rel_path}: the columns differ")
    lake.copy_partition(source.partition_rel_path(day.isoformat()), target.partition_rel_path(day.isoformat()),
                        f"copy-{day}")
    event(log, f"wrote {target.rel_path}/dt={day} (copy of {source.rel_path})", rows=rows)
    return rows


def latest_partition_before(lake: Lake, ds: Dataset, day: dt.date) -> dt.date | None:
    """The newest dt of a dataset strictly before `day` (the previous catalogue or snapshot)."""
    days = []
    for name in lake.list_dirs(ds.rel_path):
        if name.startswith(f"{PARTITION}="):
            try:
                days.append(dt.date.fromisoformat(name.split("=", 1)[1]))
            except ValueError:
                continue
    earlier = [d for d in days if d < day]
    return max(earlier) if earlier else None


def live_rows(spark: SparkSession, lake: Lake, ds: Dataset, day: dt.date) -> tuple[int, int] | None:
    """(rows, live rows) of D's partition of a dimension, from its footers (no Spark job): the live
    rows are those whose `deleted_at` is null; every row of files written before the column was.
    None when the partition has no parquet file."""
    rel = ds.partition_rel_path(day.isoformat())
    names = parquet_files(lake.list_files(rel))
    if not names:
        return None
    footers = partition_footers(spark, lake, rel, names)
    schema = footer_schema(footers[0])
    if schema is None:
        return None
    stats = footer_stats(footers, schema)
    deleted = stats.columns.get(DELETED_AT)
    if DELETED_AT not in schema.fieldNames():
        return stats.rows, stats.rows
    if deleted is None or deleted.nulls is None:
        return None
    return stats.rows, deleted.nulls
