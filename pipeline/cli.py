"""`igdb-pipeline`: the public interface. One subcommand per step, plus run/backfill/status/sandbox.

Exit codes (core.errors.ExitCode): 0 ok, 1 a step failed, 2 bad usage or configuration,
3 validation failed (or the load refused an unvalidated date), 4 another run of the date holds the lock.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Sequence
from typing import Any

from core.config import ALL_ENTITIES, Settings, load_settings, name_list, parse_overrides
from core.database import resolve_url
from core.days import days_between, parse_date
from core.errors import ConfigError, ExitCode, PipelineError
from core.logs import configure_logging, event, register_secrets
from ingestion.sandbox.cli import add_sandbox_parser
from pipeline.ledger import STEPS
from pipeline.retention import collection_lines
from pipeline.runner import (
    catchup_range,
    collect_garbage,
    date_states,
    missing_dates,
    run_date,
    run_dates,
    run_single_step,
    summary_text,
)
from pipeline.status import render_status, status_range
from pipeline.steps import SparkHandle, user_suites

log = logging.getLogger("igdb_pipeline")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("configuration (flag > environment > conf file > default)")
    group.add_argument("--env", help="configuration environment: reads conf/<ENV>.yaml (env PIPELINE_ENV; "
                                     "default local)")
    group.add_argument("--conf", metavar="FILE", help="read this YAML file instead of conf/<ENV>.yaml")
    group.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides",
                       help="override any setting, e.g. --set igdb.page_size=200 (repeatable)")
    group.add_argument("--lake", metavar="URI", help="lake root: folder or s3://bucket/prefix (env LAKE_URI)")
    group.add_argument("--log-format", choices=("text", "json"), help="log format (env LOG_FORMAT)")
    return common


def _date_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", required=True, type=parse_date, metavar="YYYY-MM-DD",
                        help="the date (partition dt=) to work on")


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="igdb-pipeline",
        description="IGDB to PostgreSQL: ingest raw JSONL, transform with Spark, validate, load. "
                    "With no settings it runs on the built-in IGDB sandbox, ./lake and an embedded PostgreSQL.",
        epilog="Exit codes: 0 ok, 1 a step failed, 2 bad usage/config, 3 validation failed, "
               "4 another run of the date is running.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = sub.add_parser("ingest", parents=[common], help="land IGDB entities of a date in the raw lake",
                            description="Pull IGDB (or the sandbox) and publish raw/<entity>/dt=D atomically, "
                                        "with a manifest; games incrementally from the stored watermark. Pages go "
                                        "through /v4/multiquery, 10 per request (igdb.multiquery). An entity already "
                                        "published for D with the same window is kept: a rerun after a failure "
                                        "fetches only what is missing (--force refetches all).")
    _date_arg(ingest)
    ingest.add_argument("--entities", metavar="A,B", help="only these entities (default: all configured)")
    ingest.add_argument("--full-refresh", action="store_true", help="fetch every game, not only updated ones")
    ingest.add_argument("--force", action="store_true", help="refetch entities already landed for D")
    ingest.set_defaults(handler=_cmd_ingest)

    transform = sub.add_parser(
        "transform", parents=[common], help="run the Spark jobs for a date: staging tables, bridges and marts",
        description="Read raw/<entity>/dt=D through its manifest, quarantine bad lines with their reason, "
                    "write staging tables, bridges and marts for D (dynamic partition overwrite: other dates "
                    "untouched). Runs on a local SparkSession (spark.master), or the cluster's under spark-submit.")
    _date_arg(transform)
    transform.set_defaults(handler=_cmd_transform)

    validate = sub.add_parser(
        "validate", parents=[common], help="check every staging table and mart of a date with Great Expectations",
        description="Run the expectation suites built from jobs/datasets.py on every staging table and mart of D, "
                    "check references across them and that raw = staged + collapsed + quarantined per entity. "
                    "Writes reports/validation/dt=D/index.html and summary.json in the lake. Exit 3 when a "
                    "critical expectation fails (the load must not run); warnings are reported only.")
    _date_arg(validate)
    validate.add_argument("--only", metavar="LAYER/NAME,...",
                          help="check only these outputs (e.g. marts/dim_games), to re-check one after a fix; "
                               "a partial validation never clears the load")
    validate.add_argument("--engine", choices=("fast", "gx"),
                          help="fast (default): the one-pass evaluator decides what passes, GX explains failures; "
                               "gx: GX's own Spark engine evaluates every expectation, the slower reference "
                               "(setting validation.engine)")
    _accept_arg(validate)
    validate.set_defaults(handler=_cmd_validate)

    load = sub.add_parser(
        "load", parents=[common], help="upsert the validated marts of a date into PostgreSQL",
        description="Upsert every mart of D into PostgreSQL (DATABASE_URL, else an embedded server under data_dir): "
                    "COPY into a staging table, then one transaction per mart (INSERT ... ON CONFLICT; bridges "
                    "replace each game's set; time series replace D's rows; older dates never overwrite newer "
                    "rows). Sends only the catalogue rows that differ from the date last loaded, and nothing "
                    "for a partition loaded already (--set load.mode=full sends everything). Refuses (exit 3) "
                    "unless D passed a complete validation; exit 4 while another load of D runs.")
    _date_arg(load)
    load.set_defaults(handler=_cmd_load)

    run = sub.add_parser(
        "run", parents=[common], help="ingest, transform, validate and load one date (resumes)",
        description="Run every step for a date, starting at the first step not done for it (a step is done when "
                    "its ledger row says so and its done marker _done/<step>/dt=D exists). Ends with a summary; "
                    "on failure, exits non-zero naming the step, and the next run resumes there. "
                    "--catchup runs, in order, every date from pipeline.start_date to yesterday that is not done.")
    run.add_argument("--date", type=parse_date, metavar="YYYY-MM-DD", help="the date to run")
    run.add_argument("--catchup", action="store_true",
                     help="run every date not fully done (missing, failed), from pipeline.start_date to yesterday")
    run.add_argument("--until", type=parse_date, metavar="YYYY-MM-DD",
                     help="with --catchup: the last date to consider (default yesterday, UTC)")
    steps = run.add_mutually_exclusive_group()
    steps.add_argument("--force", action="store_true", help="redo every step, even those done")
    steps.add_argument("--from-step", choices=STEPS, help="redo this step and every later one")
    run.add_argument("--to-step", choices=STEPS,
                     help="stop after this step: --to-step validate checks a date without loading it")
    _accept_arg(run)
    run.set_defaults(handler=_cmd_run)

    backfill = sub.add_parser(
        "backfill", parents=[common], help="run a range of dates in order",
        description="`run` for every date from --from to --to (inclusive), in order, each resuming at its first "
                    "step not done; stops at the first date that fails.")
    backfill.add_argument("--from", dest="date_from", required=True, type=parse_date, metavar="YYYY-MM-DD")
    backfill.add_argument("--to", dest="date_to", required=True, type=parse_date, metavar="YYYY-MM-DD")
    backfill.add_argument("--force", action="store_true", help="redo every step of every date")
    backfill.set_defaults(handler=_cmd_backfill)

    status = sub.add_parser(
        "status", parents=[common], help="date x step table of what is done",
        description="For each date: each step done, failed (with the reason), running, stale (an earlier step was "
                    "redone since) or missing; from pipeline.start_date (or the earliest known date) to yesterday.")
    status.add_argument("--from", dest="date_from", type=parse_date, metavar="YYYY-MM-DD")
    status.add_argument("--to", dest="date_to", type=parse_date, metavar="YYYY-MM-DD")
    status.set_defaults(handler=_cmd_status)

    gc = sub.add_parser(
        "gc", parents=[common], help="remove lake partitions older than retention.days (not what later runs read)",
        description="Remove the raw, staging, quarantine, mart and report partitions of dates older than "
                    "retention.days before --as-of (default today, UTC), except every partition of a date not done, "
                    "the catalogue, dimensions, fact and reports of each date a later run builds on (and of the "
                    "last date loaded), and a date whose run holds its lock. Also removes what killed writes left "
                    "(_tmp/, Spark's _temporary) once older than retention.tmp_max_age_hours. Done markers and "
                    "state/ stay.")
    gc.add_argument("--as-of", type=parse_date, metavar="YYYY-MM-DD", help="count the retention back from this date")
    gc.add_argument("--dry-run", action="store_true", help="list what would go; remove nothing")
    gc.set_defaults(handler=_cmd_gc)

    add_sandbox_parser(sub, common)
    return parser


def _accept_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accept-changes", action="store_true",
                        help="you checked this date: its change guards (deletions, a shrinking catalogue, a "
                             "collapsing fact) warn instead of blocking the load (setting guards.accept_dates)")


def check_user_expectations(settings: Settings) -> None:
    """Read and check the users' own GX suites now, so a typo in one is exit 2 before any Spark work."""
    user_suites(settings)


def _spark(settings: Settings, purpose: str) -> Any:
    return SparkHandle(lambda: spark_session(settings, f"igdb-{purpose}"))


def spark_session(settings: Settings, app_name: str) -> Any:
    """Local Spark from the settings, or the session spark-submit set up (spark.master=spark-submit)."""
    from jobs.session import build_session  # pyspark loads only when a command needs a session

    if settings.spark_master == "spark-submit":
        return build_session(app_name)
    return build_session(app_name, settings.spark_master, settings.spark_shuffle_partitions,
                         settings.spark_driver_memory)


def _single(settings: Settings, day: dt.date, step: str, headline: str, **options: Any) -> int:
    """One step with the same bookkeeping as `run` (run lock, ledger row, done marker)."""
    result = run_single_step(settings, day, step, _spark(settings, f"{step}-{day}"), **options)
    print(headline)
    for line in result.lines:
        print(f"  {line}")
    return ExitCode.OK


def _cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    entities = None
    if args.entities:
        entities = name_list(args.entities)
        unknown = sorted(set(entities) - set(ALL_ENTITIES))
        if unknown:
            raise ConfigError(f"--entities names unknown entities {', '.join(unknown)}; "
                              f"known: {', '.join(ALL_ENTITIES)}")
    return _single(settings, args.date, "ingest", f"ingested dt={args.date} into {settings.lake_uri}",
                   entities=entities, full_refresh=args.full_refresh, force=args.force)


def _cmd_transform(args: argparse.Namespace, settings: Settings) -> int:
    return _single(settings, args.date, "transform", f"transformed dt={args.date}")


def _cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    check_user_expectations(settings)
    only = name_list(args.only) if args.only else None
    scope = f" (only {', '.join(only)})" if only else ""
    return _single(settings, args.date, "validate", f"validated dt={args.date}{scope}: passed", only=only,
                   accept_changes=args.accept_changes)


def _cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    return _single(settings, args.date, "load", f"loaded dt={args.date} into schema {settings.database_schema}")


def _yesterday() -> dt.date:
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """One date (resuming), or every date not done up to yesterday (--catchup)."""
    if args.catchup == (args.date is not None):
        raise ConfigError("give either --date YYYY-MM-DD or --catchup")
    if args.until and not args.catchup:
        raise ConfigError("--until goes with --catchup")
    if args.from_step and args.catchup:
        raise ConfigError("--from-step goes with --date (catch-up resumes each date at its first step not done)")
    if args.to_step and args.catchup:
        raise ConfigError("--to-step goes with --date (catch-up runs each date to the end)")
    if args.to_step and args.from_step and STEPS.index(args.from_step) > STEPS.index(args.to_step):
        raise ConfigError(f"--from-step {args.from_step} comes after --to-step {args.to_step}: nothing would run")
    if args.accept_changes and args.catchup:
        raise ConfigError("--accept-changes goes with --date (accept the changes of a date you checked)")
    check_user_expectations(settings)
    spark = _spark(settings, "run")
    if args.catchup:
        return _run_range(settings, spark, None, args.until or _yesterday(), args.force)
    print(summary_text(run_date(settings, args.date, spark, args.force, args.from_step, args.to_step,
                                args.accept_changes)))
    return ExitCode.OK


def _cmd_gc(args: argparse.Namespace, settings: Settings) -> int:
    plan = collect_garbage(settings, args.as_of or dt.datetime.now(dt.UTC).date(), dry_run=args.dry_run)
    print("\n".join(collection_lines(plan, args.dry_run)))
    return ExitCode.OK


def _run_range(settings: Settings, spark: Any, first: dt.date | None, last: dt.date, force: bool) -> int:
    """Backfill (first given: every date) or catch-up (first None: the dates not done since the start)."""
    if first is None:
        states = date_states(settings, database_url(settings))
        low, high = catchup_range(settings, states, last)
        days = missing_dates(states, low, high)
        print(f"catch-up {low} .. {high}: {len(days)} date(s) not done"
              + (f": {', '.join(map(str, days))}" if days else ""))
    else:
        days = days_between(first, last)
    for run in run_dates(settings, days, spark, force):
        print(summary_text(run))
    return ExitCode.OK


def _cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    if args.date_to < args.date_from:
        raise ConfigError(f"--to {args.date_to} is before --from {args.date_from}")
    check_user_expectations(settings)
    return _run_range(settings, _spark(settings, "backfill"), args.date_from, args.date_to, args.force)


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    states = date_states(settings, database_url(settings))
    first, last = status_range(states, settings.pipeline_start_date, args.date_from, args.date_to, _yesterday())
    print(render_status(states, first, last))
    return ExitCode.OK


def database_url(settings: Settings) -> str:
    return resolve_url(settings.database_url, settings.data_dir)


def settings_from_args(args: argparse.Namespace) -> Settings:
    flags: dict[str, Any] = parse_overrides(getattr(args, "overrides", None))
    if getattr(args, "lake", None):
        flags["lake.uri"] = args.lake
    if getattr(args, "log_format", None):
        flags["log.format"] = args.log_format
    if getattr(args, "engine", None):
        flags["validation.engine"] = args.engine
    return load_settings(flags, env_name=getattr(args, "env", None), conf_path=getattr(args, "conf", None))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging()
    try:
        settings = settings_from_args(args)
        register_secrets(settings.secrets())
        configure_logging(settings.log_format, settings.log_level)
        return int(args.handler(args, settings))
    except PipelineError as exc:
        event(log, f"{args.command} failed: {exc}", logging.ERROR, exit_code=int(exc.exit_code))
        return int(exc.exit_code)
    except KeyboardInterrupt:
        event(log, f"{args.command} interrupted", logging.ERROR)
        return 130
    except Exception:
        log.exception(f"{args.command} failed with an unexpected error")
        return int(ExitCode.FAILED)


if __name__ == "__main__":
    sys.exit(main())
