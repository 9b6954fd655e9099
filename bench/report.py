"""bench/REPORT.md and bench/report.png from the benchmark results in bench/out/*.json.

    make bench               # every benchmark, then this
    python -m bench.report   # render again from the results there are

One row per stage: the measured figure, the baseline measured in the same run, their ratio, the
goal and whether it is met, and the command that reproduces the row. A stage whose result file
is missing is shown as "not run", so a report never looks complete when it is not. The chart
puts each stage's time next to its baseline's and its goal, all in seconds.

`stage_rows` and `render_report` are pure functions of the results (the tests call them);
`main` reads the files, looks at the machine and writes the two outputs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.common import OUT

HERE = Path(__file__).resolve().parent
MET_COLOURS = {True: "tab:green", False: "tab:red"}
BASELINE_COLOUR = "lightgrey"
Result = Mapping[str, Any]


@dataclass(frozen=True)
class Row:
    """One stage of the report; `met` None means not run."""

    stage: str
    command: str
    goal: str
    measured: str = "not run"
    baseline: str = ""
    ratio: float | None = None
    met: bool | None = None
    seconds: float | None = None  # the chart: measured time, its baseline's, and the goal, in seconds
    baseline_seconds: float | None = None
    goal_seconds: float | None = None
    measured_at: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Stage:
    name: str
    source: str  # bench/out/<source>.json
    module: str
    defaults: tuple[tuple[str, str, object], ...]  # (flag, result key, default): the command's arguments
    goal: str  # shown when the stage did not run; a run states its own goal from its result
    build: Callable[[Result], Row]


def _steps(steps: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in steps.items())


def _ingest(r: Result) -> Row:
    ceiling, goal, rss_goal = r["ceiling_records_per_s"], r.get("ratio_goal", 0.9), r.get("rss_goal_mb", 300)
    games = r.get("games_only")
    single = r.get("single_page")
    note = "; ".join(part for part in (
        f"the games alone through multiquery: {games['records']:,} in {games['fetch_seconds']:.1f} s, ratio "
        f"{games['ratio']:.3f} (a 5 s fetch: the planning request and the last answer weigh on it)" if games else "",
        f"one page per request: ratio {single['ratio']:.3f} of its {single['ceiling_records_per_s']:,.0f} records/s "
        f"ceiling" if single else "",
        f"the sandbox served {r['sandbox_capacity']['records_per_s']:,.0f} records/s on its own"
        if "sandbox_capacity" in r else "") if part) or None
    return Row(
        "ingest", "", f"ratio ≥ {goal:g}, peak RSS ≤ {rss_goal} MB",
        measured=f"{r['records_per_s']:,.0f} records/s ({r['records']:,} records of a {r['games']:,}-game "
                 f"catalogue's day in {r['fetch_seconds']:.1f} s, {r.get('requests_per_s', 0):.2f} requests/s), "
                 f"peak RSS {r['peak_rss_mb']:.0f} MB",
        baseline=f"{ceiling:,.0f} records/s: the API's ceiling (4 req/s × 10 sub-queries × 500 records)",
        ratio=r["records_per_s"] / ceiling, met=r["ratio"] >= goal and r["peak_rss_mb"] <= rss_goal,
        seconds=r["fetch_seconds"], baseline_seconds=r["records"] / ceiling,
        goal_seconds=r["records"] / (ceiling * goal), note=note)


def _transform(r: Result) -> Row:
    goal_s, goal_ratio = r.get("goal_seconds", 60), r.get("goal_ratio", 2.0)
    ratio = r["spark_seconds"] / r["duckdb_seconds"]
    return Row(
        "transform", "", f"≤ {goal_s} s and ratio ≤ {goal_ratio:g}",
        measured=f"{r['spark_seconds']:.1f} s Spark for {r['games']:,} games "
                 f"({r['spark_process_seconds']:.0f} s with JVM start-up)",
        baseline=f"{r['duckdb_seconds']:.1f} s: DuckDB doing the same work",
        ratio=ratio, met=r["spark_seconds"] <= goal_s and ratio <= goal_ratio,
        seconds=r["spark_seconds"], baseline_seconds=r["duckdb_seconds"],
        goal_seconds=min(goal_s, goal_ratio * r["duckdb_seconds"]))


def _validate(r: Result) -> Row:
    goal = r.get("goal_ratio", 0.3)
    ratio = r["validate_seconds"] / r["transform_seconds"]
    return Row(
        "validate", "", f"ratio ≤ {goal:g}",
        measured=f"{r['validate_seconds']:.1f} s for {r['expectations']} expectations over "
                 f"{r['rows_validated']:,} rows ({r['games']:,} games), after the transform in one run"
                 + (f"; alone in a fresh process {r['alone_validate_seconds']:.1f} s (ratio {r['ratio_alone']:.2f})"
                    if "alone_validate_seconds" in r else "")
                 + (f"; GX project + Data Docs {r['docs_seconds']:.1f} s more on the lake's first gate "
                    f"(step {r['ratio_step_over_transform']:.2f}), {r.get('alone_docs_seconds') or 0:.1f} s on the next"
                    if r.get("docs_seconds") is not None else "")
                 + (f"; reference engine `--engine gx` alone {r['gx_engine_seconds']:.1f} s "
                    f"({r['ratio_gx_engine_over_fast']:.1f}x, same verdicts: {r['engines_agree']})"
                    if "gx_engine_seconds" in r else ""),
        baseline=f"{r['transform_seconds']:.1f} s: the transform of the same data",
        ratio=ratio, met=ratio <= goal, seconds=r["validate_seconds"], baseline_seconds=r["transform_seconds"],
        goal_seconds=goal * r["transform_seconds"])


def _load_upsert(r: Result) -> Row:
    goal = r.get("goal_ratio", 0.5)
    ratio = r["upsert_rows_per_second"] / r["copy_rows_per_second"]
    return Row(
        "load upsert", "", f"ratio ≥ {goal:g}",
        measured=f"{r['upsert_rows_per_second']:,} rows/s ({r['rows']:,} rows of {r['games']:,} games "
                 f"in {r['upsert_seconds']:.1f} s)",
        baseline=f"{r['copy_rows_per_second']:,} rows/s: plain COPY of the same rows ({r['copy_seconds']:.1f} s)",
        ratio=ratio, met=ratio >= goal, seconds=r["upsert_seconds"], baseline_seconds=r["copy_seconds"],
        goal_seconds=r["copy_seconds"] / goal)


def _load_rerun(r: Result) -> Row:
    goal = r.get("goal_rerun_seconds", 10)
    return Row(
        "load 1%-changed rerun", "", f"≤ {goal} s",
        measured=f"{r['rerun_seconds']:.1f} s ({r['changed_games']:,} of {r['games']:,} games changed)",
        baseline=f"{r['upsert_seconds']:.1f} s: the first load of the same marts",
        ratio=r["rerun_seconds"] / r["upsert_seconds"], met=r["rerun_seconds"] <= goal,
        seconds=r["rerun_seconds"], baseline_seconds=r["upsert_seconds"], goal_seconds=goal)


def _daily(r: Result) -> Row:
    goal = r.get("goal_seconds", 240)
    share = r.get("daily_ingest_share")
    note = (f"the day's ingest (2.8M popularity values through multiquery) is {100 * share:.0f}% of it, "
            f"{r['daily_ingest_records_per_s']:,.0f} records/s") if share is not None else None
    return Row(
        "daily end-to-end", "", f"≤ {goal} s wall, its ingest and Spark start-up included",
        measured=f"{r['daily_seconds']:.1f} s for {r['changed_games']:,} changed of {r['games']:,} games "
                 f"({_steps(r['daily_steps_seconds'])}, {r['daily_outside_steps_seconds']:.1f} s outside the steps)",
        baseline=f"{r['baseline_full_run_seconds']:.1f} s: the full run of the catalogue the day before, "
                 "from transform on",
        ratio=r["daily_seconds"] / r["baseline_full_run_seconds"], met=r["daily_seconds"] <= goal,
        seconds=r["daily_seconds"], baseline_seconds=r["baseline_full_run_seconds"], goal_seconds=goal, note=note)


def _full_refresh_day(r: Result) -> Row:
    goal = r.get("full_refresh_goal_ratio", 1.5)
    if "full_refresh_seconds" not in r:
        return Row("full-refresh day", "", f"≤ {goal} × the daily run")
    note = (f"gc over {r['gc_dates']} dates (removed {r['gc_partitions_removed']:,} partitions of "
            f"{r['gc_dates_removed']} dates): {r['gc_seconds']:.1f} s as a process") if "gc_seconds" in r else None
    daily = r.get("daily_from_transform_seconds", r["daily_seconds"])  # both from transform on
    ratio = r["full_refresh_seconds"] / daily
    return Row(
        "full-refresh day", "", f"≤ {goal} × the daily run",
        measured=f"{r['full_refresh_seconds']:.1f} s for a full refresh of {r['games']:,} games with "
                 f"{r['full_refresh_deleted']:,} deleted ({_steps(r['full_refresh_steps_seconds'])})",
        baseline=f"{daily:.1f} s: the daily run the day before from transform on, in the same benchmark",
        ratio=ratio, met=ratio <= goal, seconds=r["full_refresh_seconds"], baseline_seconds=daily,
        goal_seconds=goal * daily, note=note)


STAGES: tuple[Stage, ...] = (
    Stage("ingest", "ingest", "bench_ingest", (("--games", "games", 100_000),), "ratio ≥ 0.9, peak RSS ≤ 300 MB",
          _ingest),
    Stage("transform", "transform", "bench_transform", (("--games", "games", 350_000),),
          "≤ 60 s and ratio ≤ 2", _transform),
    Stage("validate", "validate", "bench_validate", (("--games", "games", 350_000),), "ratio ≤ 0.3", _validate),
    Stage("load upsert", "load", "bench_load", (("--games", "games", 350_000),), "ratio ≥ 0.5", _load_upsert),
    Stage("load 1%-changed rerun", "load", "bench_load", (("--games", "games", 350_000),), "≤ 10 s", _load_rerun),
    Stage("daily end-to-end", "daily", "bench_daily",
          (("--games", "games", 350_000), ("--changed", "changed_games", 2_000),
           ("--driver-memory", "driver_memory", "6g")),
          "≤ 240 s wall, its ingest and Spark start-up included", _daily),
    Stage("full-refresh day", "daily", "bench_daily",
          (("--games", "games", 350_000), ("--changed", "changed_games", 2_000),
           ("--driver-memory", "driver_memory", "6g")),
          "≤ 1.5 × the daily run", _full_refresh_day),
)


def command(stage: Stage, result: Result | None) -> str:
    """`make bench-<x>` at the defaults; otherwise the module with the arguments the result was measured with."""
    make = f"make bench-{stage.module.removeprefix('bench_')}"
    if result is None:
        return make
    changed = [f"{flag} {result[key]}" for flag, key, default in stage.defaults if result.get(key, default) != default]
    return " ".join([f".venv/bin/python -m bench.{stage.module}", *changed]) if changed else make


def stage_rows(results: Mapping[str, Result]) -> list[Row]:
    """Every stage, in order; the ones whose result is missing as not run."""
    rows = []
    for stage in STAGES:
        result = results.get(stage.source)
        if result is None:
            rows.append(Row(stage.name, command(stage, None), stage.goal))
            continue
        row = stage.build(result)
        rows.append(replace(row, stage=stage.name, command=command(stage, result),
                            measured_at=result.get("measured_at")))
    return rows


def _met(row: Row) -> str:
    return "not run" if row.met is None else "met" if row.met else "**not met**"


def _when(stamp: str | None) -> str:
    return dt.datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M UTC") if stamp else "unknown"


def render_report(results: Mapping[str, Result], machine: Mapping[str, str], rendered_at: dt.datetime,
                  chart: str | None = "report.png") -> str:
    """The markdown of bench/REPORT.md."""
    rows = stage_rows(results)
    run = [r for r in rows if r.met is not None]
    lines = [
        "# Benchmark report",
        "",
        f"Rendered {rendered_at:%Y-%m-%d %H:%M} UTC by `python -m bench.report` from `bench/out/*.json` "
        "(`make bench` runs every benchmark, then this).",
        f"Machine: {machine.get('cores', '?')} cores ({machine.get('cpu', 'unknown CPU')}), "
        f"{machine.get('ram', '?')} RAM, {machine.get('os', '?')}; Python {machine.get('python', '?')}, "
        f"Spark {machine.get('spark', '?')}.",
        "",
        "Ratio = measured ÷ baseline; the baseline is measured in the same run as the figure "
        "(for ingest it is the API's rate ceiling).",
        "",
        "| stage | measured | baseline | ratio | goal | met |",
        "|---|---|---|---:|---|---|",
    ]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.3g}"
        lines.append(f"| {row.stage} | {row.measured} | {row.baseline} | {ratio} | {row.goal} | {_met(row)} |")
    lines += ["", f"**{sum(1 for r in run if r.met)} of {len(rows)} goals met**"
              + (f", {len(rows) - len(run)} not run." if len(run) < len(rows) else ".")]
    notes = [row.note for row in rows if row.note]
    if notes:
        lines += [""] + [f"* {note}" for note in notes]
    if chart:
        lines += ["", f"![time of each stage against its baseline and goal]({chart})"]
    lines += ["", "## Reproduce", "", "| stage | command | measured at |", "|---|---|---|"]
    lines += [f"| {row.stage} | `{row.command}` | {_when(row.measured_at) if row.met is not None else 'not run'} |"
              for row in rows]
    return "\n".join(lines) + "\n"


def write_chart(rows: Sequence[Row], path: Path) -> None:
    """Grouped bars in seconds: each stage's time (green met, red not), its baseline, its goal as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(11, 5.5))
    width = 0.38
    for i, row in enumerate(rows):
        if row.seconds is None:
            ax.text(i, 0, "not run", ha="center", va="bottom", color="grey")
            continue
        bar = ax.bar(i - width / 2, row.seconds, width, color=MET_COLOURS[bool(row.met)])
        ax.bar_label(bar, fmt="%.0f s", fontsize=8)
        if row.baseline_seconds is not None:
            ax.bar_label(ax.bar(i + width / 2, row.baseline_seconds, width, color=BASELINE_COLOUR),
                         fmt="%.0f s", fontsize=8)
        if row.goal_seconds is not None:
            ax.hlines(row.goal_seconds, i - width, i + width, colors="black", linestyles="dashed")
    ax.set_xticks(range(len(rows)), [r.stage.replace(" ", "\n", 1) for r in rows], fontsize=9)
    ax.set_ylabel("seconds")
    ax.set_title("Time of each benchmark stage against its baseline (same run) and its goal")
    ax.legend(handles=[Patch(color=MET_COLOURS[True], label="measured, goal met"),
                       Patch(color=MET_COLOURS[False], label="measured, goal not met"),
                       Patch(color=BASELINE_COLOUR, label="baseline"),
                       Line2D([], [], color="black", linestyle="dashed", label="goal, in seconds")],
              loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_results(folder: Path) -> dict[str, dict[str, Any]]:
    """Every <name>.json of the results folder; one written before results were stamped is dated by its file."""
    results = {}
    for path in sorted(folder.glob("*.json")):
        result = json.loads(path.read_text())
        written = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        result.setdefault("measured_at", written.isoformat(timespec="seconds"))
        results[path.stem] = result
    return results


def machine_info() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        spark = version("pyspark")
    except PackageNotFoundError:
        spark = "not installed"
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cores": str(os.cpu_count()), "cpu": cpu, "ram": f"{ram:.1f} GiB", "python": platform.python_version(),
            "spark": spark, "os": f"{platform.system()} {platform.machine()}"}


def main() -> None:
    results = read_results(OUT)
    (HERE / "REPORT.md").write_text(render_report(results, machine_info(), dt.datetime.now(dt.UTC)),
                                    encoding="utf-8")
    rows = stage_rows(results)
    write_chart(rows, HERE / "report.png")
    for row in rows:
        ratio = "" if row.ratio is None else f", ratio {row.ratio:.3g}"
        print(f"  {row.stage:<24} {_met(row).strip('*'):<8} {row.measured}{ratio}")
    print(f"written to {HERE / 'REPORT.md'} and {HERE / 'report.png'}")


if __name__ == "__main__":
    main()
