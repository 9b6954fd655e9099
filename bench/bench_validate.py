"""Validation time of every output of the 350k-game run, divided by the transform time of the same data.

    make bench-validate             # N=350000 games (the raw lake is generated once, then cached)
    python -m bench.bench_validate --games 50000

Runs `igdb-pipeline transform` and then `igdb-pipeline validate` on the same lake, each in its
own process on local[2], and compares the steps' own times (from their reports; JVM start-up
and the Great Expectations import shown apart). Goal: validate / transform <= 0.3 (the dbt tests
of the pipeline this replaces took longer than its models).
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

from bench.common import CLI, OUT, write_result
from bench.raw_lake import cached_raw_lake

DAY = dt.date(2026, 11, 20)
GOAL = 0.3


def _step(name: str, lake: Path, driver_memory: str) -> float:
    """Run one step in its own process; its wall time including JVM start-up."""
    started = time.monotonic()
    proc = subprocess.run([*CLI, name, "--date", str(DAY), "--lake", str(lake), "--set", "spark.master=local[2]",
                           "--set", f"spark.driver_memory={driver_memory}"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.monotonic() - started


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
        transform_process = _step("transform", lake, args.driver_memory)
        validate_process = _step("validate", lake, args.driver_memory)
        transform = json.loads((lake / f"reports/transform/dt={DAY}/summary.json").read_text())
        validation = json.loads((lake / f"reports/validation/dt={DAY}/summary.json").read_text())

    ratio = validation["seconds"] / transform["seconds"]
    result = {
        "games": counts["games"], "popularity_rows": counts["popularity_primitives"],
        "transform_seconds": transform["seconds"], "validate_seconds": validation["seconds"],
        "transform_process_seconds": round(transform_process, 1),
        "validate_process_seconds": round(validate_process, 1),
        "expectations": validation["expectations"], "rows_validated": sum(validation["rows"].values()),
        "ratio_validate_over_transform": round(ratio, 3), "goal_ratio": GOAL,
    }
    print(f"  transform: {transform['seconds']:.1f}s ({transform_process:.1f}s with JVM start-up)")
    print(f"  validate:  {validation['seconds']:.1f}s ({validate_process:.1f}s with JVM start-up and GX import), "
          f"{validation['expectations']} expectations over {result['rows_validated']} rows")
    print(f"  ratio validate/transform = {ratio:.2f} (goal <= {GOAL})")
    print(f"  written to {write_result('validate', result)}")


if __name__ == "__main__":
    main()
