"""What of a mart's dt=D must go to PostgreSQL: everything, only what differs, or nothing.

The catalogue (dim_games) is rewritten whole every day, yet only a small share of its rows
change. Staging only the rows that differ from the date the table last took in is far cheaper
than staging all of them again. That is only the same as a full upsert when the table
still holds what that date left, so `plan_load` uses it only when `loaded_partitions` (written in
the same transaction as the rows) proves it:

- `unchanged`: this exact partition of D (same files) was loaded already: nothing to send. A full
  upsert of it would change nothing either (newer-wins, replace-the-set and replace-the-date all
  make a reload of the same rows a no-op).
- `delta` (newer-wins marts only): the newest date loaded, B, is before D and the lake's dt=B is
  still the partition that was loaded. Every row of D equal to its row in B is then a no-op for
  the upsert (the table holds B's row or a newer one), so sending the others is enough.
- `full`: anything else (first load, an older date after a newer one, a re-transformed date, a
  base partition gone from the lake, or `load.mode=full` after someone edited the tables).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from core.lake import Lake
from jobs.datasets import Dataset, LoadKind
from jobs.fingerprint import FINGERPRINT, digest_of
from jobs.load.warehouse import loaded_partitions_query, missing_partitions_query

Mode = Literal["full", "delta", "unchanged"]


@dataclass(frozen=True)
class LoadPlan:
    mode: Mode
    why: str
    base: dt.date | None = None  # delta: the date whose rows the table holds


def partition_digest(lake: Lake, ds: Dataset, day: dt.date) -> str | None:
    """`digest_of` D's partition as the lake lists it now."""
    return digest_of(lake.list_files(ds.partition_rel_path(day.isoformat())))


def plan_load(cur: Any, schema: str, lake: Lake, ds: Dataset, day: dt.date, digest: str, mode: str = "auto",
              versions: LoadPlan | None = None) -> LoadPlan:
    """Decide from what the table took in before (run under the mart's lock: nothing moves meanwhile).
    `versions`: for a bridge, its parents' table's plan when the bridges may follow it
    (`bridges_follow`)."""
    if mode == "full":
        return LoadPlan("full", "load.mode=full")
    cur.execute(loaded_partitions_query(schema), {"mart": ds.name})
    loaded: dict[dt.date, str] = dict(cur.fetchall())
    if loaded.get(day) == digest:
        return LoadPlan("unchanged", f"this partition of dt={day} was loaded already")
    if ds.load is LoadKind.REPLACE_SET and versions is not None and versions.mode == "delta":
        return LoadPlan("delta", f"the sets of the games whose {ds.parents_versioned_by} row differs from "
                                 f"dt={versions.base}", base=versions.base)
    if ds.load is not LoadKind.UPSERT_NEWER:
        return LoadPlan("full", f"{ds.load} marts are loaded whole")
    if not loaded:
        return LoadPlan("full", "first load of this mart")
    latest = max(loaded)
    if latest >= day:
        return LoadPlan("full", f"dt={latest} was loaded already (on or after dt={day})")
    if partition_digest(lake, ds, latest) != loaded[latest]:
        return LoadPlan("full", f"the lake's dt={latest} is no longer the partition that was loaded")
    return LoadPlan("delta", f"rows that differ from dt={latest}, the last date loaded", base=latest)


def rows_not_in(previous: DataFrame, key: Sequence[str]) -> Callable[[DataFrame], DataFrame]:
    """`current -> rows of current with no identical row in previous` (for DataFrame.transform); both
    carry FINGERPRINT (`jobs.io.read_fingerprinted`), which the result keeps.

    Previous is reduced to its (key, fingerprint) pairs, read from the files when they store them,
    and broadcast; current is read once and looked up on its way through: nothing is shuffled.
    A changed row goes unseen only if its 64-bit hash equals its old one's: odds of 2^-64 per
    changed row. A fingerprint computed differently (another column list) only makes rows differ.
    """

    def changed(current: DataFrame) -> DataFrame:
        pairs = [*key, FINGERPRINT]
        return current.join(F.broadcast(previous.select(*pairs)), pairs, "left_anti")

    return changed


def bridges_follow(cur: Any, schema: str, versions: LoadPlan, bridges: Sequence[Dataset]) -> bool:
    """Whether the bridges of D may send only the sets of the games whose parents' row (the
    catalogue, loaded first) changed since its delta base B. A game's sets are part of its row, so
    an unchanged row has the sets the bridges hold, provided every bridge took in every date the
    catalogue took in up to B (a load that failed between the two would leave older sets)."""
    if versions.mode != "delta" or versions.base is None or not bridges:
        return False
    cur.execute(missing_partitions_query(schema), {"versions": bridges[0].parents_versioned_by, "base": versions.base,
                                                    "marts": [b.name for b in bridges]})
    return bool(cur.fetchone()[0] == 0)
