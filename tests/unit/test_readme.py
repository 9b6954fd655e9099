"""The README is a user's guide that stays short, and its runnable commands run as written."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from core.config import without_pipeline_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
README = PROJECT_ROOT / "README.md"
MAX_LINES = 350
# a block a test can run on a fresh clone, offline, without Spark or a database: marked in the README
RUNNABLE = re.compile(r"<!-- runnable -->\n```sh\n(.*?)```", re.S)


def runnable_blocks() -> list[str]:
    return RUNNABLE.findall(README.read_text(encoding="utf-8"))


def test_the_readme_is_a_short_guide() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"README.md has {lines} lines: design goes to docs/architecture.md, " \
                               "history to docs/benchmarks.md"


def test_the_readme_marks_commands_to_run() -> None:
    assert len(runnable_blocks()) >= 3


@pytest.mark.parametrize("block", runnable_blocks(), ids=lambda b: b.splitlines()[0][:40])
def test_a_runnable_readme_block_runs_as_written(block: str, tmp_path: Path) -> None:
    """Each command of the block, from the project root, as a user with the project's .venv on PATH."""
    env = without_pipeline_settings(os.environ)
    env["PATH"] = f"{PROJECT_ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["LAKE_URI"], env["PIPELINE_DATA_DIR"] = str(tmp_path / "lake"), str(tmp_path / "data")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{block}\nexit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert done.stdout.strip(), "a runnable block printed nothing"
