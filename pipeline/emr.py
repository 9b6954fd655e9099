"""AWS EMR: build the bundle EMR runs, upload it to S3, and add the steps that run dates (boto3).

    python -m pipeline.emr package [--out dist]
    python -m pipeline.emr step --date D [--to D2] --bundle-uri s3://bucket/bundles/igdb-pipeline/0.1.0
    python -m pipeline.emr submit --date D [--to D2] --bundle-uri s3://... --cluster-id j-XXXX

The bundle (`dist/`): `igdb_pipeline.zip` (the three packages, for `--py-files`), `main.py`
(jobs/main.py, the entry point), `requirements.txt` + `constraints.txt` (installed on every node
by `bootstrap/install-python-deps.sh`), `emr.yaml` (the settings, read with `--conf s3://...`),
the bootstrap action and `configurations.json`. One EMR step per date runs
`jobs/main.py --job run`: it resumes at the first step not done, so re-adding a failed date's step
is the way to retry it. `AWS_ENDPOINT_URL` points boto3 at moto in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.config import PROJECT_ROOT
from pipeline.errors import ConfigError, ExitCode, PipelineError
from pipeline.progress import days_between

PACKAGES = ("pipeline", "ingestion", "jobs")
PYFILES = "igdb_pipeline.zip"
ENTRY = "main.py"
SETTINGS_FILE = "emr.yaml"
BOOTSTRAP = "bootstrap/install-python-deps.sh"
NOT_ON_EMR = {"pyspark"}  # EMR brings its own Spark; installing pyspark from PyPI would shadow it


def version() -> str:
    text = (PROJECT_ROOT / "setup.py").read_text(encoding="utf-8")
    found = re.search(r'version="([^"]+)"', text)
    assert found, "setup.py has no version"
    return found.group(1)


def runtime_requirements(root: Path = PROJECT_ROOT) -> list[str]:
    """setup.py's install_requires as exact pins from constraints.txt, without what EMR provides."""
    setup_text = (root / "setup.py").read_text(encoding="utf-8")
    block = setup_text.split("install_requires=[", 1)[1].split("]", 1)[0]
    names = [re.split(r"[<>=!~ ]", line.strip().strip('",'), maxsplit=1)[0]
             for line in block.splitlines() if line.strip().startswith('"')]
    pins = {}
    for line in (root / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            name, pinned = line.split("==", 1)
            pins[_normal(name)] = pinned.strip()
    missing = [n for n in names if _normal(n) not in pins and _normal(n) not in NOT_ON_EMR]
    if missing:
        raise ConfigError(f"constraints.txt pins none of {', '.join(missing)}: run `make lock`")
    return [f"{n}=={pins[_normal(n)]}" for n in names if _normal(n) not in NOT_ON_EMR]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def build_bundle(out: Path, root: Path = PROJECT_ROOT) -> dict[str, Path]:
    """Write the bundle into `out` (replaced); the files by role."""
    if out.exists():
        shutil.rmtree(out)
    (out / "bootstrap").mkdir(parents=True)
    files = {"pyfiles": out / PYFILES, "entry": out / ENTRY, "settings": out / SETTINGS_FILE,
             "requirements": out / "requirements.txt", "constraints": out / "constraints.txt",
             "bootstrap": out / BOOTSTRAP, "configurations": out / "configurations.json"}
    with zipfile.ZipFile(files["pyfiles"], "w", zipfile.ZIP_DEFLATED) as archive:
        for package in PACKAGES:
            for source in sorted((root / package).rglob("*.py")):
                archive.write(source, source.relative_to(root).as_posix())
    shutil.copyfile(root / "jobs" / "main.py", files["entry"])
    shutil.copyfile(root / "conf" / "emr.yaml", files["settings"])
    shutil.copyfile(root / "constraints.txt", files["constraints"])
    shutil.copyfile(root / BOOTSTRAP, files["bootstrap"])
    shutil.copyfile(root / "conf" / "emr" / "configurations.json", files["configurations"])
    files["requirements"].write_text("\n".join(runtime_requirements(root)) + "\n", encoding="utf-8")
    return files


def _s3_parts(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"--bundle-uri must be s3://bucket/prefix (got {uri!r})")
    return parts.netloc, parts.path.strip("/")


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


def run_step(day: dt.date, bundle_uri: str, extra: Sequence[str] = ()) -> dict[str, Any]:
    """The EMR step that runs one date (resuming), as `add_job_flow_steps` takes it.

    Client deploy mode: the driver runs on the primary node, where ingestion (plain Python) can
    reach IGDB and the step's log shows the pipeline's summary. CANCEL_AND_WAIT: a failed date
    cancels the later dates' steps (they build on it) and keeps the cluster for the retry.
    """
    _s3_parts(bundle_uri)
    base = bundle_uri.rstrip("/")
    return {
        "Name": f"igdb-pipeline run {day.isoformat()}",
        "ActionOnFailure": "CANCEL_AND_WAIT",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": ["spark-submit", "--deploy-mode", "client", "--py-files", f"{base}/{PYFILES}",
                     f"{base}/{ENTRY}", "--job", "run", "--date", day.isoformat(), "--env", "emr",
                     "--conf", f"{base}/{SETTINGS_FILE}", *extra],
        },
    }


def steps_for(first: dt.date, last: dt.date | None, bundle_uri: str) -> list[dict[str, Any]]:
    last = last or first
    if last < first:
        raise ConfigError(f"--to {last} is before --date {first}")
    return [run_step(day, bundle_uri) for day in days_between(first, last)]


def add_steps(emr: Any, cluster_id: str, steps: list[dict[str, Any]]) -> list[str]:
    return list(emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=steps)["StepIds"])


def main(argv: Sequence[str] | None = None) -> int:
    from pipeline.cli import parse_date

    parser = argparse.ArgumentParser(prog="python -m pipeline.emr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    package = sub.add_parser("package", help="build the bundle EMR runs into --out")
    package.add_argument("--out", default="dist", help="output folder (replaced; default dist)")
    for name, helptext in (("step", "print the EMR step(s) as JSON (for `aws emr add-steps --steps file://...`)"),
                           ("submit", "build and upload the bundle, then add the step(s) to a running cluster")):
        command = sub.add_parser(name, help=helptext)
        command.add_argument("--date", required=True, type=parse_date, metavar="YYYY-MM-DD")
        command.add_argument("--to", type=parse_date, metavar="YYYY-MM-DD", help="one step per date up to this one")
        command.add_argument("--bundle-uri", required=True, metavar="S3_URI",
                             help=f"where the bundle lives, e.g. s3://my-bucket/bundles/igdb-pipeline/{version()}")
        if name == "submit":
            command.add_argument("--cluster-id", required=True, help="the EMR cluster (j-...)")
            command.add_argument("--out", default="dist", help="where the bundle is built first")
    args = parser.parse_args(argv)
    try:
        if args.command == "package":
            files = build_bundle(Path(args.out))
            print(f"bundle {version()} in {args.out}/: " + ", ".join(sorted(p.name for p in files.values())))
            return ExitCode.OK
        steps = steps_for(args.date, args.to, args.bundle_uri)
        if args.command == "step":
            print(json.dumps(steps, indent=2))
            return ExitCode.OK
        import boto3
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        files = build_bundle(Path(args.out))
        try:
            uploaded = upload_bundle(boto3.client("s3"), files, args.bundle_uri)
            ids = add_steps(boto3.client("emr"), args.cluster_id, steps)
        except (Boto3Error, BotoCoreError, ClientError) as exc:
            print(f"error: AWS refused the submission: {exc}", file=sys.stderr)
            return ExitCode.FAILED
        print(f"uploaded {len(uploaded)} files to {args.bundle_uri}; added step(s) {', '.join(ids)} "
              f"to {args.cluster_id}")
        return ExitCode.OK
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)


if __name__ == "__main__":
    sys.exit(main())
