"""How many Spark jobs a piece of work runs: the gate's cost is counted in jobs, not timed."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")
_GROUPS = itertools.count()


def jobs_run_by(spark: Any, work: Callable[[], R]) -> tuple[R, int]:
    """What `work` returns, and how many Spark jobs it ran (counted in a job group of its own)."""
    group = f"measure-{next(_GROUPS)}"
    spark.sparkContext.setJobGroup(group, "counted")
    try:
        result = work()
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    return result, len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))
