"""What spark-submit runs (locally, in Docker, on EMR): `pipeline/main.py --job <name> --date D [--lake URI]`.

It is the same code as `igdb-pipeline <job>`, with the Spark master left to spark-submit.
Any other pipeline flag (--env, --conf, --set key=value) passes through.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

# Run as a script, Python puts this folder first on sys.path, where cli.py, status.py, runner.py
# ... would shadow any installed top-level module of the same name: the package is what we import.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from pipeline.cli import main as cli_main  # after the sys.path repair above

JOBS = ("ingest", "transform", "validate", "load", "run", "backfill", "status", "gc")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipeline/main.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", required=True, choices=JOBS, help="the step to run")
    args, rest = parser.parse_known_args(argv)
    return cli_main([args.job, *rest, "--set", "spark.master=spark-submit"])


if __name__ == "__main__":
    sys.exit(main())
