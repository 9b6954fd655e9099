"""Real Airflow for the DAG's tests, in a virtual environment of its own (dags/requirements-airflow.txt),
made once with uv and cached under .cache/ by the hash of those pins: never mixed with the pipeline's."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

PINS = PROJECT_ROOT / "dags" / "requirements-airflow.txt"
CACHE = PROJECT_ROOT / ".cache"


def airflow_venv() -> Path:
    """The cached Airflow environment, made now when missing (one maker at a time across workers)."""
    key = hashlib.sha256(PINS.read_bytes()).hexdigest()[:12]
    venv = CACHE / f"airflow-{key}"
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / "airflow.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            for older in CACHE.glob("airflow-*"):
                if older.is_dir():
                    shutil.rmtree(older, ignore_errors=True)
            uv = Path(sys.executable).parent / "uv"
            python = Path(sys.base_prefix) / "bin" / "python3.11"
            for command in ([str(uv), "venv", "--quiet", "--python", str(python), str(venv)],
                            [str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                             "-r", str(PINS)]):
                made = subprocess.run(command, capture_output=True, text=True, timeout=900)
                assert made.returncode == 0, f"{' '.join(command[:3])}: {made.stderr[-3000:]}"
            (venv / ".complete").touch()
    return venv


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An Airflow home with a migrated SQLite metadata database; the environment to run Airflow in."""
    venv = airflow_venv()
    home = tmp_path_factory.mktemp("airflow-home")
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith(("AIRFLOW", "VIRTUAL_ENV", "PYTHON"))}
    environ.update(
        PATH=f"{venv / 'bin'}:{environ.get('PATH', '')}", AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT_ROOT / "dags"), AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        # the DAG imports the pipeline's submitters (pipeline.emr, pipeline.emr_serverless)
        PYTHONPATH=str(PROJECT_ROOT))
    migrated = subprocess.run([str(venv / "bin" / "airflow"), "db", "migrate"], env=environ, capture_output=True,
                              text=True, timeout=600)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    return environ
