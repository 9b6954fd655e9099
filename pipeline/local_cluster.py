"""A Spark standalone cluster on this machine: a master and workers of one core each, on 127.0.0.1.

    python -m pipeline.local_cluster up [--workers 2] [--dir .cluster]     (make cluster-up)
    python -m pipeline.local_cluster status [--dir .cluster]
    python -m pipeline.local_cluster down [--dir .cluster]                 (make cluster-down)

Started from the installed pyspark's own jars (`spark-class ...deploy.master.Master` and
`...deploy.worker.Worker`), so nothing is downloaded. Unlike local mode, the driver and each
executor are separate JVMs with their own working directories, and the executors' Python comes
from the environment archive: what EMR does, on one machine. `up` prints the master URL for
`SPARK_SUBMIT_MASTER=<url> ./spark-submit.sh run --date D`; `.cluster/cluster.json` keeps it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pyspark

from core.config import PROJECT_ROOT
from core.errors import ConfigError, ExitCode, PipelineError, tool_main

HOST = "127.0.0.1"
STATE_FILE = "cluster.json"
DEFAULT_DIR = PROJECT_ROOT / ".cluster"
READY_SECONDS = 90.0


@dataclass(frozen=True)
class Cluster:
    master_url: str
    web_url: str
    workers: int
    pids: tuple[int, ...]
    directory: str

    def alive_workers(self) -> int:
        """Workers the master counts as ALIVE (its web UI's JSON), 0 when the master does not answer."""
        try:
            with urllib.request.urlopen(f"{self.web_url}/json/", timeout=2) as answer:
                state = json.load(answer)
        except OSError:
            return 0
        return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")

    def wait_ready(self, seconds: float = READY_SECONDS) -> None:
        """Return once every worker is registered; stop the cluster and raise if that does not happen."""
        deadline = time.monotonic() + seconds
        while self.alive_workers() < self.workers:
            if time.monotonic() > deadline or not all(_ours(pid, Path(self.directory)) for pid in self.pids):
                stop(Path(self.directory))
                raise PipelineError(f"the local cluster did not start ({self.alive_workers()} of {self.workers} "
                                    f"workers registered): see {Path(self.directory) / 'logs'}")
            time.sleep(0.5)


def spark_home() -> Path:
    return Path(pyspark.__file__).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _daemon_environ(directory: Path) -> dict[str, str]:
    """The daemons' environment: loopback only, and nothing of the caller's Python leaking to executors."""
    environ = {key: value for key, value in os.environ.items()
               if key not in {"PYTHONPATH", "VIRTUAL_ENV", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"}}
    environ.update(SPARK_HOME=str(spark_home()), SPARK_LOCAL_IP=HOST, SPARK_LOG_DIR=str(directory / "logs"),
                   SPARK_NO_DAEMONIZE="1")
    return environ


def _spawn(directory: Path, name: str, arguments: Sequence[str]) -> int:
    log = open(directory / "logs" / f"{name}.log", "ab")  # the daemon keeps its own handle
    process = subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *arguments], stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=directory,
                               env=_daemon_environ(directory), start_new_session=True)
    log.close()
    return process.pid


def start(directory: Path = DEFAULT_DIR, workers: int = 2, worker_memory: str = "2g", wait: bool = True) -> Cluster:
    """Start a master and `workers` one-core workers; return once every worker is registered
    (with wait=False at once: `wait_ready()` later, while the JVMs start)."""
    directory = directory.resolve()
    existing = read_state(directory)
    if existing is not None and existing.alive_workers() > 0:
        raise ConfigError(f"a cluster already runs from {directory} ({existing.master_url}): "
                          "`make cluster-down` first")
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    port, web_port = _free_port(), _free_port()
    master_url, web_url = f"spark://{HOST}:{port}", f"http://{HOST}:{web_port}"
    pids = [_spawn(directory, "master", ["org.apache.spark.deploy.master.Master", "--host", HOST,
                                         "--port", str(port), "--webui-port", str(web_port)])]
    for number in range(1, workers + 1):
        work = directory / f"worker-{number}"
        work.mkdir(exist_ok=True)
        pids.append(_spawn(directory, f"worker-{number}", [
            "org.apache.spark.deploy.worker.Worker", "--host", HOST, "--cores", "1", "--memory", worker_memory,
            "--webui-port", "0", "--work-dir", str(work), master_url]))
    cluster = Cluster(master_url, web_url, workers, tuple(pids), str(directory))
    (directory / STATE_FILE).write_text(json.dumps(asdict(cluster), indent=2), encoding="utf-8")
    if wait:
        cluster.wait_ready()
    return cluster


def read_state(directory: Path = DEFAULT_DIR) -> Cluster | None:
    path = directory / STATE_FILE
    if not path.exists():
        return None
    fields = json.loads(path.read_text(encoding="utf-8"))
    return Cluster(**{**fields, "pids": tuple(fields["pids"])})


def _ours(pid: int, directory: Path) -> bool:
    """Whether `pid` is still one of this cluster's daemons: a Spark deploy JVM working in `directory`.

    PIDs are reused (this machine wraps at 32768), and a daemon started with its own session leads
    its process group: signalling the group of a recorded pid that now belongs to, say, a
    PostgreSQL postmaster would kill that server. So a pid is checked before any signal."""
    try:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):  # a child of ours that exited: reaped now
            return False
    except ChildProcessError:
        pass  # not our child (make cluster-up started it): ask /proc
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return cwd == directory and b"org.apache.spark.deploy." in cmdline


def stop(directory: Path = DEFAULT_DIR, grace_seconds: float = 10.0) -> int:
    """Stop the daemons recorded in `directory` (each with its process group); how many were running."""
    directory = directory.resolve()
    cluster = read_state(directory)
    if cluster is None:
        return 0
    running = [pid for pid in cluster.pids if _ours(pid, directory)]
    for pid in running:
        _signal_group(pid, directory, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while any(_ours(pid, directory) for pid in running) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in running:
        _signal_group(pid, directory, signal.SIGKILL)
    (directory / STATE_FILE).unlink(missing_ok=True)
    return len(running)


def _signal_group(pid: int, directory: Path, signum: int) -> None:
    """Signal a daemon's process group (the JVM and anything it started), if it is still ours."""
    if _ours(pid, directory):
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass


@tool_main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.local_cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("up", "status", "down"))
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="state and logs (default .cluster)")
    parser.add_argument("--workers", type=int, default=2, help="workers of one core each (up; default 2)")
    parser.add_argument("--worker-memory", default="2g", help="memory each worker offers (up; default 2g)")
    args = parser.parse_args(argv)
    if args.command == "up":
        cluster = start(args.dir, args.workers, args.worker_memory)
        print(f"spark standalone cluster up: {cluster.master_url} ({cluster.workers} workers, "
              f"UI {cluster.web_url})")
        print(f"  SPARK_SUBMIT_MASTER={cluster.master_url} ./spark-submit.sh run --date YYYY-MM-DD")
        return ExitCode.OK
    if args.command == "status":
        found = read_state(args.dir.resolve())
        if found is None:
            print("no local cluster")
            return ExitCode.FAILED
        print(f"{found.master_url}: {found.alive_workers()} of {found.workers} workers alive (UI {found.web_url})")
        return ExitCode.OK if found.alive_workers() else ExitCode.FAILED
    print(f"stopped {stop(args.dir)} cluster process(es)")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
