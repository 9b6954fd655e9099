"""`igdb-pipeline status`: a date x step table of what is done, from the ledger and the done markers."""

from __future__ import annotations

import datetime as dt

from core.days import days_between
from pipeline.ledger import STEPS
from pipeline.progress import StepState

REASON_WIDTH = 160


def status_range(states: dict[dt.date, dict[str, StepState]], start: dt.date | None, first: dt.date | None,
                 last: dt.date | None, yesterday: dt.date) -> tuple[dt.date, dt.date]:
    """Flags win; else from the configured start (or the earliest known date) to yesterday (or later known)."""
    known = sorted(states)
    low = first or start or (known[0] if known else yesterday)
    high = last or max([yesterday, *known[-1:]])
    return low, max(low, high)


def render_status(states: dict[dt.date, dict[str, StepState]], first: dt.date, last: dt.date) -> str:
    """One row per date; under a row, the reason of each failed step. Cells: done, failed, running,
    stale (done once, but an earlier step was redone since), missing (never ran)."""
    width = max(len(s) for s in STEPS) + 2
    lines = ["dt          " + "".join(f"{s:<{width}}" for s in STEPS) + "complete"]
    missing = StepState("missing")
    counts = {"complete": 0, "incomplete": 0}
    for day in days_between(first, last):
        row = states.get(day, {})
        cells = [row.get(s, missing) for s in STEPS]
        complete = all(c.status == "done" for c in cells)
        counts["complete" if complete else "incomplete"] += 1
        lines.append(f"{day}  " + "".join(f"{c.status:<{width}}" for c in cells) + ("yes" if complete else "no"))
        for step, cell in zip(STEPS, cells, strict=True):
            if cell.status == "failed" and cell.error:
                reason = " ".join(cell.error.split())
                lines.append(f"    {step} failed: {reason[:REASON_WIDTH]}{'...' if len(reason) > REASON_WIDTH else ''}")
    lines.append(f"{counts['complete']} date(s) complete, {counts['incomplete']} not "
                 f"(`igdb-pipeline run --catchup` runs them in order)")
    return "\n".join(lines)
