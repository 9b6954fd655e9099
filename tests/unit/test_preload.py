"""A run imports its later steps' modules while the first step runs, not between steps."""

from __future__ import annotations

import subprocess
import sys

from pipeline.ledger import STEPS
from pipeline.steps import STEP_MODULES, preload_modules


def test_every_step_names_the_module_it_imports() -> None:
    assert set(STEP_MODULES) == set(STEPS)


def test_only_a_transform_with_later_steps_preloads() -> None:
    assert preload_modules(["transform"]) is None
    assert preload_modules(["load"]) is None
    assert preload_modules([]) is None
    # ingest imports lazily while it runs (boto3, ...): a second importing thread could see half a module
    assert preload_modules(["ingest", "transform", "validate", "load"]) is None


def test_the_later_steps_modules_are_imported_in_the_background() -> None:
    # a fresh interpreter: this session has imported everything already
    script = (
        "import sys\n"
        "from pipeline.steps import preload_modules\n"
        "modules = ('jobs.transform.run', 'jobs.validate.run', 'great_expectations', 'jobs.load.run')\n"
        "assert not any(m in sys.modules for m in modules)\n"
        "thread = preload_modules(['transform', 'validate', 'load'])\n"
        "assert thread is not None and thread.daemon\n"
        "assert 'jobs.transform.run' in sys.modules\n"
        "thread.join(120)\n"
        "print(sorted(m for m in modules if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['great_expectations', 'jobs.load.run', 'jobs.transform.run', 'jobs.validate.run']"
