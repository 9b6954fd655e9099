"""Where incremental entities start: the stored watermark, and the window a date fetches.

The watermark only moves forward, and only after the partition it covers is published. It is
the lower of "newest updated_at landed" and "when the fetch started": a record updated while we
paged may have been passed already, and its updated_at is after the start, so the next run
(which starts at watermark minus the safety margin) picks it up.

All entities share one state file, so `advance` is a read-modify-write under a compare-and-swap
(`Lake.write_if`): two ingests finishing at once (threads, processes or hosts) never drop each
other's update.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from core.entities import LandingMode
from core.errors import IngestError
from core.lake import Lake

STATE_PATH = "state/watermarks.json"


@dataclass(frozen=True)
class EntityState:
    watermark: int | None = None  # epoch seconds of updated_at reached
    watermark_dt: str | None = None  # the date whose ingest set it
    last_full_refresh_dt: str | None = None
    written_at: str | None = None


@dataclass(frozen=True)
class Window:
    mode: LandingMode
    since: int | None  # fetch updated_at >= since; None: everything

    def where(self) -> str | None:
        return None if self.since is None else f"updated_at >= {self.since}"


class WatermarkConflict(IngestError):
    """Others kept changing the state file faster than this advance could land its update."""


def _advanced(old: EntityState, day: dt.date, mode: LandingMode, reached: int | None) -> EntityState:
    """The state after publishing `day` (`old` itself when nothing moves): the watermark and the
    last full refresh date only move forward, so an older date landed later cannot pull them back."""
    watermark = old.watermark
    if reached is not None and (watermark is None or reached > watermark):
        watermark = reached
    last_full = old.last_full_refresh_dt
    if mode is LandingMode.FULL and (last_full is None or day.isoformat() > last_full):
        last_full = day.isoformat()
    if (watermark, last_full) == (old.watermark, old.last_full_refresh_dt):
        return old
    return EntityState(watermark, day.isoformat() if watermark != old.watermark else old.watermark_dt, last_full,
                       dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


def _parse_state(data: bytes | None) -> dict[str, Any]:
    return json.loads(data) if data else {}


def _encode(state: dict[str, Any]) -> bytes:
    return (json.dumps(state, indent=2, sort_keys=True) + "\n").encode("utf-8")


class WatermarkStore:
    max_attempts = 20  # compare-and-swap rounds before giving up; each lost round means another writer won

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def _load_all(self) -> dict[str, Any]:
        return _parse_state(self.lake.read_bytes(STATE_PATH))

    def get(self, entity: str) -> EntityState:
        return EntityState(**self._load_all().get(entity, {}))

    def advance(self, entity: str, day: dt.date, mode: LandingMode, reached: int | None) -> EntityState:
        """Record a published partition; never moves the watermark or full-refresh date back.

        Re-reads and recomputes after a conflict instead of writing over a file that changed
        since it was read: that blind write would drop the other writer's entity or date."""
        for attempt in range(1, self.max_attempts + 1):
            data, version = self.lake.read_versioned(STATE_PATH)
            state = _parse_state(data)
            old = EntityState(**state.get(entity, {}))
            new = _advanced(old, day, mode, reached)
            if new == old:
                return old
            state[entity] = asdict(new)
            if self.lake.write_if(STATE_PATH, _encode(state), version):
                return new
            # jittered and growing (to 1 s), so writers that collided spread out instead of colliding again
            time.sleep(random.uniform(0, min(1.0, 0.005 * 2 ** attempt)))
        raise WatermarkConflict(f"{entity}: {STATE_PATH} kept changing; watermark of {day} not recorded "
                                f"after {self.max_attempts} attempts (rerun the date)")


def plan_window(day: dt.date, state: EntityState, previous: dict[str, Any] | None, *, force_full: bool,
                margin_seconds: int, full_refresh_days: int) -> Window:
    """Which records of an incremental entity date `day` fetches.

    A rerun of a date reuses the window that date used before (from its manifest), so the
    rerun lands the same records instead of a thinner slice past today's watermark.
    """
    if force_full:
        return Window(LandingMode.FULL, None)
    if previous is not None and previous.get("mode") in (LandingMode.FULL.value, LandingMode.INCREMENTAL.value):
        window = previous.get("window") or {}
        return Window(LandingMode(previous["mode"]), window.get("since"))
    if state.watermark is None or state.last_full_refresh_dt is None:
        return Window(LandingMode.FULL, None)
    age = (day - dt.date.fromisoformat(state.last_full_refresh_dt)).days
    if age >= full_refresh_days:
        return Window(LandingMode.FULL, None)
    return Window(LandingMode.INCREMENTAL, max(0, state.watermark - margin_seconds))
