"""bench/report.py: the markdown rows, ratios, met / not met, "not run" for missing stages, and the PNG chart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from bench.report import render_report, stage_rows, write_chart

MACHINE = {"cores": "2", "cpu": "Test CPU", "ram": "8.0 GiB", "python": "3.11.9", "spark": "3.5.9",
           "os": "Linux x86_64"}
WHEN = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)

INGEST = {"games": 100000, "records": 900020, "fetch_seconds": 47.6, "records_per_s": 18908.0,
          "ceiling_records_per_s": 20000.0, "requests_per_s": 3.93, "ratio": 0.945, "ratio_goal": 0.9,
          "peak_rss_mb": 226.0, "rss_goal_mb": 300, "measured_at": "2026-11-24T07:53:00+00:00",
          "games_only": {"records": 100000, "fetch_seconds": 6.6, "ratio": 0.757},
          "single_page": {"ratio": 0.958, "ceiling_records_per_s": 2000.0},
          "sandbox_capacity": {"records_per_s": 406221.0}}
TRANSFORM = {"games": 350000, "spark_seconds": 133.45, "spark_process_seconds": 140.5, "duckdb_seconds": 13.92,
             "goal_seconds": 60, "goal_ratio": 2.0}
VALIDATE = {"games": 350000, "transform_seconds": 131.27, "validate_seconds": 89.14, "expectations": 488,
            "rows_validated": 12970793, "goal_ratio": 0.3}
LOAD = {"games": 350000, "rows": 4910927, "copy_seconds": 84.38, "upsert_seconds": 128.71,
        "copy_rows_per_second": 58198, "upsert_rows_per_second": 38154, "changed_games": 3369,
        "rerun_seconds": 61.86, "goal_ratio": 0.5, "goal_rerun_seconds": 10}
DAILY = {"games": 20000, "changed_games": 500, "driver_memory": "6g", "daily_seconds": 60.0,
         "daily_steps_seconds": {"ingest": 15.0, "transform": 20.0, "validate": 10.0, "load": 10.0},
         "daily_outside_steps_seconds": 5.0,
         "baseline_full_run_seconds": 120.0, "goal_seconds": 240, "daily_ingest_share": 0.25,
         "daily_ingest_records_per_s": 18700.0, "daily_from_transform_seconds": 60.0,
         "full_refresh_seconds": 84.0,
         "full_refresh_steps_seconds": {"transform": 40.0, "validate": 24.0, "load": 10.0},
         "full_refresh_deleted": 200, "full_refresh_goal_ratio": 1.5, "gc_seconds": 3.2, "gc_dates": 36,
         "gc_partitions_removed": 480, "gc_dates_removed": 6}


def table_row(markdown: str, stage: str) -> list[str]:
    """The cells of the results table's row for a stage."""
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|") and cells[0] == stage and len(cells) == 6:
            return cells
    raise AssertionError(f"no row for {stage!r} in:\n{markdown}")


def test_every_stage_has_a_row_with_its_ratio_and_verdict() -> None:
    results: dict[str, Any] = {"ingest": INGEST, "transform": TRANSFORM, "validate": VALIDATE, "load": LOAD,
                               "daily": DAILY}
    markdown = render_report(results, MACHINE, WHEN)

    assert table_row(markdown, "ingest")[3:] == ["0.945", "ratio ≥ 0.9, peak RSS ≤ 300 MB", "met"]  # 18908/20000
    assert "the games alone through multiquery: 100,000 in 6.6 s, ratio 0.757" in markdown
    assert "one page per request: ratio 0.958 of its 2,000 records/s ceiling" in markdown
    assert table_row(markdown, "transform")[3] == "9.59"  # 133.45 / 13.92
    assert table_row(markdown, "transform")[5] == "**not met**"
    assert table_row(markdown, "validate")[3] == "0.679"
    assert table_row(markdown, "validate")[5] == "**not met**"
    assert table_row(markdown, "load upsert")[3] == "0.656"  # 38154 / 58198
    assert table_row(markdown, "load upsert")[5] == "met"
    assert table_row(markdown, "load 1%-changed rerun")[3] == "0.481"  # 61.86 / 128.71
    assert table_row(markdown, "load 1%-changed rerun")[5] == "**not met**"
    daily = table_row(markdown, "daily end-to-end")
    assert daily[1].startswith("60.0 s for 500 changed of 20,000 games")
    assert daily[2].startswith("120.0 s")
    assert daily[3:] == ["0.5", "≤ 240 s wall, its ingest and Spark start-up included", "met"]
    refresh = table_row(markdown, "full-refresh day")
    assert refresh[1].startswith("84.0 s for a full refresh of 20,000 games with 200 deleted")
    assert refresh[2].startswith("60.0 s: the daily run") and refresh[3:] == ["1.4", "≤ 1.5 × the daily run", "met"]
    assert "gc over 36 dates (removed 480 partitions of 6 dates): 3.2 s" in markdown
    assert "**4 of 7 goals met**." in markdown
    assert "the day's ingest (2.8M popularity values through multiquery) is 25% of it, 18,700 records/s" in markdown


def test_header_names_the_date_and_the_machine() -> None:
    markdown = render_report({}, MACHINE, WHEN)
    assert "Rendered 2026-11-24 12:00 UTC" in markdown
    assert "2 cores (Test CPU), 8.0 GiB RAM, Linux x86_64; Python 3.11.9, Spark 3.5.9" in markdown


def test_missing_stages_are_shown_as_not_run() -> None:
    markdown = render_report({"ingest": INGEST}, MACHINE, WHEN)
    for stage in ("transform", "validate", "load upsert", "load 1%-changed rerun", "daily end-to-end",
                  "full-refresh day"):
        cells = table_row(markdown, stage)
        assert cells[1] == "not run" and cells[5] == "not run", cells
    assert table_row(markdown, "daily end-to-end")[4] == "≤ 240 s wall, its ingest and Spark start-up included"
    assert "**1 of 7 goals met**, 6 not run." in markdown
    older = render_report({"daily": {k: v for k, v in DAILY.items() if not k.startswith(("full_refresh", "gc_"))}},
                          MACHINE, WHEN)  # a result from before the full-refresh day was measured
    assert table_row(older, "full-refresh day")[1] == "not run"


def test_commands_reproduce_the_size_that_was_measured() -> None:
    rows = {r.stage: r for r in stage_rows({"ingest": INGEST, "daily": DAILY})}
    assert rows["ingest"].command == "make bench-ingest"  # the default size
    assert rows["daily end-to-end"].command == ".venv/bin/python -m bench.bench_daily --games 20000 --changed 500"
    assert rows["transform"].command == "make bench-transform"
    markdown = render_report({"ingest": INGEST}, MACHINE, WHEN)
    assert "| ingest | `make bench-ingest` | 2026-11-24 07:53 UTC |" in markdown
    assert "| transform | `make bench-transform` | not run |" in markdown


@pytest.mark.parametrize("results", [{}, {"ingest": INGEST, "load": LOAD, "daily": DAILY}], ids=["none", "some"])
def test_chart_is_a_png(tmp_path: Path, results: dict[str, Any]) -> None:
    path = tmp_path / "report.png"
    write_chart(stage_rows(results), path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert data[12:16] == b"IHDR" and int.from_bytes(data[16:20], "big") > 0 and data.endswith(b"IEND\xaeB`\x82")
