"""`igdb-pipeline gc`: keep `retention.days` of the lake, and nothing a later run still reads.

Every date leaves raw, staging, quarantine, mart and report partitions; the catalogue alone is a
full copy a day. `gc` removes the partitions of dates older than `retention.days` before the date
it runs for (`--as-of`, default today), except:

* every partition of a date that is not done (failed, stale, half-run): its rerun reads them;
* the catalogue, dimensions, fact and reports of each date a later run builds on: the newest
  date with a catalogue before every date not done (and before the next one), and the last date
  loaded (the change guards and the load's delta compare with it);
* the done markers and `state/`, which are small and say what ran;
* a date whose run holds its run lock (it is skipped, and `gc` says so).

It also sweeps what killed writes left behind (`_tmp/` staged partitions, Spark's `_temporary`
and `.spark-staging-*`) once older than `retention.tmp_max_age_hours`. `--dry-run` lists what would
go and removes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from core.config import Settings
from core.database import RUN_LOCK_NAMESPACE, LockBusy, advisory_lock, connection, resolve_url
from core.lake import Lake, open_lake
from core.logs import event, log_context
from pipeline.progress import StepState, is_done

log = logging.getLogger(__name__)

LAYERS = ("raw", "staging", "quarantine", "marts", "reports")
# what a later date reads of the date it builds on: its catalogue, dimensions and fact, and the
# reports that say it passed validation
BASE_READS = ("marts/dim_", "marts/fct_game_popularity", "reports/transform", "reports/validation")
CATALOGUE = "marts/dim_games"


@dataclass
class GcPlan:
    """What one `gc` found: partitions by date (layer/dataset/dt=D), what it keeps and why."""

    as_of: dt.date
    cutoff: dt.date  # partitions of dates before this one may go
    remove: dict[dt.date, list[str]] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)  # an old partition kept -> why
    busy: list[dt.date] = field(default_factory=list)  # dates whose run held the lock
    leftovers: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def partitions(self) -> int:
        return sum(len(parts) for parts in self.remove.values())


def partitions_by_date(lake: Lake) -> dict[dt.date, list[str]]:
    """Every dt= partition of the lake's layers, by date (one LIST per dataset)."""
    found: dict[dt.date, list[str]] = {}
    for layer in LAYERS:
        for name in lake.list_dirs(layer):
            for part in lake.list_dirs(f"{layer}/{name}"):
                if not part.startswith("dt="):
                    continue
                try:
                    day = dt.date.fromisoformat(part[3:])
                except ValueError:
                    continue
                found.setdefault(day, []).append(f"{layer}/{name}/{part}")
    return found


def protected(partitions: Mapping[dt.date, list[str]], states: Mapping[dt.date, Mapping[str, StepState]],
              ) -> dict[str, str]:
    """Partition -> why it stays, whatever its age (pure: the lake's partitions and the dates' states)."""
    keep: dict[str, str] = {}
    not_done = sorted(d for d, steps in states.items() if not is_done(dict(steps)))
    for day in not_done:
        for part in partitions.get(day, []):
            keep[part] = f"dt={day} is not done: its rerun reads it"
    catalogues = sorted(d for d, parts in partitions.items() if any(p.startswith(f"{CATALOGUE}/") for p in parts))
    loaded = [d for d, steps in states.items() if steps.get("load", StepState("missing")).status == "done"]
    bases: dict[dt.date, str] = {}
    if catalogues:
        bases[catalogues[-1]] = "the newest catalogue: the next date builds on it"
    for day in not_done:
        earlier = [c for c in catalogues if c < day]
        if earlier:
            bases.setdefault(earlier[-1], f"dt={day} (not done) builds on it")
    if loaded:
        bases.setdefault(max(loaded), "the last date loaded: the next date's guards and load compare with it")
    for base, why in bases.items():
        for part in partitions.get(base, []):
            if part.startswith(BASE_READS):
                keep.setdefault(part, why)
    return keep


def plan_collection(lake: Lake, states: Mapping[dt.date, Mapping[str, StepState]], as_of: dt.date, days: int,
                    tmp_max_age: dt.timedelta) -> GcPlan:
    """What `gc` would remove as of a date, and what it keeps (no change to the lake)."""
    plan = GcPlan(as_of, as_of - dt.timedelta(days=days))
    partitions = partitions_by_date(lake)
    keep = protected(partitions, states)
    for day in sorted(d for d in partitions if d < plan.cutoff):
        gone = [p for p in partitions[day] if p not in keep]
        plan.kept |= {p: keep[p] for p in partitions[day] if p in keep}
        if gone:
            plan.remove[day] = gone
    plan.leftovers = lake.leftovers(tmp_max_age)
    return plan


def collect(settings: Settings, states: Mapping[dt.date, Mapping[str, StepState]], as_of: dt.date,
            dry_run: bool = False, lake: Lake | None = None) -> GcPlan:
    """Plan, then (unless `dry_run`) remove each old date's partitions under that date's run lock;
    a date whose run holds the lock is left for the next `gc`."""
    began = time.monotonic()
    lake = lake or open_lake(settings.lake_uri)
    with log_context(step="gc"):
        plan = plan_collection(lake, states, as_of, settings.retention_days,
                               dt.timedelta(hours=settings.retention_tmp_max_age_hours))
        if not dry_run:
            url = resolve_url(settings.database_url, settings.data_dir)
            with connection(url) as conn:
                conn.autocommit = True
                for day, parts in list(plan.remove.items()):
                    try:
                        with advisory_lock(conn, RUN_LOCK_NAMESPACE, day, "run"):
                            _delete(lake, parts)
                    except LockBusy:
                        plan.busy.append(day)
                        del plan.remove[day]
            _delete(lake, plan.leftovers)
        plan.seconds = round(time.monotonic() - began, 2)
        event(log, "gc dry run" if dry_run else "gc done", cutoff=plan.cutoff.isoformat(), dates=len(plan.remove),
              partitions=plan.partitions, kept=len(plan.kept), busy=[d.isoformat() for d in plan.busy],
              leftovers=len(plan.leftovers), seconds=plan.seconds)
    return plan


def _delete(lake: Lake, paths: Iterable[str]) -> None:
    for path in paths:
        lake.delete(path)


def collection_lines(plan: GcPlan, dry_run: bool) -> list[str]:
    """What an operator reads: per date what goes, what stays and why, the leftovers."""
    verb = "would remove" if dry_run else "removed"
    lines = [f"gc as of {plan.as_of}: partitions before {plan.cutoff} {verb}: {plan.partitions} "
             f"of {len(plan.remove)} date(s); {len(plan.kept)} kept; {len(plan.leftovers)} leftover(s) of killed "
             f"writes {verb}"]
    for day, parts in sorted(plan.remove.items()):
        lines.append(f"  dt={day}: {verb} {len(parts)} partition(s)")
    reasons: dict[str, list[str]] = {}
    for part, why in sorted(plan.kept.items()):
        reasons.setdefault(why, []).append(part)
    for why, parts in reasons.items():
        lines.append(f"  kept {len(parts)} partition(s): {why} (e.g. {parts[0]})")
    lines += [f"  dt={day}: its run holds the lock, left for the next gc" for day in plan.busy]
    lines += [f"  leftover {verb}: {path}" for path in plan.leftovers]
    return lines
