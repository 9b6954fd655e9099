"""A fresh directory, no settings at all: the whole pipeline runs and PostgreSQL holds the marts.

It goes through spark-submit (pipeline/main.py, exactly what EMR runs), so one run proves both the
embedded defaults (built-in sandbox, ./lake, embedded PostgreSQL) and the spark-submit entry point.
Then `igdb-pipeline run` (what `make run` calls) finds the date done, and `status` says so.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI, DAY, PROJECT_ROOT, cli_environ


def _marts(data_dir: Path) -> dict[str, int]:
    """Row counts per mart in the embedded server the run left under ./.data/postgres (restarted here)."""
    import pgserver
    import psycopg2

    server = pgserver.get_server(data_dir / "postgres", cleanup_mode="stop")
    try:
        with psycopg2.connect(server.get_uri()) as conn, conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'igdb' "
                        "AND table_name NOT LIKE '\\_load\\_%' ORDER BY 1")
            counts = {}
            for (table,) in cur.fetchall():
                cur.execute(f'SELECT count(*) FROM igdb."{table}"')
                counts[table] = cur.fetchone()[0]
        conn.close()
        return counts
    finally:
        server.cleanup()


@pytest.mark.slow
def test_a_fresh_directory_runs_the_whole_pipeline_with_no_settings(spark, tmp_path: Path) -> None:
    env = cli_environ(SPARK_SUBMIT_MASTER="local[2]")
    submit = subprocess.run([str(PROJECT_ROOT / "spark-submit.sh"), "run", "--date", str(DAY)], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert submit.returncode == 0, submit.stderr[-3000:]
    # spark-submit's PythonRunner merges the driver's stderr (our logs) into its stdout
    assert "using the built-in IGDB sandbox" in submit.stdout + submit.stderr
    assert f"igdb-pipeline dt={DAY}: done" in submit.stdout
    assert "validation: passed" in submit.stdout and "dim_games" in submit.stdout

    lake = tmp_path / "lake"
    report = json.loads((lake / f"reports/transform/dt={DAY}/summary.json").read_text())
    assert report["rows"]["dim_games"] == 2000  # the sandbox's default catalogue
    assert spark.read.parquet(str(lake / "marts" / "dim_games" / f"dt={DAY}")).count() == 2000
    assert sorted(p.name for p in (lake / "_done").iterdir()) == ["ingest", "load", "transform", "validate"]

    again = subprocess.run([*CLI, "run", "--date", str(DAY)], env=cli_environ(), cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "steps: ingest already done, transform already done, validate already done, load already done" \
        in again.stdout

    backfill = subprocess.run([*CLI, "backfill", "--from", str(DAY), "--to", str(DAY)], env=cli_environ(),
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert backfill.returncode == 0, backfill.stderr[-2000:]
    assert f"igdb-pipeline dt={DAY}: done" in backfill.stdout and "load already done" in backfill.stdout

    status = subprocess.run([*CLI, "status", "--from", str(DAY), "--to", str(DAY)], env=cli_environ(),
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr[-2000:]
    assert f"{DAY}  done       done       done       done       yes" in status.stdout

    counts = _marts(tmp_path / ".data")
    assert counts["dim_games"] == 2000 and counts["pipeline_runs"] == 4
    assert all(counts[name] > 0 for name in ("fct_game_popularity", "mart_top_rated", "dim_platforms",
                                             "game_genres"))

    usage = subprocess.run([str(PROJECT_ROOT / "spark-submit.sh"), "dance"], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr
