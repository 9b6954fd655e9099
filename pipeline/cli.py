"""`igdb-pipeline`: the public interface. One subcommand per step, plus run/backfill/status/sandbox.

Exit codes (pipeline.errors.ExitCode): 0 ok, 1 a step failed, 2 bad usage or configuration,
3 validation failed, 4 another run holds the lock, 5 not built yet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.config import Settings, load_settings, parse_overrides
from pipeline.errors import ConfigError, ExitCode, NotImplementedStep, PipelineError
from pipeline.logs import configure_logging, event, log_context, new_run_id, register_secrets

log = logging.getLogger("igdb_pipeline")


def parse_date(text: str) -> dt.date:
    """Strict YYYY-MM-DD (Python 3.11 would also take 20261120, which a partition name must not)."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None


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
        epilog="Exit codes: 0 ok, 1 step failed, 2 bad usage/config, 3 validation failed, 4 busy, "
               "5 not built yet.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = sub.add_parser("ingest", parents=[common], help="land IGDB entities of a date in the raw lake",
                            description="Pull IGDB (or the sandbox) and publish raw/<entity>/dt=D atomically, "
                                        "with a manifest; games incrementally from the stored watermark.")
    _date_arg(ingest)
    ingest.add_argument("--entities", metavar="A,B", help="only these entities (default: all configured)")
    ingest.add_argument("--full-refresh", action="store_true", help="fetch every game, not only updated ones")
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
    validate.set_defaults(handler=_cmd_validate)

    load = sub.add_parser(
        "load", parents=[common], help="upsert the validated marts of a date into PostgreSQL",
        description="Upsert every mart of D into PostgreSQL (DATABASE_URL, else an embedded server under data_dir): "
                    "COPY into a staging table, then one transaction per mart (INSERT ... ON CONFLICT; bridges "
                    "replace each game's set; time series replace D's rows; older dates never overwrite newer "
                    "rows). Refuses (exit 3) unless D passed a complete validation; exit 4 while another load "
                    "of D runs.")
    _date_arg(load)
    load.set_defaults(handler=_cmd_load)

    run = sub.add_parser("run", parents=[common], help="ingest, transform, validate and load one date",
                         description="Run every step for a date, resuming at the first step not done.")
    run.add_argument("--date", type=parse_date, metavar="YYYY-MM-DD", help="the date to run")
    run.add_argument("--catchup", action="store_true", help="run every date not fully done, up to yesterday")
    run.add_argument("--force", action="store_true", help="redo every step")
    run.set_defaults(handler=_cmd_run)

    backfill = sub.add_parser("backfill", parents=[common], help="run a range of dates in order")
    backfill.add_argument("--from", dest="date_from", required=True, type=parse_date, metavar="YYYY-MM-DD")
    backfill.add_argument("--to", dest="date_to", required=True, type=parse_date, metavar="YYYY-MM-DD")
    backfill.set_defaults(handler=_not_yet("backfill", 8))

    status = sub.add_parser("status", parents=[common], help="date x step table of what is done")
    status.add_argument("--from", dest="date_from", type=parse_date, metavar="YYYY-MM-DD")
    status.add_argument("--to", dest="date_to", type=parse_date, metavar="YYYY-MM-DD")
    status.set_defaults(handler=_not_yet("status", 8))

    from ingestion.sandbox.cli import add_sandbox_parser

    add_sandbox_parser(sub, common)
    return parser


def _not_yet(name: str, issue: int) -> Callable[[argparse.Namespace, Settings], int]:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        raise NotImplementedStep(f"'{name}' is part of the interface but not built yet (issue #{issue})")

    return handler


def _cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.ingest import ingest

    entities = None
    if args.entities:
        from pipeline.config import ALL_ENTITIES, name_list

        entities = name_list(args.entities)
        unknown = sorted(set(entities) - set(ALL_ENTITIES))
        if unknown:
            raise ConfigError(f"--entities names unknown entities {', '.join(unknown)}; "
                              f"known: {', '.join(ALL_ENTITIES)}")
    run_id = new_run_id()
    with log_context(run_id=run_id, dt=args.date.isoformat()):
        reports = ingest(settings, args.date, run_id, entities, args.full_refresh)
    print(f"ingested dt={args.date} into {settings.lake_uri} (run {run_id})")
    for r in reports:
        print(f"  {r.entity:<22} {r.mode:<11} {r.records:>9} records {r.files:>3} files "
              f"{r.requests:>5} requests {r.seconds:>8.1f}s")
    return ExitCode.OK


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Every step for one date. Until the later steps exist it runs what is built and says what is not."""
    if args.catchup or args.date is None:
        raise NotImplementedStep("'run --catchup' is not built yet (issue #8); give --date YYYY-MM-DD")
    _cmd_ingest(argparse.Namespace(date=args.date, entities=None, full_refresh=False), settings)
    _cmd_transform(args, settings)
    _cmd_validate(args, settings)
    _cmd_load(args, settings)
    return ExitCode.OK


def spark_session(settings: Settings, app_name: str) -> Any:
    """Local Spark from the settings, or the session spark-submit set up (spark.master=spark-submit)."""
    from jobs.session import build_session

    if settings.spark_master == "spark-submit":
        return build_session(app_name)
    return build_session(app_name, settings.spark_master, settings.spark_shuffle_partitions,
                         settings.spark_driver_memory)


def _cmd_transform(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.transform import run_transform
    from pipeline.lake import open_lake

    run_id = new_run_id()
    with log_context(run_id=run_id, dt=args.date.isoformat()):
        spark = spark_session(settings, f"igdb-transform-{args.date}")
        report = run_transform(spark, open_lake(settings.lake_uri), args.date, settings.marts_top_n)
    print(f"transformed dt={args.date} in {report['seconds']}s (run {run_id}, full refresh: "
          f"{report['full_refresh']})")
    for entity, counts in report["entities"].items():
        print(f"  {entity:<22} raw {counts['raw_lines']:>8}  staged {counts['staged']:>8}  "
              f"quarantined {counts['quarantined']:>5}  collapsed {counts['collapsed']:>5}")
    for table, rows in report["rows"].items():
        print(f"  {table:<26} {rows:>9} rows")
    return ExitCode.OK


def _cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.validation import run_validation
    from pipeline.config import name_list
    from pipeline.lake import open_lake

    run_id = new_run_id()
    with log_context(run_id=run_id, dt=args.date.isoformat()), \
            _ledger(settings, args.date, "validate", run_id) as record:
        spark = spark_session(settings, f"igdb-validate-{args.date}")
        only = name_list(args.only) if getattr(args, "only", None) else None
        summary = run_validation(spark, open_lake(settings.lake_uri), args.date, run_id,
                                 settings.validation_max_quarantine_share, only=only)
        record.rows_in = sum(summary["rows"].values())
        record.details = {"expectations": summary["expectations"], "warnings": summary["warned"],
                          "complete": summary["complete"], "report": summary["report"]}
    scope = "" if summary["complete"] else f" (only {', '.join(only or [])})"
    print(f"validated dt={args.date}{scope}: passed, {summary['expectations']} expectations in "
          f"{summary['seconds']}s, {summary['warnings']} warning(s) (run {run_id})")
    for warned in summary["warned"]:
        print(f"  warning: {warned['suite']}: {warned['description']} ({warned['unexpected_count']} unexpected)")
    print(f"  report: {summary['report']}")
    return ExitCode.OK


def database_url(settings: Settings) -> str:
    from pipeline.database import resolve_url

    return resolve_url(settings.database_url, settings.data_dir)


def _ledger(settings: Settings, day: dt.date, step: str, run_id: str) -> Any:
    from pipeline.ledger import ledger_step

    return ledger_step(database_url(settings), settings.database_schema, day, step, run_id)


def _cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.load import run_load
    from pipeline.lake import open_lake

    run_id = new_run_id()
    url = database_url(settings)
    with log_context(run_id=run_id, dt=args.date.isoformat()), \
            _ledger(settings, args.date, "load", run_id) as record:
        spark = spark_session(settings, f"igdb-load-{args.date}")
        result = run_load(spark, open_lake(settings.lake_uri), args.date, url, settings.database_schema,
                          settings.load_on_empty)
        record.rows_in = sum(m["rows"] for m in result["marts"].values())
        record.rows_out = sum(m["changed"] for m in result["marts"].values())
        record.details = {"marts": result["marts"]}
    print(f"loaded dt={args.date} into schema {settings.database_schema} in {result['seconds']}s (run {run_id})")
    for name, counts in result["marts"].items():
        print(f"  {name:<26} {counts['rows']:>9} rows  {counts['changed']:>9} changed")
    return ExitCode.OK


def settings_from_args(args: argparse.Namespace) -> Settings:
    flags: dict[str, Any] = parse_overrides(getattr(args, "overrides", None))
    if getattr(args, "lake", None):
        flags["lake.uri"] = args.lake
    if getattr(args, "log_format", None):
        flags["log.format"] = args.log_format
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
