"""Outputs broken on purpose: a partition's files replaced by an edited copy of themselves."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from pyspark.sql import DataFrame


def rewrite_partition(spark, folder: Path, change: Callable[[DataFrame], DataFrame]) -> None:
    """Replace the parquet files under `folder` (one dt= partition) with `change` applied to them,
    materialized first (the new files replace the ones being read)."""
    frame = change(spark.read.parquet(str(folder)))
    rows, schema = frame.collect(), frame.schema
    shutil.rmtree(folder)
    spark.createDataFrame(rows, schema).coalesce(1).write.parquet(str(folder))
