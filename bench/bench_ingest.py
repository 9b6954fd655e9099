"""Ingestion throughput against the API's rate ceiling.

The sandbox enforces IGDB's limits (4 requests/s, 8 open) with 200-600 ms latency and serves
100k games; the pipeline's `ingest` lands them all. The ceiling is rate x page size
(4 x 500 = 2000 records/s): the ratio says how much of it the client uses. Goal >= 0.95 and
peak RSS <= 300 MB (the project this replaces reached 0.83).

    make bench-ingest          # or: python -m bench.bench_ingest --games 20000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import CLI, sandbox_env, sandbox_process, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=100_000)
    parser.add_argument("--latency-ms", default="200-600")
    parser.add_argument("--rate", type=float, default=4.0)
    parser.add_argument("--max-open", type=int, default=8)
    args = parser.parse_args()

    ceiling = args.rate * 500
    print(f"bench-ingest: {args.games} games, {args.rate:g} req/s, {args.max_open} open, "
          f"{args.latency_ms} ms latency; ceiling {ceiling:.0f} records/s")
    with sandbox_process("--games", str(args.games), "--latency-ms", args.latency_ms, "--rate", str(args.rate),
                         "--max-open", str(args.max_open)) as info, tempfile.TemporaryDirectory() as tmp:
        print(f"  sandbox ready in {info['startup_s']}s at {info['url']}")
        env = sandbox_env(info, LAKE_URI=f"{tmp}/lake", PIPELINE_DATA_DIR=f"{tmp}/data",
                          IGDB_RATE_LIMIT=str(args.rate), IGDB_MAX_IN_FLIGHT=str(args.max_open))
        started = time.monotonic()
        proc = subprocess.Popen([*CLI, "ingest", "--date", "2026-11-20", "--entities", "games", "--full-refresh"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"ingest failed:\n{stderr[-3000:]}")
        manifest = json.loads((Path(tmp) / "lake/raw/games/dt=2026-11-20/_manifest.json").read_text())
        sandbox_stats = json.loads(subprocess.run(["curl", "-s", f"{info['url']}/_sandbox/stats"],
                                                  capture_output=True, text=True).stdout or "{}").get("stats", {})

    records, seconds = manifest["records"], manifest["fetch_seconds"]
    rate = records / seconds
    ratio = rate / ceiling
    rss_mb = usage.ru_maxrss / 1024  # Linux reports KiB
    result = {
        "games": records, "fetch_seconds": seconds, "process_seconds": round(wall, 2),
        "records_per_s": round(rate, 1), "ceiling_records_per_s": ceiling, "ratio": round(ratio, 3),
        "ratio_goal": 0.95, "peak_rss_mb": round(rss_mb, 1), "rss_goal_mb": 300,
        "requests": manifest["api_calls"].get("requests"), "api_calls": manifest["api_calls"],
        "sandbox_rejections": {k: v for k, v in sandbox_stats.items() if k.startswith("rejected")},
    }
    print(f"  landed {records} games in {seconds:.1f}s of fetch ({wall:.1f}s for the whole process)")
    print(f"  {rate:.0f} records/s / ceiling {ceiling:.0f} = ratio {ratio:.3f} (goal >= 0.95)")
    print(f"  peak RSS of the ingest process: {rss_mb:.0f} MB (goal <= 300 MB)")
    print(f"  requests {result['requests']}, sandbox rejections {result['sandbox_rejections']}")
    print(f"  written to {write_result('ingest', result)}")


if __name__ == "__main__":
    main()
