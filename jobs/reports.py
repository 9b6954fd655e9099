"""Where each step's report of a date lives in the lake, and what a date's reports say about it.

The transform's summary, the validation summary (and its HTML page) and the schema-drift summary
are JSON files under `reports/<kind>/dt=D/`. A date has *passed validation* when its last complete
validation passed and validated the transform output that is there now: the load requires it of
the date it loads, and the transform of a later date requires it of the catalogue it builds on.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from core.lake import Lake

TRANSFORM_REPORT = "reports/transform/dt={day}/summary.json"
VALIDATION_DIR = "reports/validation/dt={day}"


def report_path(template: str, day: dt.date) -> str:
    return template.format(day=day.isoformat())


def read_report(lake: Lake, template: str, day: dt.date) -> dict[str, Any] | None:
    """A date's report as data, None when it was never written."""
    text = lake.read_text(report_path(template, day))
    return None if text is None else dict(json.loads(text))


def validation_summary(lake: Lake, day: dt.date) -> dict[str, Any] | None:
    return read_report(lake, f"{VALIDATION_DIR}/summary.json", day)


def validation_verdict(lake: Lake, day: dt.date, summary: dict[str, Any] | None = None) -> str | None:
    """None when D passed a complete validation of its current transform output; else why not,
    in words that tell the operator what to run."""
    summary = validation_summary(lake, day) if summary is None else summary
    if summary is None:
        return f"dt={day} has not been validated: run `igdb-pipeline validate --date {day}` first"
    if not summary.get("passed"):
        return (f"dt={day} failed validation ({summary.get('critical_failures')} critical failure(s)); see "
                f"{report_path(VALIDATION_DIR, day)}/index.html")
    if not summary.get("complete"):
        return (f"the last validation of dt={day} was partial (--only): run a full "
                f"`igdb-pipeline validate --date {day}`")
    transform = read_report(lake, TRANSFORM_REPORT, day) or {}
    if transform.get("finished_at") != summary.get("transform_finished_at"):
        return f"dt={day} was transformed again after its validation: validate {day} again first"
    return None
