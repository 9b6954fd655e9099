"""Where incremental entities start: the stored watermark, and the window a date fetches.

The watermark only moves forward, and only after the partition it covers is published. It is
the lower of "newest updated_at landed" and "when the fetch started": a record updated while we
paged may have been passed already, and its updated_at is after the start, so the next run
(which starts at watermark minus the safety margin) picks it up.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

from ingestion.entities import LandingMode
from pipeline.lake import Lake

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


class WatermarkStore:
    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def _load_all(self) -> dict[str, Any]:
        text = self.lake.read_text(STATE_PATH)
        return json.loads(text) if text else {}

    def get(self, entity: str) -> EntityState:
        return EntityState(**self._load_all().get(entity, {}))

    def advance(self, entity: str, day: dt.date, mode: LandingMode, reached: int | None) -> EntityState:
        """Record a published partition; never moves the watermark or full-refresh date back."""
        state = self._load_all()
        old = EntityState(**state.get(entity, {}))
        watermark = old.watermark
        if reached is not None and (watermark is None or reached > watermark):
            watermark = reached
        last_full = old.last_full_refresh_dt
        if mode is LandingMode.FULL and (last_full is None or day.isoformat() > last_full):
            last_full = day.isoformat()
        new = EntityState(watermark, day.isoformat() if watermark != old.watermark else old.watermark_dt, last_full,
                          dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        if (new.watermark, new.last_full_refresh_dt) != (old.watermark, old.last_full_refresh_dt):
            state[entity] = asdict(new)
            self.lake.write_text(STATE_PATH, json.dumps(state, indent=2, sort_keys=True) + "\n")
            return new
        return old


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
