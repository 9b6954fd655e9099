"""dags/igdb_daily.py with real Airflow 3: parsed in a DagBag, then `airflow dags test` against
moto's EMR and EMR Serverless over HTTP (the moto server runs in this process)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import threading
import time

import boto3
import pytest

from pipeline.emr import run_step
from pipeline.emr_serverless import job_run
from reliability.scenarios import Webhook
from tests.conftest import BUCKET, PROJECT_ROOT

BUNDLE = f"s3://{BUCKET}/bundles/igdb-pipeline/test"
ROLE = "arn:aws:iam::123456789012:role/igdb-pipeline-job"
LOGICAL = "2026-11-21"
DAY = dt.date(2026, 11, 20)  # the day before the logical date

PROBE = """
import datetime as dt, json, sys, types
from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=%r)
dag = bag.dags.get("igdb_daily")
sys.path.insert(0, bag.dag_folder)
import igdb_daily
midnight = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
triggered = types.SimpleNamespace(run_after=midnight + dt.timedelta(hours=9))
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": sorted(bag.dags),
    "schedule": dag.timetable.expression, "schedule_text": str(getattr(dag, "schedule", "")),
    "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
    "dates": [str(igdb_daily.pipeline_date({"logical_date": midnight})),
              str(igdb_daily.pipeline_date({"logical_date": None, "dag_run": triggered}))],
    "tasks": {t.task_id: {"upstream": sorted(t.upstream_task_ids), "type": type(t).__name__,
                          "retries": t.retries, "exponential": t.retry_exponential_backoff,
                          "alert": [c.__name__ for c in (t.on_failure_callback or [])]} for t in dag.tasks},
}))
"""


def _airflow(environ: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """An `airflow` command; its tasks fail at once instead of waiting out the DAG's retry delays."""
    return subprocess.run(["airflow", *args], env={**environ, "IGDB_DAG_TASK_RETRIES": "0", **extra},
                          capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)


def _variables(**values: str) -> dict[str, str]:
    return {f"AIRFLOW_VAR_{name.upper()}": value for name, value in values.items()}


def _aws(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}


def test_the_dag_parses_with_no_import_errors_and_is_what_the_readme_says(airflow_home: dict[str, str]) -> None:
    probe = subprocess.run(["python", "-c", PROBE % str(PROJECT_ROOT / "dags")], env=airflow_home,
                           capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    dag = json.loads(probe.stdout.strip().splitlines()[-1])
    assert dag["errors"] == {} and dag["dags"] == ["igdb_daily"]
    assert dag["schedule"] == "0 0 * * *" and dag["schedule_text"] == "@daily"
    assert dag["catchup"] is False and dag["max_active_runs"] == 1
    # the day before the logical date; a run triggered without one: the day before it ran
    assert dag["dates"] == ["2026-11-20", "2026-11-20"]
    tasks = dag["tasks"]
    assert {name: t["upstream"] for name, t in tasks.items()} == {
        "plan": [], "choose": ["plan"], "add_step": ["choose"], "watch_step": ["add_step"],
        "start_job_run": ["choose"], "watch_job_run": ["start_job_run"]}
    assert tasks["add_step"]["type"] == "EmrAddStepsOperator" and tasks["watch_step"]["type"] == "EmrStepSensor"
    assert tasks["start_job_run"]["type"] == "EmrServerlessStartJobOperator"
    assert tasks["watch_job_run"]["type"] == "EmrServerlessJobSensor"
    assert all(t["retries"] == 2 and t["exponential"] and t["alert"] == ["alert"] for t in tasks.values())


def _record_retry_policies(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The retryPolicy of every StartJobRun moto receives (moto accepts it but does not keep it)."""
    from moto.emrserverless.responses import EMRServerlessResponse

    seen: list[object] = []
    original = EMRServerlessResponse.start_job_run

    def start_job_run(self: EMRServerlessResponse) -> object:
        seen.append(self._get_param("retryPolicy"))
        return original(self)

    monkeypatch.setattr(EMRServerlessResponse, "start_job_run", start_job_run)
    return seen


def test_a_day_runs_on_emr_serverless_with_the_same_job_run_as_make(airflow_home: dict[str, str],
                                                                    aws_endpoint: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    retry_policies = _record_retry_policies(monkeypatch)
    application = boto3.client("emr-serverless").create_application(
        name="igdb", releaseLabel="emr-7.9.0", type="SPARK")["applicationId"]
    result = _airflow(airflow_home, "dags", "test", "igdb_daily", LOGICAL, **_aws(aws_endpoint), **_variables(
        igdb_emr_target="serverless", igdb_bundle_uri=BUNDLE, igdb_emr_serverless_application_id=application,
        igdb_emr_serverless_role_arn=ROLE))
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]

    client = boto3.client("emr-serverless")
    [listed] = client.list_job_runs(applicationId=application)["jobRuns"]
    run = client.get_job_run(applicationId=application, jobRunId=listed["id"])["jobRun"]
    expected = job_run(DAY, BUNDLE, application, ROLE, retries=2)
    assert run["name"] == expected["name"] == f"igdb-pipeline run {DAY}"
    assert run["jobDriver"] == expected["jobDriver"]
    assert run["configurationOverrides"] == expected["configurationOverrides"]
    assert run["executionRole"] == ROLE
    assert retry_policies == [expected["retryPolicy"]] == [{"maxAttempts": 3}]


def _complete_steps(stop: threading.Event) -> None:
    """What EMR does with a step that succeeds: moto leaves them pending, so mark them done here."""
    from moto.emr.models import emr_backends

    while not stop.is_set():
        for backend in emr_backends.values():
            for region in backend.values():
                for cluster in region.clusters.values():
                    for step in cluster.steps:
                        step.state = "COMPLETED"
        time.sleep(0.05)


def test_a_day_runs_as_an_emr_step_with_the_same_step_as_make(airflow_home: dict[str, str],
                                                              aws_endpoint: str) -> None:
    emr = boto3.client("emr")
    cluster = emr.run_job_flow(
        Name="igdb", ReleaseLabel="emr-7.9.0", Applications=[{"Name": "Spark"}],
        Instances={"InstanceCount": 1, "MasterInstanceType": "m5.xlarge", "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole")["JobFlowId"]
    stop = threading.Event()
    completer = threading.Thread(target=_complete_steps, args=(stop,), daemon=True)
    completer.start()
    try:
        result = _airflow(airflow_home, "dags", "test", "igdb_daily", LOGICAL, **_aws(aws_endpoint), **_variables(
            igdb_emr_target="steps", igdb_bundle_uri=BUNDLE, igdb_emr_cluster_id=cluster, igdb_retries="1"))
    finally:
        stop.set()
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    [step] = emr.list_steps(ClusterId=cluster)["Steps"]
    expected = run_step(DAY, BUNDLE, retries=1)
    assert step["Name"] == expected["Name"] and step["ActionOnFailure"] == expected["ActionOnFailure"]
    assert step["Config"]["Args"] == expected["HadoopJarStep"]["Args"]
    assert "spark.yarn.maxAppAttempts=2" in step["Config"]["Args"]


def test_a_failed_job_run_fails_the_dag_run_and_posts_one_alert(airflow_home: dict[str, str], aws_endpoint: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.emrserverless.models as serverless_models

    monkeypatch.setattr(serverless_models, "JOB_STATUS", "FAILED")  # what AWS answers for a failed job run
    application = boto3.client("emr-serverless").create_application(
        name="igdb", releaseLabel="emr-7.9.0", type="SPARK")["applicationId"]
    webhook = Webhook()
    try:
        result = _airflow(airflow_home, "dags", "test", "igdb_daily", LOGICAL, **_aws(aws_endpoint), **_variables(
                              igdb_emr_target="serverless", igdb_bundle_uri=BUNDLE,
                              igdb_emr_serverless_application_id=application, igdb_emr_serverless_role_arn=ROLE,
                              igdb_alert_webhook_url=webhook.url("hook-token")))
    finally:
        webhook.server.shutdown()
    assert result.returncode != 0 or "failed" in (result.stdout + result.stderr).lower()
    assert len(webhook.bodies) == 1, webhook.bodies
    text = json.loads(webhook.bodies[0])["text"]
    assert f"dt={DAY}" in text and "watch_job_run" in text and "igdb_daily" in text
