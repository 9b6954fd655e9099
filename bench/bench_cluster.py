"""The daily date on a Spark standalone cluster here against local mode, in the same run.

    make bench-cluster                     # 350k games, 2k changed (bench-daily's cached raw lake)
    python -m bench.bench_cluster --games 20000 --changed 500 --rounds 2

Each side starts from D's raw partitions and D+1's (the quiet day of bench-daily), loads D in
full into an empty schema (not timed: it only sets the stage), then times
`run --date D+1 --from-step transform`: transform, validate, load. Local mode is
`igdb-pipeline run` with local[2] (one JVM); the cluster is `spark-submit.sh run` against a master
and two one-core workers of `pipeline.local_cluster`, with the bundle of `make package` (code zip +
environment archive) shipped to the executors. Both use this machine's 2 cores, so the ratio is
the cost of the cluster path (separate JVMs, shipping the archive, shuffles over the network
stack, Python workers in another interpreter), not a speed-up. With --rounds 2 the order
alternates (local, cluster, cluster, local) so the machine's drift falls on both sides.
Also measured: building the environment archive without the cache, and its size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_daily import (
    DAY,
    NEXT,
    cached_next_day,
    fresh_schema,
    link_tree,
    settle_database,
    steps_text,
    timed_command,
    timed_run,
)
from bench.common import OUT, bench_database, run_env, write_result
from bench.raw_lake import cached_raw_lake
from core.config import PROJECT_ROOT
from pipeline import environment, local_cluster
from pipeline.environment import runtime_requirements

SCHEMA = "bench_cluster"
DRIVER_MEMORY = "6g"  # local mode: the one JVM does all the work
CLUSTER_DRIVER_MEMORY = "3g"
EXECUTOR_MEMORY = "3g"  # two executors: the same 6g between them


def run(side: str, day: dt.date, lake: Path, env: dict[str, str], cluster: local_cluster.Cluster, bundle: Path
        ) -> tuple[float, dict[str, float]]:
    """Wall clock of one `run --date day --from-step transform` on `side` (local or cluster), and
    each step's own seconds (its done marker)."""
    if side == "local":
        return timed_run(day, lake, env, DRIVER_MEMORY)
    command = [str(PROJECT_ROOT / "spark-submit.sh"), "run", "--date", str(day), "--from-step", "transform",
               "--lake", str(lake)]
    return timed_command(command, {**env, "SPARK_SUBMIT_MASTER": cluster.master_url,
                                   "SPARK_SUBMIT_BUNDLE": str(bundle), "SPARK_DRIVER_MEMORY": CLUSTER_DRIVER_MEMORY,
                                   "SPARK_EXECUTOR_MEMORY": EXECUTOR_MEMORY, "SPARK_SHUFFLE_PARTITIONS": "8"},
                         day, lake)


def one_side(side: str, raw: Path, next_raw: Path, url: str, tmp: Path, cluster: local_cluster.Cluster
             ) -> tuple[float, dict[str, float]]:
    """D in full (the stage), then the timed daily D+1, on a fresh lake and schema."""
    work = tmp / side
    lake = work / "lake"
    link_tree(raw / "raw", lake / "raw")
    link_tree(next_raw / "raw", lake / "raw")
    fresh_schema(url, SCHEMA)
    env = run_env(url, work / "data", SCHEMA)
    run(side, DAY, lake, env, cluster, tmp / "bundle")
    settle_database(url, SCHEMA)
    daily = run(side, NEXT, lake, env, cluster, tmp / "bundle")
    fresh_schema(url, SCHEMA)
    shutil.rmtree(work)
    return daily


def package_figures(tmp: Path) -> dict[str, Any]:
    started = time.monotonic()
    built = environment.environment_archive(tmp / "fresh" / environment.ARCHIVE, runtime_requirements(), cache=None)
    return {"package_build_seconds": round(time.monotonic() - started, 1),
            "archive_mb": round(built.bytes / 1e6, 1), "archive_requirements": len(built.requirements)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=350_000)
    parser.add_argument("--changed", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=1, help="local+cluster pairs, order alternating")
    args = parser.parse_args()

    raw, counts = cached_raw_lake(args.games, DAY, OUT / "lakes")
    next_raw, _ = cached_next_day(raw, counts["games"], args.changed)
    times: dict[str, list[float]] = {"local": [], "cluster": []}
    steps: dict[str, list[dict[str, float]]] = {"local": [], "cluster": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        packaged = package_figures(tmp)
        print(f"bench-cluster: {counts['games']} games, daily D+1 with {args.changed} changed; environment archive "
              f"{packaged['archive_mb']:.0f} MB built in {packaged['package_build_seconds']:.0f}s (no cache)")
        started = time.monotonic()
        cluster = local_cluster.start(tmp / "cluster", workers=2, worker_memory="4g")
        cluster_start = time.monotonic() - started
        try:
            with bench_database(tmp) as url:
                for number in range(args.rounds):
                    order = ("local", "cluster") if number % 2 == 0 else ("cluster", "local")
                    for side in order:
                        wall, seconds = one_side(side, raw, next_raw, url, tmp, cluster)
                        times[side].append(wall)
                        steps[side].append(seconds)
                        print(f"  {side:7} daily D+1: {wall:.1f}s ({steps_text(seconds)})", flush=True)
        finally:
            local_cluster.stop(tmp / "cluster")
    local, on_cluster = sum(times["local"]) / len(times["local"]), sum(times["cluster"]) / len(times["cluster"])
    ratio = on_cluster / local
    result = {"games": counts["games"], "changed_games": args.changed, "rounds": args.rounds,
              "local_seconds": [round(t, 1) for t in times["local"]],
              "cluster_seconds": [round(t, 1) for t in times["cluster"]],
              "local_steps_seconds": steps["local"], "cluster_steps_seconds": steps["cluster"],
              "ratio_cluster_over_local": round(ratio, 3), "cluster_start_seconds": round(cluster_start, 1),
              "cores": os.cpu_count(), **packaged}
    print(f"  ratio cluster/local = {ratio:.2f} (2 cores: the overhead of the cluster path, not a speed-up); "
          f"cluster start {cluster_start:.0f}s, not timed")
    print(f"  written to {write_result('cluster', result)}")


if __name__ == "__main__":
    main()
