"""`make reliability`'s secrets scenario in the suite: a successful ingest and three failing runs;
no secret in any output, log, lake file, ledger row or webhook message. Whole successful runs
(every step, local mode and a standalone cluster) are searched the same way by
tests/cluster/test_standalone_run.py; `make reliability` runs this scenario with a whole `run`."""

from __future__ import annotations

from pathlib import Path

from reliability.scenarios import Context, secrets_stay_secret
from reliability.world import Postgres


def test_no_secret_reaches_the_output_files_ledger_or_messages(pg_url: str, tmp_path: Path) -> None:
    outcome = secrets_stay_secret(Context(tmp_path, Postgres(tmp_path, url=pg_url), games=100), first="ingest")
    assert outcome.passed, outcome.line()
    assert "4 runs (3 failing)" in outcome.figures
