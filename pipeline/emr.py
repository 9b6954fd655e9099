"""AWS EMR: build the bundle EMR runs, upload it to S3, and add the steps that run dates (boto3).

    python -m pipeline.emr package [--out dist]
    python -m pipeline.emr step --date D [--to D2] --bundle-uri s3://bucket/bundles/igdb-pipeline/0.1.0
    python -m pipeline.emr submit --date D [--to D2] --bundle-uri s3://... --cluster-id j-XXXX

The bundle (`dist/`): `igdb_pipeline.zip` (the three packages, for `--py-files`), `main.py`
(pipeline/main.py, the entry point), `pyspark_env.tar.gz` (every package the jobs import, with
`spark.archives`: pipeline.environment), `emr.yaml` (the settings, read with `--conf s3://...`),
`configurations.json`, and for clusters that install packages at start instead
(`--python-env bootstrap`) `requirements.txt` + `constraints.txt` and the bootstrap action.
One EMR step per date runs `pipeline/main.py --job run`: it resumes at the first step not done, so
YARN's retry of a failed driver, or re-adding a failed date's step, starts at the failed step.
`AWS_ENDPOINT_URL` points boto3 at moto in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from core.config import PROJECT_ROOT
from core.days import days_between, parse_date
from core.errors import ConfigError, ExitCode, PipelineError, tool_main
from pipeline import environment

PACKAGES = ("core", "ingestion", "jobs", "pipeline")
PYFILES = "igdb_pipeline.zip"
ENTRY = "main.py"
SETTINGS_FILE = "emr.yaml"
BOOTSTRAP = "bootstrap/install-python-deps.sh"
PYTHON_ENVS = ("archive", "bootstrap")
DEFAULT_RETRIES = 2


def version() -> str:
    text = (PROJECT_ROOT / "setup.py").read_text(encoding="utf-8")
    found = re.search(r'version="([^"]+)"', text)
    assert found, "setup.py has no version"
    return found.group(1)


def build_bundle(out: Path, root: Path = PROJECT_ROOT,
                 python_prefix: str = environment.DEFAULT_PYTHON_PREFIX) -> dict[str, Path]:
    """Write the bundle into `out` (replaced); the files by role."""
    if out.exists():
        shutil.rmtree(out)
    (out / "bootstrap").mkdir(parents=True)
    files = {"pyfiles": out / PYFILES, "entry": out / ENTRY, "settings": out / SETTINGS_FILE,
             "requirements": out / "requirements.txt", "constraints": out / "constraints.txt",
             "bootstrap": out / BOOTSTRAP, "configurations": out / "configurations.json",
             "environment": out / environment.ARCHIVE}
    with zipfile.ZipFile(files["pyfiles"], "w", zipfile.ZIP_DEFLATED) as archive:
        for package in PACKAGES:
            for source in sorted((root / package).rglob("*.py")):
                archive.write(source, source.relative_to(root).as_posix())
    shutil.copyfile(root / "pipeline" / "main.py", files["entry"])
    shutil.copyfile(root / "conf" / "emr.yaml", files["settings"])
    shutil.copyfile(root / "constraints.txt", files["constraints"])
    shutil.copyfile(root / BOOTSTRAP, files["bootstrap"])
    shutil.copyfile(root / "conf" / "emr" / "configurations.json", files["configurations"])
    requirements = environment.runtime_requirements(root)
    files["requirements"].write_text("\n".join(requirements) + "\n", encoding="utf-8")
    environment.environment_archive(files["environment"], requirements, python_prefix)
    return files


def _s3_parts(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"--bundle-uri must be s3://bucket/prefix (got {uri!r})")
    return parts.netloc, parts.path.strip("/")


def base_of(bundle_uri: str) -> str:
    """The bundle's S3 prefix without a trailing slash (checked)."""
    _s3_parts(bundle_uri)
    return bundle_uri.rstrip("/")


def upload_bundle(s3: Any, files: dict[str, Path], bundle_uri: str) -> list[str]:
    """Upload every bundle file under bundle_uri (same relative names); the URIs written."""
    bucket, prefix = _s3_parts(bundle_uri)
    out = next(iter(files.values())).parent
    written = []
    for path in files.values():
        key = f"{prefix}/{path.relative_to(out).as_posix()}".lstrip("/")
        s3.upload_file(str(path), bucket, key)
        written.append(f"s3://{bucket}/{key}")
    return written


def entry_arguments(day: dt.date, base: str) -> list[str]:
    """pipeline/main.py's arguments for one date: the whole pipeline, resuming, with the bundle's settings."""
    return ["--job", "run", "--date", day.isoformat(), "--env", "emr", "--conf", f"{base}/{SETTINGS_FILE}"]


def archive_conf(base: str) -> list[str]:
    """spark-submit options that give the driver and executors the environment archive's Python
    (the driver's too: conf/emr/configurations.json names the nodes' python3.11 for both)."""
    return ["--conf", f"spark.archives={base}/{environment.ARCHIVE}#{environment.ALIAS}",
            "--conf", f"spark.pyspark.python={environment.EXECUTOR_PYTHON}",
            "--conf", f"spark.pyspark.driver.python={environment.EXECUTOR_PYTHON}"]


def run_step(day: dt.date, bundle_uri: str, python_env: str = "archive", retries: int = DEFAULT_RETRIES,
             extra: Sequence[str] = ()) -> dict[str, Any]:
    """The EMR step that runs one date (resuming), as `add_job_flow_steps` takes it.

    Cluster deploy mode: the driver runs in a YARN container, which unpacks the environment
    archive like the executors' (python_env="archive"; "bootstrap" uses the nodes' python3.11 that
    bootstrap/install-python-deps.sh filled instead), and YARN restarts a failed driver
    `retries` times: each attempt resumes at the step that failed. CANCEL_AND_WAIT: a failed date
    cancels the later dates' steps (they build on it) and keeps the cluster for the rerun.
    """
    if python_env not in PYTHON_ENVS:
        raise ConfigError(f"--python-env must be one of {', '.join(PYTHON_ENVS)} (got {python_env!r})")
    check_retries(retries)
    base = base_of(bundle_uri)
    python = [*archive_conf(base), "--conf", f"spark.yarn.appMasterEnv.PYSPARK_PYTHON={environment.EXECUTOR_PYTHON}"] \
        if python_env == "archive" else []
    return {
        "Name": f"igdb-pipeline run {day.isoformat()}",
        "ActionOnFailure": "CANCEL_AND_WAIT",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": ["spark-submit", "--deploy-mode", "cluster", "--py-files", f"{base}/{PYFILES}", *python,
                     "--conf", f"spark.yarn.maxAppAttempts={retries + 1}",
                     f"{base}/{ENTRY}", *entry_arguments(day, base), *extra],
        },
    }


def check_retries(retries: int) -> None:
    if retries < 0:
        raise ConfigError(f"--retries must be 0 or more (got {retries})")


def dates_of(first: dt.date, last: dt.date | None) -> list[dt.date]:
    """`--date` to `--to` (one date without it), checked."""
    last = last or first
    if last < first:
        raise ConfigError(f"--to {last} is before --date {first}")
    return days_between(first, last)


def steps_for(first: dt.date, last: dt.date | None, bundle_uri: str, python_env: str = "archive",
              retries: int = DEFAULT_RETRIES) -> list[dict[str, Any]]:
    return [run_step(day, bundle_uri, python_env, retries) for day in dates_of(first, last)]


@contextmanager
def aws_errors() -> Iterator[None]:
    """AWS's refusals (and unreachable endpoints) as a PipelineError with exit code 1."""
    try:
        yield
    except (Boto3Error, BotoCoreError, ClientError) as exc:
        raise PipelineError(f"AWS refused the submission: {exc}") from None


def add_steps(emr: Any, cluster_id: str, steps: list[dict[str, Any]]) -> list[str]:
    return list(emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=steps)["StepIds"])


@tool_main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.emr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    package = sub.add_parser("package", help="build the bundle EMR runs into --out")
    package.add_argument("--out", default="dist", help="output folder (replaced; default dist)")
    package.add_argument("--python-prefix", default=environment.DEFAULT_PYTHON_PREFIX,
                         help="where Python 3.11 lives on the nodes (bin/python3.11 under it; default /usr)")
    for name, helptext in (("step", "print the EMR step(s) as JSON (for `aws emr add-steps --steps file://...`)"),
                           ("submit", "build and upload the bundle, then add the step(s) to a running cluster")):
        command = sub.add_parser(name, help=helptext)
        command.add_argument("--date", required=True, type=parse_date, metavar="YYYY-MM-DD")
        command.add_argument("--to", type=parse_date, metavar="YYYY-MM-DD", help="one step per date up to this one")
        command.add_argument("--bundle-uri", required=True, metavar="S3_URI",
                             help=f"where the bundle lives, e.g. s3://my-bucket/bundles/igdb-pipeline/{version()}")
        command.add_argument("--python-env", choices=PYTHON_ENVS, default="archive",
                             help="the jobs' Python: the bundle's environment archive (default), or the "
                                  "packages the bootstrap action installed on every node")
        command.add_argument("--retries", type=int, default=DEFAULT_RETRIES,
                             help=f"attempts after a failed one, per date (default {DEFAULT_RETRIES})")
        if name == "submit":
            command.add_argument("--cluster-id", required=True, help="the EMR cluster (j-...)")
            command.add_argument("--out", default="dist", help="where the bundle is built first")
    args = parser.parse_args(argv)
    if args.command == "package":
        started = time.monotonic()
        files = build_bundle(Path(args.out), python_prefix=args.python_prefix)
        size = files["environment"].stat().st_size / 1e6
        print(f"bundle {version()} in {args.out}/ ({time.monotonic() - started:.0f} s; environment archive "
              f"{size:.0f} MB): " + ", ".join(sorted(p.name for p in files.values())))
        return ExitCode.OK
    steps = steps_for(args.date, args.to, args.bundle_uri, args.python_env, args.retries)
    if args.command == "step":
        print(json.dumps(steps, indent=2))
        return ExitCode.OK
    files = build_bundle(Path(args.out))
    with aws_errors():
        uploaded = upload_bundle(boto3.client("s3"), files, args.bundle_uri)
        ids = add_steps(boto3.client("emr"), args.cluster_id, steps)
    print(f"uploaded {len(uploaded)} files to {args.bundle_uri}; added step(s) {', '.join(ids)} "
          f"to {args.cluster_id}")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
