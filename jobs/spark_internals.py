"""The one module that touches PySpark's private attributes (`_jvm`, `_jsc`, `_jdf`): all else uses
the public API, and calls these small functions when it needs more.

Why through the JVM: a parquet footer's row count and column statistics (null counts, min and max
per row group) let the gate prove rules and count rows without reading the data
(jobs/footers.py), and no public PySpark API exposes them; parquet-mr, which Spark ships, reads
them on the driver. The query plans and the JVM's collectors serve tests that check how Spark runs
a frame, which no public API returns as text either.

These attributes are not part of PySpark's API and may change in any release: a Spark upgrade
must be checked here first (tests/jobs/test_footers.py and tests/jobs/test_spark_internals.py
exercise every function).
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession


def _jvm(spark: SparkSession) -> Any:
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise RuntimeError("the SparkContext has no JVM gateway: it was stopped")
    return jvm


def parquet_footer(spark: SparkSession, uri: str) -> Any:
    """The footer of one parquet file (parquet-mr's ParquetMetadata, a JVM object), read through
    Hadoop's file system with the session's Hadoop settings: a local path locally, EMRFS on EMR."""
    jvm = _jvm(spark)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(uri)
    reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(
        jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(path, conf))
    try:
        return reader.getFooter()
    finally:
        reader.close()


def optimized_plan(frame: DataFrame) -> str:
    """The frame's logical plan after Spark's optimizer, as text."""
    return str(frame._jdf.queryExecution().optimizedPlan().toString())


def executed_plan(frame: DataFrame) -> str:
    """The physical plan Spark runs for the frame, as text."""
    return str(frame._jdf.queryExecution().executedPlan().toString())


def garbage_collectors(spark: SparkSession) -> set[str]:
    """The names of the garbage collectors the driver's JVM runs (jobs/session.py picks one at launch)."""
    beans = _jvm(spark).java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    return {str(bean.getName()) for bean in beans}
