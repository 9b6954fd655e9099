"""`make cluster-down` signals only the cluster's own daemons: a recorded pid that now belongs to
another process (pids wrap at 32768 here) is left alone, whatever leads its process group."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pipeline import local_cluster


def test_stop_leaves_a_process_that_reused_a_recorded_pid_alone(tmp_path: Path) -> None:
    # a process group leader, as a PostgreSQL postmaster is (pg_ctl starts it in a session of its own)
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True, cwd=tmp_path)
    try:
        state = local_cluster.Cluster("spark://127.0.0.1:1", "http://127.0.0.1:1", 2, (stranger.pid,),
                                      str(tmp_path))
        (tmp_path / local_cluster.STATE_FILE).write_text(json.dumps(state.__dict__ | {"pids": [stranger.pid]}))
        assert local_cluster.stop(tmp_path, grace_seconds=0.5) == 0
        assert stranger.poll() is None, "cluster-down killed a process that was not the cluster's"
        assert not (tmp_path / local_cluster.STATE_FILE).exists()
    finally:
        stranger.kill()
        stranger.wait()
