"""igdb_daily: the pipeline's daily schedule for Apache Airflow 3 (as on Amazon MWAA).

One DAG run per day submits the day before its logical date to EMR and waits for it: EMR steps
on a running cluster, or an EMR Serverless job run, chosen by the Airflow Variable
`igdb_emr_target` ("steps" or "serverless"). The step and the job run are the ones
`make emr-run` and `make emr-serverless-run` submit (pipeline.emr, pipeline.emr_serverless), so
there is one definition of how a date runs. A task that fails after its retries posts to the
webhook the pipeline itself notifies. A range is Airflow's own backfill of this DAG
(`airflow backfill create --dag-id igdb_daily --from-date ... --to-date ...`); catchup is off, so
a paused DAG does not flood EMR with the days it missed.

Variables: igdb_emr_target, igdb_bundle_uri (s3://... of `make package`'s upload),
igdb_emr_cluster_id (steps), igdb_emr_serverless_application_id and igdb_emr_serverless_role_arn
(serverless), igdb_alert_webhook_url (optional), igdb_retries (optional, attempts after a failed
one, per date: default 2). Connection: aws_default.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator, EmrServerlessStartJobOperator
from airflow.providers.amazon.aws.sensors.emr import EmrServerlessJobSensor, EmrStepSensor
from airflow.sdk import DAG, Variable, task

from pipeline.emr import DEFAULT_RETRIES, run_step
from pipeline.emr_serverless import job_run
from pipeline.notify import notify

DAG_ID = "igdb_daily"
TARGETS = {"steps": "add_step", "serverless": "start_job_run"}
# Airflow's retries, around the EMR submission (EMR's own retries are the Variable igdb_retries);
# the workers' environment may lower them (the DAG's tests fail fast with 0)
TASK_RETRIES = int(os.environ.get("IGDB_DAG_TASK_RETRIES", "2"))


def pipeline_date(context: dict[str, Any]) -> dt.date:
    """The date a DAG run processes: the whole day before its logical date (yesterday, for today's
    run). A run triggered without a logical date (Airflow 3 allows it) uses the time it ran after."""
    when = context.get("logical_date") or context["dag_run"].run_after
    return when.date() - dt.timedelta(days=1)


def alert(context: dict[str, Any]) -> None:
    """on_failure_callback: one message to the pipeline's webhook naming the DAG run and task."""
    ti = context["task_instance"]
    day = pipeline_date(context)
    notify(Variable.get("igdb_alert_webhook_url", default=None),
           f"igdb-pipeline dt={day}: Airflow task {ti.task_id} of {ti.dag_id} failed after "
           f"{ti.try_number} attempt(s) (run {context['run_id']})")


with DAG(
    dag_id=DAG_ID,
    description="IGDB catalogue and popularity marts, one date a day, on EMR",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,  # the planned step and job run reach the operators as dicts
    doc_md=__doc__,
    tags=["igdb", "emr"],
    default_args={
        "owner": "data-engineering",
        "retries": TASK_RETRIES,
        "retry_delay": dt.timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=30),
        "on_failure_callback": alert,
        "aws_conn_id": "aws_default",
    },
) as dag:

    @task(multiple_outputs=True)
    def plan(**context: Any) -> dict[str, Any]:
        """The date, the target, and the step or job run that runs it (from the Variables)."""
        day = pipeline_date(context)
        target = Variable.get("igdb_emr_target", default="steps")
        if target not in TARGETS:
            raise ValueError(f"Variable igdb_emr_target must be one of {sorted(TARGETS)} (got {target!r})")
        bundle = Variable.get("igdb_bundle_uri")
        retries = int(Variable.get("igdb_retries", default=str(DEFAULT_RETRIES)))
        planned: dict[str, Any] = {"date": day.isoformat(), "target": target, "step": None, "job_run": None}
        if target == "steps":
            planned["step"] = run_step(day, bundle, retries=retries)
        else:
            planned["job_run"] = job_run(day, bundle, Variable.get("igdb_emr_serverless_application_id"),
                                         Variable.get("igdb_emr_serverless_role_arn"), retries)
        return planned

    @task.branch
    def choose(target: str) -> str:
        return TARGETS[target]

    planned = plan()
    add_step = EmrAddStepsOperator(task_id="add_step", job_flow_id="{{ var.value.igdb_emr_cluster_id }}",
                                   steps="{{ [ti.xcom_pull(task_ids='plan', key='step')] }}")
    watch_step = EmrStepSensor(task_id="watch_step", job_flow_id="{{ var.value.igdb_emr_cluster_id }}",
                               step_id="{{ ti.xcom_pull(task_ids='add_step')[0] }}", poke_interval=60,
                               mode="reschedule", timeout=6 * 3600)
    start_job_run = EmrServerlessStartJobOperator(
        task_id="start_job_run",
        application_id="{{ ti.xcom_pull(task_ids='plan', key='job_run')['applicationId'] }}",
        execution_role_arn="{{ ti.xcom_pull(task_ids='plan', key='job_run')['executionRoleArn'] }}",
        job_driver="{{ ti.xcom_pull(task_ids='plan', key='job_run')['jobDriver'] }}",
        configuration_overrides="{{ ti.xcom_pull(task_ids='plan', key='job_run')['configurationOverrides'] }}",
        config="{{ {'retryPolicy': ti.xcom_pull(task_ids='plan', key='job_run')['retryPolicy']} }}",
        name="{{ ti.xcom_pull(task_ids='plan', key='job_run')['name'] }}",
        wait_for_completion=False)
    watch_job_run = EmrServerlessJobSensor(
        task_id="watch_job_run", application_id="{{ ti.xcom_pull(task_ids='plan', key='job_run')['applicationId'] }}",
        job_run_id=start_job_run.output, poke_interval=60, mode="reschedule", timeout=6 * 3600)

    choose(planned["target"]) >> [add_step, start_job_run]
    add_step >> watch_step
    start_job_run >> watch_job_run
