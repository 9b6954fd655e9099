"""Date ranges, with nothing else imported: the EMR submitters and the Airflow DAG use them too."""

from __future__ import annotations

import datetime as dt


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every date from first to last, both included (empty when last is before first)."""
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
