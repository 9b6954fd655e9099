"""The one place a SparkSession is made: settings every job relies on are set here."""

from __future__ import annotations

from pyspark.sql import SparkSession

# Each raw JSONL file is read as one partition (no split), which gives exact line numbers
# (jobs/io.py) and keeps file counts sensible; ingestion's id ranges bound the file size.
ONE_FILE_PER_PARTITION = str(2 << 30)

REQUIRED_CONF = {
    "spark.sql.sources.partitionOverwriteMode": "dynamic",  # writing dt=D never touches another date
    "spark.sql.session.timeZone": "UTC",  # epoch seconds become UTC dates and timestamps
    "spark.sql.files.maxPartitionBytes": ONE_FILE_PER_PARTITION,
    "spark.sql.files.openCostInBytes": ONE_FILE_PER_PARTITION,
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.json.enablePartialResults": "true",  # a wrong-typed field is named in the reason
    "spark.sql.parquet.compression.codec": "snappy",
}


def build_session(app_name: str, master: str | None = None, shuffle_partitions: int | None = None,
                  driver_memory: str | None = None) -> SparkSession:
    """A session with the pipeline's settings. Under spark-submit (EMR) pass no master: the
    cluster's wins; locally the master and memory come from the pipeline settings."""
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master).config("spark.ui.enabled", "false")
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
