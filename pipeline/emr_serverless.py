"""EMR Serverless: one job run per date, with the bundle's entry point and environment archive.

    python -m pipeline.emr_serverless --date D [--to D2] --application-id ID --role-arn ARN \\
        --bundle-uri s3://bucket/bundles/igdb-pipeline/0.1.0 [--retries 2] [--no-upload]

EMR Serverless has no bootstrap actions, so the packages come only from the environment archive
(`make package`). Dates build on each other, so a range runs one date at a time: each job run is
started after the previous one succeeded, and the first date that fails stops the range (exit 1,
later dates not started). A job run's own retry policy reruns a failed attempt; the pipeline's
resume makes that attempt start at the step that failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3

from core.days import parse_date
from core.errors import ConfigError, ExitCode, PipelineError, tool_main
from pipeline import emr

DONE = {"SUCCESS": True, "FAILED": False, "CANCELLED": False}
POLL_SECONDS = 30.0


def job_run(day: dt.date, bundle_uri: str, application_id: str, role_arn: str, retries: int) -> dict[str, Any]:
    """`start_job_run`'s arguments for one date (without the idempotency token)."""
    base = emr.base_of(bundle_uri)
    python = emr.environment.EXECUTOR_PYTHON
    parameters = [
        "--py-files", f"{base}/{emr.PYFILES}",
        *emr.archive_conf(base),
        # the driver's Python is set per process on EMR Serverless, not by spark.pyspark.python
        "--conf", f"spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON={python}",
        "--conf", f"spark.emr-serverless.driverEnv.PYSPARK_PYTHON={python}",
        "--conf", f"spark.executorEnv.PYSPARK_PYTHON={python}",
    ]
    return {
        "applicationId": application_id,
        "executionRoleArn": role_arn,
        "name": f"igdb-pipeline run {day.isoformat()}",
        "jobDriver": {"sparkSubmit": {
            "entryPoint": f"{base}/{emr.ENTRY}",
            "entryPointArguments": emr.entry_arguments(day, base),
            "sparkSubmitParameters": " ".join(parameters),
        }},
        "retryPolicy": {"maxAttempts": retries + 1},
        "configurationOverrides": {"monitoringConfiguration": {
            "s3MonitoringConfiguration": {"logUri": f"{base}/logs/"}}},
    }


def run_dates(client: Any, days: Sequence[dt.date], spec: Callable[[dt.date], dict[str, Any]],
              wait: bool = True, poll_seconds: float = POLL_SECONDS,
              say: Callable[[str], None] = print) -> list[tuple[dt.date, str, str]]:
    """Start the dates' job runs in order, each after the previous succeeded; (date, id, state) each.

    Raises PipelineError naming the date when a run ends other than SUCCESS."""
    done = []
    for day in days:
        request = spec(day)
        started = client.start_job_run(clientToken=str(uuid.uuid4()), **request)
        run_id = started["jobRunId"]
        say(f"{day}: job run {run_id} started on {request['applicationId']}")
        state = "SUBMITTED"
        while wait:
            state = client.get_job_run(applicationId=request["applicationId"], jobRunId=run_id)["jobRun"]["state"]
            if state in DONE:
                break
            time.sleep(poll_seconds)
        say(f"{day}: job run {run_id} {state}")
        done.append((day, run_id, state))
        if wait and not DONE[state]:
            raise PipelineError(f"{day}: job run {run_id} ended {state}; later dates were not started "
                                f"(rerun from {day}: it resumes at its failed step)")
    return done


@tool_main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.emr_serverless", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--date", required=True, type=parse_date, metavar="YYYY-MM-DD")
    parser.add_argument("--to", type=parse_date, metavar="YYYY-MM-DD", help="one job run per date up to this one")
    parser.add_argument("--application-id", required=True, help="the EMR Serverless Spark application (emr-7.x)")
    parser.add_argument("--role-arn", required=True, help="the job runtime role (reads the bundle, writes the lake)")
    parser.add_argument("--bundle-uri", required=True, metavar="S3_URI",
                        help=f"where the bundle is uploaded, e.g. s3://my-bucket/bundles/igdb-pipeline/{emr.version()}")
    parser.add_argument("--retries", type=int, default=emr.DEFAULT_RETRIES,
                        help=f"attempts after a failed one, per date (default {emr.DEFAULT_RETRIES})")
    parser.add_argument("--no-upload", action="store_true", help="the bundle is already at --bundle-uri")
    parser.add_argument("--no-wait", action="store_true",
                        help="start the first date's job run and return (only with a single date)")
    parser.add_argument("--out", default="dist", help="where the bundle is built before the upload")
    args = parser.parse_args(argv)
    days = emr.dates_of(args.date, args.to)
    emr.check_retries(args.retries)
    if args.no_wait and len(days) > 1:
        raise ConfigError("--no-wait starts one date only: dates of a range must run one after another")
    emr.base_of(args.bundle_uri)
    if not args.role_arn.startswith("arn:"):
        raise ConfigError(f"--role-arn must be an IAM role ARN (got {args.role_arn!r})")

    def spec(day: dt.date) -> dict[str, Any]:
        return job_run(day, args.bundle_uri, args.application_id, args.role_arn, args.retries)

    with emr.aws_errors():
        if not args.no_upload:
            files = emr.build_bundle(Path(args.out))
            uploaded = emr.upload_bundle(boto3.client("s3"), files, args.bundle_uri)
            print(f"uploaded {len(uploaded)} files to {args.bundle_uri}")
        run_dates(boto3.client("emr-serverless"), days, spec, wait=not args.no_wait)
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
