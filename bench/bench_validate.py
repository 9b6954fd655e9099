"""Validation time of every output of the 350k-game run, divided by the transform time of the same data.

    make bench-validate             # N=350000 games (the raw lake is generated once, then cached)
    python -m bench.bench_validate --games 50000

Measured as the pipeline runs the gate: `igdb-pipeline run --from-step transform --to-step
validate` in one process on local[2], so the gate follows the transform in the same JVM, as in
`make run`, the EMR `run` step and the daily run (dbt's tests, the figure the goal compares with,
also run after the models in one invocation). The figures are the steps' own times from their
reports. Then the gate again, alone, in a fresh process (`igdb-pipeline validate`: an operator
re-checking a date), shown beside it: there the cold JVM compiles every query's code for the
first time, and then the reference engine (`validate --engine gx`: GX's own Spark engine for every
expectation) the same way, with the factor between the two. Goal: validate / transform <= 0.3 (the dbt
tests of the pipeline this replaces took longer than its models).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import CLI, OUT, bench_database, run_env, write_result
from bench.raw_lake import cached_raw_lake
from jobs.validate.run import verdicts

DAY = dt.date(2026, 11, 20)
GOAL = 0.3
SCHEMA = "bench_validate"


def _cli(args: list[str], lake: Path, env: dict[str, str], driver_memory: str) -> float:
    """One `igdb-pipeline` command in its own process; its wall time including JVM start-up."""
    started = time.monotonic()
    proc = subprocess.run([*CLI, *args, "--date", str(DAY), "--lake", str(lake), "--set", "spark.master=local[2]",
                           "--set", f"spark.driver_memory={driver_memory}"], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.monotonic() - started


def _report(lake: Path, report: str) -> dict:
    """A step's summary.json for DAY: its own seconds and counts."""
    summary: dict = json.loads((lake / f"reports/{report}/dt={DAY}/summary.json").read_text())
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=350_000)
    parser.add_argument("--driver-memory", default="6g")
    args = parser.parse_args()

    raw, counts = cached_raw_lake(args.games, DAY, OUT / "lakes")
    print(f"bench-validate: {counts['games']} games, {counts['popularity_primitives']} popularity rows")
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        shutil.copytree(raw / "raw", lake / "raw")
        with bench_database(Path(tmp)) as url:  # the steps' ledger rows, apart from the user's own
            env = run_env(url, Path(tmp) / "data", SCHEMA)
            run_process = _cli(["run", "--from-step", "transform", "--to-step", "validate"], lake, env,
                               args.driver_memory)
            transform, in_run = _report(lake, "transform"), _report(lake, "validation")
            alone_process = _cli(["validate"], lake, env, args.driver_memory)
            alone = _report(lake, "validation")
            # the reference engine, alone in a fresh process like the line above: GX's own Spark engine
            reference_process = _cli(["validate", "--engine", "gx"], lake, env, args.driver_memory)
            reference = _report(lake, "validation")
            agree = verdicts(alone) == verdicts(reference)

    ratio = in_run["seconds"] / transform["seconds"]
    result = {
        "games": counts["games"], "popularity_rows": counts["popularity_primitives"],
        "transform_seconds": transform["seconds"], "validate_seconds": in_run["seconds"],
        "run_process_seconds": round(run_process, 1),
        "alone_validate_seconds": alone["seconds"], "alone_process_seconds": round(alone_process, 1),
        "ratio_alone": round(alone["seconds"] / transform["seconds"], 3),
        "expectations": in_run["expectations"], "rows_validated": sum(in_run["rows"].values()),
        "ratio_validate_over_transform": round(ratio, 3), "goal_ratio": GOAL,
        "docs_seconds": in_run.get("docs_seconds"), "alone_docs_seconds": alone.get("docs_seconds"),
        "ratio_step_over_transform": round((in_run["seconds"] + in_run.get("docs_seconds", 0))
                                           / transform["seconds"], 3),
        "gx_engine_seconds": reference["seconds"], "gx_engine_process_seconds": round(reference_process, 1),
        "ratio_gx_engine_over_fast": round(reference["seconds"] / alone["seconds"], 2),
        "engines_agree": agree,
    }
    print(f"  transform: {transform['seconds']:.1f}s; then, in the same process, validate: {in_run['seconds']:.1f}s "
          f"({run_process:.1f}s for the whole run with JVM start-up), "
          f"{in_run['expectations']} expectations over {result['rows_validated']} rows")
    print(f"  ratio validate/transform = {ratio:.2f} (goal <= {GOAL})")
    print(f"  validate alone in a fresh process: {alone['seconds']:.1f}s ({alone_process:.1f}s with JVM start-up and "
          f"the GX import), ratio {result['ratio_alone']:.2f}")
    print(f"  then GX's Data Docs and stored results: {in_run.get('docs_seconds')}s more (the lake's first gate: "
          f"the GX project is created), the whole step {result['ratio_step_over_transform']:.2f} of the transform; "
          f"the next gate of the same lake (alone, above) {alone.get('docs_seconds')}s more")
    print(f"  the reference engine (--engine gx) alone: {reference['seconds']:.1f}s, "
          f"{result['ratio_gx_engine_over_fast']:.1f}x the fast engine alone; same verdict and count for every "
          f"expectation: {agree}")
    print(f"  written to {write_result('validate', result)}")


if __name__ == "__main__":
    main()
