"""`python -m reliability [--only NAME ...] [--trials N] [--seed S]`: one line per scenario, PASS/FAIL.

Exit 0 when every scenario passes, 1 otherwise. PostgreSQL: DATABASE_URL's server when set (its
role must be allowed to CREATE DATABASE and CREATE ROLE), else an embedded one in a temp folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from reliability.scenarios import SCENARIOS, Context, run_scenario
from reliability.world import Postgres


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), metavar="NAME",
                        help=f"run these scenarios only ({', '.join(SCENARIOS)})")
    parser.add_argument("--trials", type=int, default=20, help="SIGKILL trials, spread over the steps (default 20)")
    parser.add_argument("--seed", type=int, default=7, help="seed of kill points and catalogue edits (default 7)")
    parser.add_argument("--games", type=int, default=300, help="games in the sandbox catalogue (default 300)")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temp folder, removed)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.only or list(SCENARIOS)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="igdb-reliability-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        postgres = Postgres(root / "postgres")
        try:
            ctx = Context(root, postgres, seed=args.seed, games=args.games, kill_trials=args.trials)
            print(f"reliability: {len(names)} scenario(s), {args.games} games, seed {args.seed}", flush=True)
            outcomes = []
            for name in names:
                outcome = run_scenario(name, ctx)
                outcomes.append(outcome)
                print(outcome.line(), flush=True)
        finally:
            postgres.stop()
    failed = [o.name for o in outcomes if not o.passed]
    print(f"{len(outcomes) - len(failed)}/{len(outcomes)} scenarios passed in {time.monotonic() - started:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
