"""Change guards: a date whose changes are too large to be true is not loaded until someone looks.

Each rule compares D with history: the deletions of a full refresh with the catalogue it deleted
from, and D's live catalogue and popularity fact with those of the last date loaded before D. A
truncated answer or a bad filter looks like a day that deleted most games, and would replace the
catalogue with a tenth of it; real catalogues lose a few percent a week at most. The figures go
through GX as a one-row frame, like the count reconciliation, so the report shows each rule with
its numbers, the date compared with and the setting that moves its limit. An operator who has
checked a date accepts its changes (`--accept-changes`, `guards.accept_dates`): the rules are then
reported as warnings, and the load runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.metadata_types import FailureSeverity
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from core.lake import Lake
from jobs.datasets import Layer, Severity, dataset
from jobs.io import literal_frame, live_rows

HISTORY = "checks/history"
HISTORY_KEY = ("dt",)
CATALOGUE, FACT = dataset(Layer.MARTS, "dim_games"), dataset(Layer.MARTS, "fct_game_popularity")


@dataclass(frozen=True)
class Limits:
    """The guards' settings, and whether an operator accepted D's changes."""

    max_deleted_share: float = 0.05
    max_drop_share: float = 0.5
    severity: Severity = Severity.CRITICAL
    accepted: bool = False


@dataclass(frozen=True)
class Figures:
    """What the guards compare: D's counts, and those of the dates D is compared with."""

    deleted: int  # games D's full refresh marked deleted
    deleted_from: int | None  # live games of the catalogue D built on (None: D built on none)
    base: str | None  # that catalogue's date
    live: int  # D's live games
    facts: int  # D's popularity fact rows
    last_loaded: str | None  # the last date loaded before D
    live_then: int | None  # its live games
    facts_then: int | None  # its popularity fact rows

    def shares(self) -> tuple[float, float, float]:
        """(deleted share, catalogue shrink, fact drop), each 0 when there is nothing to compare."""
        deleted = self.deleted / self.deleted_from if self.deleted_from else 0.0
        shrink = max(0.0, 1 - self.live / self.live_then) if self.live_then else 0.0
        drop = max(0.0, 1 - self.facts / self.facts_then) if self.facts_then else 0.0
        return deleted, shrink, drop


def figures(spark: SparkSession, lake: Lake, report: dict[str, Any], live: int, facts: int,
            last_loaded: dt.date | None) -> Figures:
    """The guards' figures for D: its transform report's deletions, its live catalogue and fact rows
    (as the gate counted them), and the footers of the last loaded date's catalogue and fact."""
    catalogue = report.get("deletions", {}).get(CATALOGUE.name, {})
    then = live_rows(spark, lake, CATALOGUE, last_loaded) if last_loaded else None
    facts_then = live_rows(spark, lake, FACT, last_loaded) if last_loaded else None
    return Figures(deleted=int(catalogue.get("deleted", 0)), deleted_from=catalogue.get("previous_live"),
                   base=catalogue.get("base"), live=live, facts=facts,
                   last_loaded=None if last_loaded is None else last_loaded.isoformat(),
                   live_then=None if then is None else then[1],
                   facts_then=None if facts_then is None else facts_then[0])


def _share(part: float) -> str:
    return f"{part:.1%}"


def history_suite(found: Figures, limits: Limits) -> gx.ExpectationSuite:
    """The three rules, described with D's numbers (the report shows the description)."""
    severity = FailureSeverity(Severity.WARNING.value if limits.accepted else limits.severity.value)
    deleted, shrink, drop = found.shares()
    accepted = " (accepted for this date: --accept-changes)" if limits.accepted else ""
    since = (f"dt={found.last_loaded}, the last date loaded" if found.last_loaded
             else "no date loaded before: nothing to compare")
    deletions = (f"{found.deleted} of the {found.deleted_from or 0} live games of dt={found.base} deleted "
                 f"({_share(deleted)})" if found.base else "no earlier catalogue")
    then_live = "-" if found.live_then is None else found.live_then
    then_facts = "-" if found.facts_then is None else found.facts_then
    rules = [
        ("deleted_share", limits.max_deleted_share, "guards.max_deleted_share",
         f"a full refresh deletes at most {_share(limits.max_deleted_share)} of the catalogue: {deletions}"),
        ("catalogue_shrink", limits.max_deleted_share, "guards.max_deleted_share",
         f"the catalogue shrinks by at most {_share(limits.max_deleted_share)} against {since}: "
         f"{found.live} live games now, {then_live} then ({_share(shrink)} fewer)"),
        ("fact_drop", limits.max_drop_share, "guards.max_drop_share",
         f"the popularity fact drops by at most {_share(limits.max_drop_share)} against {since}: "
         f"{found.facts} rows now, {then_facts} then ({_share(drop)} fewer)"),
    ]
    return gx.ExpectationSuite(name=HISTORY, expectations=[
        gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=limit, severity=severity,
                                          description=f"{text}; setting {setting}{accepted}")
        for column, limit, setting, text in rules])


HISTORY_SCHEMA = T.StructType([
    T.StructField("dt", T.StringType(), False),
    T.StructField("deleted_share", T.DoubleType(), False),
    T.StructField("catalogue_shrink", T.DoubleType(), False),
    T.StructField("fact_drop", T.DoubleType(), False),
])


def history_frame(spark: SparkSession, day: dt.date, found: Figures) -> DataFrame:
    """The one row the history suite checks."""
    return literal_frame(spark, [(day.isoformat(), *found.shares())], HISTORY_SCHEMA)
