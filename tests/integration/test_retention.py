"""Retention (`igdb-pipeline gc`) on real lakes: what goes, what stays and why, the run lock, leftovers.

The lakes here are laid out as the pipeline lays them out (every layer, `dt=` partitions, done
markers); the story in tests/jobs/test_days.py runs gc on a lake the pipeline wrote and reruns
the next date on it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from pathlib import Path

import boto3
import psycopg2

from core.config import load_settings
from core.database import RUN_LOCK_NAMESPACE
from core.lake import TMP_TAG, LocalLake, S3Lake
from pipeline.ledger import STEPS, ledger_step
from pipeline.progress import StepState
from pipeline.retention import collect, collection_lines, plan_collection, protected
from tests.conftest import CLI, PROJECT_ROOT, cli_environ

FIRST = dt.date(2026, 10, 1)
DAYS = [FIRST + dt.timedelta(days=n) for n in range(40)]  # 2026-10-01 .. 2026-11-09
AS_OF = dt.date(2026, 11, 10)
LIFECYCLE_BUCKET = "igdb-lake-lifecycle-test"
DATASETS = ("raw/games", "raw/genres", "staging/games", "quarantine/games", "marts/dim_games", "marts/dim_genres",
            "marts/fct_game_popularity", "marts/game_genres", "marts/mart_top_rated", "reports/transform",
            "reports/validation", "reports/drift")


def _lake(root: Path, failed: dt.date) -> LocalLake:
    """Forty dates of every layer; every step done for each date but `failed`, whose validation failed."""
    for day in DAYS:
        for ds in DATASETS:
            folder = root / ds / f"dt={day}"
            folder.mkdir(parents=True)
            (folder / "part-00000.parquet").write_bytes(b"rows")
        for step in STEPS:
            if day != failed or step in ("ingest", "transform"):
                (root / "_done" / step).mkdir(parents=True, exist_ok=True)
                (root / "_done" / step / f"dt={day}").write_text("{}")
    (root / "state").mkdir()
    (root / "state" / "watermarks.json").write_text("{}")
    return LocalLake(root)


def _states(failed: dt.date) -> dict[dt.date, dict[str, StepState]]:
    done, missing = StepState("done"), StepState("failed", "3 critical failures")
    return {day: {step: done if day != failed or step in ("ingest", "transform") else missing for step in STEPS}
            for day in DAYS}


def test_old_partitions_go_but_not_what_later_runs_read(tmp_path: Path) -> None:
    failed = dt.date(2026, 10, 5)  # a date not done, older than the retention
    lake = _lake(tmp_path / "lake", failed)

    plan = plan_collection(lake, _states(failed), AS_OF, 30, dt.timedelta(hours=24))

    assert plan.cutoff == dt.date(2026, 10, 11)
    assert sorted(plan.remove) == [d for d in DAYS if d < plan.cutoff and d != failed]
    assert all(len(parts) == len(DATASETS) for day, parts in plan.remove.items() if day != dt.date(2026, 10, 4))
    # the failed date keeps everything; the date before it keeps what its rerun builds on
    assert {p for p, why in plan.kept.items() if f"dt={failed}" in p} == {f"{ds}/dt={failed}" for ds in DATASETS}
    base = dt.date(2026, 10, 4)
    assert {p for p in plan.kept if f"dt={base}" in p} == {
        f"{ds}/dt={base}" for ds in ("marts/dim_games", "marts/dim_genres", "marts/fct_game_popularity",
                                     "reports/transform", "reports/validation")}
    assert set(plan.remove[base]) == {f"{ds}/dt={base}" for ds in ("raw/games", "raw/genres", "staging/games",
                                                                    "quarantine/games", "marts/game_genres",
                                                                    "marts/mart_top_rated", "reports/drift")}
    assert "builds on it" in plan.kept[f"marts/dim_games/dt={base}"]


def test_the_newest_catalogue_and_the_last_loaded_date_are_kept_however_old(tmp_path: Path) -> None:
    partitions = {day: [f"{ds}/dt={day}" for ds in DATASETS] for day in DAYS[:3]}
    states = {day: {step: StepState("done") for step in STEPS} for day in DAYS[:3]}
    states[DAYS[2]]["load"] = StepState("failed", "refused")  # transformed and validated, never loaded
    keep = protected(partitions, states)
    assert keep[f"marts/dim_games/dt={DAYS[2]}"].startswith("dt=")  # not done: all of it
    assert keep[f"marts/fct_game_popularity/dt={DAYS[1]}"] == f"dt={DAYS[2]} (not done) builds on it"
    states[DAYS[2]]["load"] = StepState("done")  # now loaded: the newest catalogue, and the last loaded date
    keep = protected(partitions, states)
    assert keep[f"marts/fct_game_popularity/dt={DAYS[2]}"].startswith("the newest catalogue")
    assert not any(f"dt={DAYS[1]}" in p for p in keep)
    assert f"raw/games/dt={DAYS[1]}" not in keep and not any(f"dt={DAYS[0]}" in p for p in keep)


def test_gc_removes_them_skips_a_locked_date_and_leaves_markers_and_state(tmp_path: Path, pg_url: str) -> None:
    failed = dt.date(2026, 10, 5)
    root = tmp_path / "lake"
    lake = _lake(root, failed)
    settings = load_settings(environ={"LAKE_URI": str(root), "DATABASE_URL": pg_url, "RETENTION_DAYS": "30"})
    locked = dt.date(2026, 10, 2)
    dry = collect(settings, _states(failed), AS_OF, dry_run=True, lake=lake)
    assert (root / "raw/games" / f"dt={FIRST}").is_dir(), "a dry run removes nothing"
    assert collection_lines(dry, True)[0].startswith(f"gc as of {AS_OF}: partitions before 2026-10-11 would remove")

    holder = psycopg2.connect(pg_url)
    try:
        with holder.cursor() as cur:  # a run of that date is going on
            cur.execute("SELECT pg_advisory_lock(%s, %s)", (RUN_LOCK_NAMESPACE, locked.toordinal()))
        done = collect(settings, _states(failed), AS_OF, lake=lake)
    finally:
        holder.close()

    assert done.busy == [locked] and (root / "raw/games" / f"dt={locked}").is_dir()
    for day in DAYS:
        listed = {ds for ds in DATASETS if (root / ds / f"dt={day}").is_dir()}
        if day >= done.cutoff or day in (failed, locked):
            assert listed == set(DATASETS), day
        elif day == dt.date(2026, 10, 4):
            assert listed == {"marts/dim_games", "marts/dim_genres", "marts/fct_game_popularity",
                              "reports/transform", "reports/validation"}
        else:
            assert listed == set(), day
    assert all((root / "_done" / "load" / f"dt={day}").exists() for day in DAYS if day != failed)
    assert (root / "state" / "watermarks.json").is_file()
    assert done.partitions == sum(len(p) for p in dry.remove.values()) - len(DATASETS)  # the locked date stayed


def _age(path: Path, hours: float) -> None:
    stamp = time.time() - hours * 3600
    for folder, _, files in os.walk(path):
        os.utime(folder, (stamp, stamp))
        for name in files:
            os.utime(Path(folder) / name, (stamp, stamp))


def test_leftovers_of_killed_writes_older_than_a_day_are_swept(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    old = root / "raw/games/_tmp/dt=2026-11-01.run-1"
    young = root / "raw/games/_tmp/dt=2026-11-02.run-2"
    repair = root / "raw/genres/_tmp/dt=2026-11-01.previous"  # its partition is missing: the repair needs it
    spark_left = root / "staging/games/_temporary/0"
    staging_left = root / "marts/dim_games/.spark-staging-1234"
    for folder in (old, young, repair, spark_left, staging_left):
        folder.mkdir(parents=True)
        (folder / "part-00000").write_bytes(b"x")
    for folder in (old, repair, spark_left.parent, staging_left):
        _age(folder, 30)
    found = LocalLake(root).leftovers(dt.timedelta(hours=24))
    assert found == ["marts/dim_games/.spark-staging-1234", "raw/games/_tmp/dt=2026-11-01.run-1",
                     "staging/games/_temporary"]


def test_gc_from_the_command_line_reads_the_ledger(tmp_path: Path, pg_url: str, pg_schema: str) -> None:
    failed = dt.date(2026, 10, 5)
    root = tmp_path / "lake"
    _lake(root, failed)
    for day, steps in _states(failed).items():  # the ledger agrees with the markers
        for step, state in steps.items():
            if state.status == "done":
                with ledger_step(pg_url, pg_schema, day, step, "r"):
                    pass
    result = subprocess.run([*CLI, "gc", "--as-of", str(AS_OF), "--dry-run", "--lake", str(root)],
                            env=cli_environ(DATABASE_URL=pg_url, DATABASE_SCHEMA=pg_schema), capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"gc as of {AS_OF}: partitions before 2026-10-11 would remove: 103 of 9 date(s); "
                               f"17 kept"), lines[0]
    assert f"  kept 12 partition(s): dt={failed} is not done: its rerun reads it (e.g. marts/dim_games/dt={failed})" \
        in lines
    assert (root / "raw/games" / f"dt={FIRST}").is_dir()


def test_s3_staging_uploads_are_tagged_for_the_lifecycle_rule_and_live_files_are_not(aws_endpoint: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=LIFECYCLE_BUCKET)  # its own bucket: moto's state outlives the server
    lake = S3Lake(f"s3://{LIFECYCLE_BUCKET}/igdb")
    key, value = TMP_TAG.split("=")
    rule = json.loads((PROJECT_ROOT / "conf/emr/lake-lifecycle.json").read_text())
    s3.put_bucket_lifecycle_configuration(Bucket=LIFECYCLE_BUCKET, LifecycleConfiguration=rule)  # S3 checks it
    expiring = [r for r in rule["Rules"] if "Expiration" in r]
    assert expiring[0]["Filter"]["And"]["Tags"] == [{"Key": key, "Value": value}]

    seen_while_staged: list[list[dict[str, str]]] = []
    with lake.staged_partition("raw/games/dt=2026-11-20", "run-1") as folder:
        (folder / "part-00000.jsonl").write_bytes(b'{"id": 1}\n')
        (folder / "_manifest.json").write_text("{}")
    for item in s3.list_objects_v2(Bucket=LIFECYCLE_BUCKET, Prefix="igdb/")["Contents"]:
        seen_while_staged.append(s3.get_object_tagging(Bucket=LIFECYCLE_BUCKET, Key=item["Key"])["TagSet"])
    assert seen_while_staged and all(tags == [] for tags in seen_while_staged), "a live file would expire"

    staged = "igdb/raw/games/_tmp/dt=2026-11-21.run-9/part-00000.jsonl"  # what a killed publish leaves
    s3.upload_file(__file__, LIFECYCLE_BUCKET, staged, ExtraArgs={"Tagging": TMP_TAG})
    s3.put_object(Bucket=LIFECYCLE_BUCKET, Key="igdb/staging/games/_temporary/0/part-1.parquet", Body=b"x")
    assert s3.get_object_tagging(Bucket=LIFECYCLE_BUCKET, Key=staged)["TagSet"] == [{"Key": key, "Value": value}]
    assert lake.leftovers(dt.timedelta(hours=24)) == []  # written just now: a write may still be going on
    assert lake.leftovers(dt.timedelta(seconds=-60)) == ["raw/games/_tmp/dt=2026-11-21.run-9",
                                                          "staging/games/_temporary"]
