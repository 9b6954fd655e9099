"""Dates: parsing them strictly and walking ranges, with nothing heavy imported (the EMR submitters
and the Airflow DAG use them too)."""

from __future__ import annotations

import argparse
import datetime as dt
import re


def strict_date(text: str) -> dt.date:
    """YYYY-MM-DD only (Python 3.11 would also take 20261120, which a partition name must not)."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError("must be a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError("must be a date YYYY-MM-DD") from None


def parse_date(text: str) -> dt.date:
    """A --date flag: strict YYYY-MM-DD, or a usage error."""
    try:
        return strict_date(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every date from first to last, both included (empty when last is before first)."""
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
