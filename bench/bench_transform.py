"""Spark transform time against DuckDB doing the same work on the same raw files.

    make bench-transform            # N=350000 games (the raw lake is generated once, then cached)
    python -m bench.bench_transform --games 50000

Spark runs `igdb-pipeline transform` on local[2] in its own process (flatten, quarantine checks,
bridges, dedupe, marts, parquet writes); its figure is the step's own time (JVM start-up shown
apart). DuckDB runs bench/duckdb_transform.py with 2 threads. Goals: Spark <= 60 s and
<= 2.0x DuckDB (the dbt + DuckDB pipeline this replaces took 600 s on 345k games).
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

from bench import duckdb_transform
from bench.common import CLI, OUT, write_result
from bench.raw_lake import cached_raw_lake

DAY = dt.date(2026, 11, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=350_000)
    parser.add_argument("--driver-memory", default="6g")
    args = parser.parse_args()

    started = time.monotonic()
    raw, counts = cached_raw_lake(args.games, DAY, OUT / "lakes")
    print(f"bench-transform: {counts['games']} games, {counts['popularity_primitives']} popularity rows "
          f"(raw lake ready in {time.monotonic() - started:.0f}s: {raw})")
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        shutil.copytree(raw / "raw", lake / "raw")
        env_cmd = [*CLI, "transform", "--date", str(DAY), "--lake", str(lake),
                   "--set", f"spark.driver_memory={args.driver_memory}", "--set", "spark.master=local[2]"]
        t0 = time.monotonic()
        proc = subprocess.run(env_cmd, capture_output=True, text=True)
        spark_process = time.monotonic() - t0
        if proc.returncode != 0:
            raise SystemExit(f"spark transform failed:\n{proc.stderr[-3000:]}")
        report = json.loads((lake / f"reports/transform/dt={DAY}/summary.json").read_text())
        spark_seconds = report["seconds"]

        t0 = time.monotonic()
        duck_counts = duckdb_transform.run(raw, Path(tmp) / "duckdb", DAY)
        duck_seconds = time.monotonic() - t0

    for table in ("games", "popularity_primitives", "dim_games", "game_platforms", "fct_game_popularity"):
        entity = report["entities"].get(table)
        spark_rows = entity["staged"] if entity else report["rows"][table]
        if spark_rows != duck_counts[table]:
            raise SystemExit(f"Spark and DuckDB disagree on {table}: {spark_rows} vs {duck_counts[table]}")
    ratio = spark_seconds / duck_seconds
    result = {
        "games": counts["games"], "popularity_rows": counts["popularity_primitives"],
        "spark_seconds": spark_seconds, "spark_process_seconds": round(spark_process, 1),
        "duckdb_seconds": round(duck_seconds, 2), "ratio_spark_over_duckdb": round(ratio, 2),
        "games_per_second": round(counts["games"] / spark_seconds), "goal_seconds": 60, "goal_ratio": 2.0,
    }
    print(f"  spark transform: {spark_seconds:.1f}s ({spark_process:.1f}s with JVM start-up), "
          f"{result['games_per_second']} games/s")
    print(f"  duckdb same work: {duck_seconds:.1f}s")
    print(f"  ratio spark/duckdb = {ratio:.2f} (goal <= 2.0); spark {spark_seconds:.1f}s (goal <= 60s)")
    print(f"  written to {write_result('transform', result)}")


if __name__ == "__main__":
    main()
