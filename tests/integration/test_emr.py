"""EMR packaging and submission: the bundle, its upload and the steps, against moto (S3 + EMR) over HTTP."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3

from core.config import load_settings
from pipeline.emr import build_bundle
from pipeline.environment import runtime_requirements
from tests.conftest import BUCKET, PROJECT_ROOT

BUNDLE = f"s3://{BUCKET}/bundles/igdb-pipeline/test"


def _cluster() -> str:
    emr = boto3.client("emr")
    return emr.run_job_flow(
        Name="igdb-test", ReleaseLabel="emr-7.9.0", Applications=[{"Name": "Spark"}],
        Instances={"InstanceCount": 1, "MasterInstanceType": "m5.xlarge", "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole")["JobFlowId"]


def test_the_bundle_holds_the_code_the_entry_point_and_pinned_dependencies(tmp_path: Path) -> None:
    files = build_bundle(tmp_path / "dist")
    with zipfile.ZipFile(files["pyfiles"]) as archive:
        names = set(archive.namelist())
    for module in ("pipeline/cli.py", "pipeline/runner.py", "ingestion/ingest.py", "jobs/transform/run.py",
                   "pipeline/main.py", "core/config.py"):
        assert module in names
    assert not any(name.startswith("tests/") for name in names)
    requirements = files["requirements"].read_text().split()
    assert requirements == runtime_requirements()
    assert all("==" in line for line in requirements)
    assert not any(line.startswith("pyspark") for line in requirements)  # EMR's Spark, never PyPI's
    assert any(line.startswith("great-expectations==") for line in requirements)
    assert files["entry"].read_text() == (PROJECT_ROOT / "pipeline" / "main.py").read_text()
    assert os.access(files["bootstrap"], os.X_OK) or files["bootstrap"].read_text().startswith("#!/bin/bash")

    # the zip alone (as --py-files puts it on sys.path) is enough to import and run the entry point
    probe = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                            "from pipeline.cli import build_parser; build_parser(); import pipeline.main",
                            str(files["pyfiles"])], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr


def test_submit_uploads_the_bundle_and_adds_one_step_per_date(aws_endpoint: str, tmp_path: Path) -> None:
    cluster = _cluster()
    result = subprocess.run([sys.executable, "-m", "pipeline.emr", "submit", "--date", "2026-11-20", "--to",
                             "2026-11-22", "--bundle-uri", BUNDLE, "--cluster-id", cluster,
                             "--out", str(tmp_path / "dist")],
                            cwd=PROJECT_ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

    s3 = boto3.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="bundles/")["Contents"]}
    prefix = "bundles/igdb-pipeline/test/"
    assert {prefix + name for name in ("igdb_pipeline.zip", "main.py", "emr.yaml", "requirements.txt",
                                       "constraints.txt", "configurations.json", "pyspark_env.tar.gz",
                                       "bootstrap/install-python-deps.sh")} == keys

    steps = boto3.client("emr").list_steps(ClusterId=cluster)["Steps"]
    by_name = {s["Name"]: s for s in steps}
    assert set(by_name) == {f"igdb-pipeline run 2026-11-{d}" for d in (20, 21, 22)}
    step = by_name["igdb-pipeline run 2026-11-21"]
    assert step["ActionOnFailure"] == "CANCEL_AND_WAIT"
    args = step["Config"]["Args"]
    assert step["Config"]["Jar"] == "command-runner.jar"
    # the driver in a YARN container (cluster mode), which unpacks the archive like the executors;
    # YARN retries a failed driver twice (the default), each attempt resuming at the failed step
    assert args == ["spark-submit", "--deploy-mode", "cluster", "--py-files", f"{BUNDLE}/igdb_pipeline.zip",
                    "--conf", f"spark.archives={BUNDLE}/pyspark_env.tar.gz#environment",
                    "--conf", "spark.pyspark.python=./environment/bin/python",
                    "--conf", "spark.pyspark.driver.python=./environment/bin/python",
                    "--conf", "spark.yarn.appMasterEnv.PYSPARK_PYTHON=./environment/bin/python",
                    "--conf", "spark.yarn.maxAppAttempts=3",
                    f"{BUNDLE}/main.py", "--job", "run", "--date", "2026-11-21", "--env", "emr",
                    "--conf", f"{BUNDLE}/emr.yaml"]

    # a cluster that does not exist: a clear error, exit 1
    missing = subprocess.run([sys.executable, "-m", "pipeline.emr", "submit", "--date", "2026-11-20", "--bundle-uri",
                              BUNDLE, "--cluster-id", "j-NOSUCHCLUSTER", "--out", str(tmp_path / "dist2")],
                             cwd=PROJECT_ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "error: AWS refused the submission" in missing.stderr, missing.stderr

    # the job reads its settings from the uploaded file, as the step says
    settings = load_settings(environ={**os.environ}, env_name="emr", conf_path=f"{BUNDLE}/emr.yaml")
    assert settings.lake_uri.startswith("s3://") and settings.log_format == "json"


def test_step_prints_the_json_for_aws_emr_add_steps_and_rejects_bad_input(tmp_path: Path) -> None:
    printed = subprocess.run([str(PROJECT_ROOT / "spark-submit.sh"), "--emr", "--date", "2026-11-20",
                              "--bundle-uri", BUNDLE], capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0, printed.stderr
    steps = json.loads(printed.stdout)
    assert [s["Name"] for s in steps] == ["igdb-pipeline run 2026-11-20"]

    for bad, says in ((["--bundle-uri", "/local/folder"], "--bundle-uri must be s3://bucket/prefix"),
                      (["--bundle-uri", BUNDLE, "--to", "2026-11-19"], "--to 2026-11-19 is before --date 2026-11-20")):
        result = subprocess.run([sys.executable, "-m", "pipeline.emr", "step", "--date", "2026-11-20", *bad],
                                cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and says in result.stderr


def test_emr_configuration_and_policy_are_what_the_jobs_need(tmp_path: Path) -> None:
    configurations = json.loads((PROJECT_ROOT / "conf/emr/configurations.json").read_text())
    by_class = {c["Classification"]: c for c in configurations}
    defaults = by_class["spark-defaults"]["Properties"]
    assert defaults["spark.sql.sources.partitionOverwriteMode"] == "dynamic"
    assert defaults["spark.pyspark.python"].endswith("python3.11")
    export = by_class["spark-env"]["Configurations"][0]["Properties"]
    assert export["PYSPARK_PYTHON"] == defaults["spark.pyspark.python"]

    policy = json.loads((PROJECT_ROOT / "conf/emr/lake-access-policy.json").read_text())
    settings = load_settings(environ={}, env_name="emr")
    bucket = settings.lake_uri.split("/")[2]
    lake_prefix = settings.lake_uri.split("/", 3)[3]
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(a.startswith("s3:") and "*" not in a for a in actions), statement  # no wildcards
        assert statement["Resource"] != "*" and bucket in statement["Resource"]
    writes = [s for s in policy["Statement"] if "s3:PutObject" in s["Action"]]
    assert [s["Resource"] for s in writes] == [f"arn:aws:s3:::{bucket}/{lake_prefix}/*"]  # only the lake is written


def test_dates_are_checked_before_anything_is_uploaded() -> None:
    from pipeline.emr import steps_for

    assert [s["Name"][-10:] for s in steps_for(dt.date(2026, 2, 27), dt.date(2026, 3, 1), BUNDLE)] == \
        ["2026-02-27", "2026-02-28", "2026-03-01"]


def test_the_environment_archive_runs_the_jobs_imports_without_the_projects_venv(tmp_path: Path) -> None:
    import tarfile

    from pipeline import environment, local_cluster

    files = build_bundle(tmp_path / "dist")
    unpacked = tmp_path / "executor" / "environment"
    with tarfile.open(files["environment"]) as archive:
        names = archive.getnames()
        archive.extractall(unpacked, filter="tar")
    assert "pyvenv.cfg" in names and "bin/python" in names
    assert not any(n.startswith("lib/python3.11/site-packages/pyspark/") for n in names)  # the cluster's own
    assert not any(n.startswith("lib/python3.11/site-packages/pip/") for n in names)
    assert os.readlink(unpacked / "bin" / "python") == "/usr/bin/python3.11"
    assert "home = /usr/bin" in (unpacked / "pyvenv.cfg").read_text()
    # nothing points back at the machine that built it
    for script in (unpacked / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            assert str(tmp_path) not in script.read_text() and sys.prefix not in script.read_text(), script

    # what an executor does: the archive's python, with the cluster's pyspark and py4j zips (as Spark
    # puts them on its Python workers' path) and the code zip, started in a folder of its own
    spark_python = Path(local_cluster.spark_home()) / "python" / "lib"
    path = [str(files["pyfiles"]), *map(str, sorted(spark_python.glob("*.zip")))]
    probe = subprocess.run([str(unpacked / "bin" / "python"), "-I", "-c",
                            "import sys; sys.path.extend(sys.argv[1:]); import great_expectations, psycopg2, orjson, "
                            "yaml, boto3, pandas, jobs.load.pgcopy, jobs.load.run, pipeline.runner; print(sys.prefix)",
                            *path], cwd=tmp_path / "executor", capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.strip() == str(unpacked)

    # a second build of the same requirements comes from the cache, byte for byte
    again = environment.environment_archive(tmp_path / "again.tar.gz", runtime_requirements())
    assert again.build_seconds == 0.0 and again.path.read_bytes() == files["environment"].read_bytes()


def test_steps_can_use_the_bootstrap_python_and_other_retries(tmp_path: Path) -> None:
    from pipeline.emr import steps_for

    [step] = steps_for(dt.date(2026, 11, 20), None, BUNDLE, python_env="bootstrap", retries=0)
    args = step["HadoopJarStep"]["Args"]
    assert not any("spark.archives" in a or "environment/bin/python" in a for a in args)
    assert "spark.yarn.maxAppAttempts=1" in args
    for bad, says in ((["--python-env", "conda"], "invalid choice"), (["--retries", "-1"], "--retries must be 0")):
        result = subprocess.run([sys.executable, "-m", "pipeline.emr", "step", "--date", "2026-11-20",
                                 "--bundle-uri", BUNDLE, *bad], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2 and says in result.stderr, result.stderr


ROLE = "arn:aws:iam::123456789012:role/igdb-pipeline-job"


def _serverless_application() -> str:
    client = boto3.client("emr-serverless")
    return client.create_application(name="igdb", releaseLabel="emr-7.9.0", type="SPARK")["applicationId"]


def test_serverless_starts_one_job_run_per_date_with_the_archive(aws_endpoint: str, tmp_path: Path) -> None:
    from pipeline import emr_serverless

    application = _serverless_application()
    sent: list[dict] = []
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("provide-client-params.emr-serverless.StartJobRun",
                                          lambda params, **_: sent.append(dict(params)))
    code = emr_serverless.main(["--date", "2026-11-20", "--to", "2026-11-22", "--application-id", application,
                                "--role-arn", ROLE, "--bundle-uri", BUNDLE, "--out", str(tmp_path / "dist")])
    assert code == 0

    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="bundles/")["Contents"]}
    assert "bundles/igdb-pipeline/test/pyspark_env.tar.gz" in keys and "bundles/igdb-pipeline/test/main.py" in keys

    client = boto3.client("emr-serverless")
    runs = client.list_job_runs(applicationId=application)["jobRuns"]
    assert sorted(r["name"] for r in runs) == [f"igdb-pipeline run 2026-11-{d}" for d in (20, 21, 22)]
    assert [p["name"][-10:] for p in sent] == ["2026-11-20", "2026-11-21", "2026-11-22"]  # in order
    run = client.get_job_run(applicationId=application, jobRunId=runs[0]["id"])["jobRun"]
    day = run["name"][-10:]
    submit = run["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"] == f"{BUNDLE}/main.py"
    assert submit["entryPointArguments"] == ["--job", "run", "--date", day, "--env", "emr",
                                             "--conf", f"{BUNDLE}/emr.yaml"]
    python = "./environment/bin/python"
    assert submit["sparkSubmitParameters"].split() == [
        "--py-files", f"{BUNDLE}/igdb_pipeline.zip",
        "--conf", f"spark.archives={BUNDLE}/pyspark_env.tar.gz#environment",
        "--conf", f"spark.pyspark.python={python}",
        "--conf", f"spark.pyspark.driver.python={python}",
        "--conf", f"spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON={python}",
        "--conf", f"spark.emr-serverless.driverEnv.PYSPARK_PYTHON={python}",
        "--conf", f"spark.executorEnv.PYSPARK_PYTHON={python}"]
    assert run["executionRole"] == ROLE
    assert all(p["retryPolicy"] == {"maxAttempts": 3} for p in sent)  # 2 retries by default
    assert len({p["clientToken"] for p in sent}) == 3


def test_serverless_stops_the_range_at_a_failed_date_and_reports_errors(aws_endpoint: str, tmp_path: Path,
                                                                       monkeypatch) -> None:
    import moto.emrserverless.models as serverless_models


    application = _serverless_application()
    monkeypatch.setattr(serverless_models, "JOB_STATUS", "FAILED")  # what AWS answers for a failed job run
    common = ["--application-id", application, "--role-arn", ROLE, "--bundle-uri", BUNDLE, "--no-upload"]
    failed = subprocess.run([sys.executable, "-m", "pipeline.emr_serverless", "--date", "2026-11-20", "--to",
                             "2026-11-22", *common], cwd=PROJECT_ROOT, env=os.environ.copy(), capture_output=True,
                            text=True, timeout=120)
    assert failed.returncode == 1 and "2026-11-20: job run" in failed.stderr and "FAILED" in failed.stderr
    runs = boto3.client("emr-serverless").list_job_runs(applicationId=application)["jobRuns"]
    assert [r["name"] for r in runs] == ["igdb-pipeline run 2026-11-20"]  # the later dates were not started

    for bad, says in ((["--to", "2026-11-19"], "--to 2026-11-19 is before --date 2026-11-20"),
                      (["--role-arn", "igdb-role"], "--role-arn must be an IAM role ARN"),
                      (["--bundle-uri", "/local/dist"], "--bundle-uri must be s3://bucket/prefix"),
                      (["--retries", "-1"], "--retries must be 0 or more"),
                      (["--to", "2026-11-21", "--no-wait"], "--no-wait starts one date only")):
        result = subprocess.run([sys.executable, "-m", "pipeline.emr_serverless", "--date", "2026-11-20", *common,
                                 *bad], cwd=PROJECT_ROOT, env=os.environ.copy(), capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2 and says in result.stderr, (bad, result.stderr)

    missing = subprocess.run([sys.executable, "-m", "pipeline.emr_serverless", "--date", "2026-11-20",
                              "--application-id", "00nosuchapp", "--role-arn", ROLE, "--bundle-uri", BUNDLE,
                              "--no-upload"], cwd=PROJECT_ROOT, env=os.environ.copy(), capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 1 and "AWS refused the submission" in missing.stderr, missing.stderr
