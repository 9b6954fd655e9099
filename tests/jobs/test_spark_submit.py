"""spark-submit runs jobs/main.py, the same code as `igdb-pipeline transform` (as on EMR)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI, DAY, PROJECT_ROOT, cli_environ


@pytest.mark.slow
def test_spark_submit_runs_the_transform_job(spark, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    env = cli_environ(IGDB_RATE_LIMIT="100", SANDBOX_GAMES="120")
    ingest = subprocess.run([*CLI, "ingest", "--date", str(DAY), "--lake", str(lake)], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert ingest.returncode == 0, ingest.stderr[-2000:]

    submit = subprocess.run([str(PROJECT_ROOT / "spark-submit.sh"), "transform", "--date", str(DAY), "--lake",
                             str(lake)], env={**env, "SPARK_SUBMIT_MASTER": "local[2]"}, cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert submit.returncode == 0, submit.stderr[-3000:]
    report = json.loads((lake / f"reports/transform/dt={DAY}/summary.json").read_text())
    assert report["rows"]["dim_games"] == 120
    assert spark.read.parquet(str(lake / "marts" / "dim_games" / f"dt={DAY}")).count() == 120

    usage = subprocess.run([str(PROJECT_ROOT / "spark-submit.sh"), "dance"], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr
