"""The one place a SparkSession is made: settings every job relies on are set here."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

# Each raw JSONL file is read as one partition (no split), which gives exact line numbers
# (jobs/io.py) and keeps file counts sensible; ingestion's id ranges bound the file size.
ONE_FILE_PER_PARTITION = str(2 << 30)

# A local session's one JVM is both driver and executor, and a batch job wants throughput, not
# short pauses: the parallel collector spends less CPU than the default G1. Set at launch (a JVM
# option cannot change later); on a cluster the cluster's own settings stay.
LOCAL_JVM_OPTIONS = "-XX:+UseParallelGC"

REQUIRED_CONF = {
    "spark.sql.sources.partitionOverwriteMode": "dynamic",  # writing dt=D never touches another date
    "spark.sql.session.timeZone": "UTC",  # epoch seconds become UTC dates and timestamps
    "spark.sql.files.maxPartitionBytes": ONE_FILE_PER_PARTITION,
    "spark.sql.files.openCostInBytes": ONE_FILE_PER_PARTITION,
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.json.enablePartialResults": "true",  # a wrong-typed field is named in the reason
    "spark.sql.parquet.compression.codec": "snappy",
    # timestamps as int64 microseconds, not Spark's legacy INT96: the footers then keep their min
    # and max, which prove the gate's "not in the future" rules without reading rows (jobs/footers.py)
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.debug.maxToStringFields": "200",  # games have 30 fields: no truncation warnings
    # free text is unique per row: a dictionary attempt on it is wasted work
    **{f"spark.hadoop.parquet.enable.dictionary#{column}": "false" for column in ("summary", "storyline")},
}


def build_session(app_name: str, master: str | None = None, shuffle_partitions: int | None = None,
                  driver_memory: str | None = None) -> SparkSession:
    """A session with the pipeline's settings. Under spark-submit (EMR) pass no master: the
    cluster's wins; locally the master and memory come from the pipeline settings."""
    # progress bars only for a person watching a terminal; in files (EMR, CI, JSON logs) they garble lines
    builder = SparkSession.builder.appName(app_name).config("spark.ui.showConsoleProgress",
                                                            str(sys.stderr.isatty()).lower())
    if master:
        # a local session talks to itself only: loopback, no UI port
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Python workers (the load's COPY per partition) run this interpreter, which has the project
        # (PySpark reads the variable, not spark.pyspark.python, when it starts its workers)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (builder.master(master).config("spark.ui.enabled", "false")
                   .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                   .config("spark.driver.extraJavaOptions", LOCAL_JVM_OPTIONS))
    if driver_memory:
        builder = builder.config("spark.driver.memory", driver_memory)
    if shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    for key, value in REQUIRED_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in REQUIRED_CONF.items():  # a session that already existed gets them too
        spark.conf.set(key, value)
    spark.sparkContext.setLogLevel("WARN")
    return spark
