"""A whole date through `spark-submit.sh` on a real standalone cluster, against local mode.

The driver runs ingestion and plans; two executors in JVMs of their own, in their own working
directories, run the transform, the gate's Spark work and the load's COPY with the bundle of
`make package` only: the code from the --py-files zip, the packages from the environment archive
(not the project's .venv). The marts must equal, table by table, a local-mode run of the same raw
data, and no secret may reach any output, log, file, ledger row or webhook message of either side
(the failing runs of `make reliability`'s secrets scenario are tests/reliability/test_secrets.py).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from ingestion.sandbox.generator import GeneratorSpec
from ingestion.sandbox.server import start_sandbox
from ingestion.sandbox.store import Store
from pipeline import local_cluster
from reliability.checks import files_containing
from reliability.scenarios import Webhook
from reliability.world import Postgres
from tests.conftest import (
    DAY,
    FAST_LIMITS,
    PROJECT_ROOT,
    cli_environ,
    cli_in_process,
    partition_bytes,
    sandbox_environ,
)

ENTITIES = ("games", "platforms", "genres", "themes", "game_modes", "player_perspectives", "popularity_types",
            "popularity_primitives")
# what differs by nature between two runs: run ids, times, and the digest of the file names
# (which hold a run's uuid); loaded_partitions is compared on what was loaded and how
RUN_TABLES = {"pipeline_runs", "loaded_partitions"}
LOADED_AS = {"mart", "dt", "mode", "staged_rows"}
SCHEMA = "igdb"
SIDES = ("local", "cluster")


def _tables(url: str, schema: str) -> dict[str, list[str]]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position) "
                        "FROM information_schema.columns WHERE table_schema = %s "
                        "AND table_name NOT LIKE '\\_load\\_%%' GROUP BY table_name", (schema,))
            return dict(cur.fetchall())
    finally:
        conn.close()


def _rows(url: str, table: str, columns: list[str]) -> Counter[tuple[object, ...]]:
    """Every row of igdb.`table` (those columns), as a multiset."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(map(sql.Identifier, columns)),
                                                           sql.Identifier(SCHEMA, table)))
            return Counter(tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in cur.fetchall())
    finally:
        conn.close()


def _ledger_text(url: str) -> str:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(SCHEMA, "pipeline_runs")))
            return "\n".join(row[0] for row in cur.fetchall())
    finally:
        conn.close()


@pytest.mark.slow
def test_a_date_on_the_cluster_equals_local_mode_table_by_table(standalone_cluster: local_cluster.Cluster,
                                                               pg_url: str, tmp_path: Path, spark,
                                                               monkeypatch: pytest.MonkeyPatch, capfd) -> None:
    client_secret, password = f"cluster-secret-{secrets.token_hex(6)}", f"pw-{secrets.token_hex(6)}"
    hook_token = f"hook-{secrets.token_hex(6)}"
    webhook = Webhook()
    postgres = Postgres(tmp_path, url=pg_url)
    role = f"cluster_{secrets.token_hex(3)}"
    postgres.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(role)), (password,))
    # a database per side: a run locks its date in its database, and the two sides run at once
    databases = {side: f"{role}_{side}" for side in SIDES}
    for database in databases.values():
        postgres.create_database(database)
        postgres.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database),
                                                                          sql.Identifier(role)))

    sandbox = start_sandbox(Store.generated(GeneratorSpec(games=600, seed=7)), limits=FAST_LIMITS,
                            client_id="cluster-client", client_secret=client_secret)
    try:
        def environ(side: str, **extra: str) -> dict[str, str]:
            return cli_environ(**sandbox_environ(sandbox, tmp_path / side / "lake", IGDB_CLIENT_ID="cluster-client",
                                                 IGDB_CLIENT_SECRET=client_secret,
                                                 DATABASE_URL=postgres.url_for(databases[side], user=role,
                                                                               password=password),
                                                 SLACK_WEBHOOK_URL=webhook.url(hook_token),
                                                 # a small catalogue: 2 partitions, as the suite's sessions
                                                 SPARK_SHUFFLE_PARTITIONS="2"), **extra)

        for side in SIDES:
            (tmp_path / side).mkdir()
        # the two sides side by side: local mode is `igdb-pipeline run` in this process, on the
        # session's warm JVM (a cold one of its own would cost more than the cluster's side; the
        # command's own process is tests/jobs/test_spark_submit.py), while the cluster's JVMs start
        with cli_in_process(monkeypatch, tmp_path / "local", environ("local")) as cli, ThreadPoolExecutor(1) as pool:
            local_code = pool.submit(cli, ["run", "--date", str(DAY)])
            standalone_cluster.wait_ready()
            on_cluster = subprocess.run(
                [str(PROJECT_ROOT / "spark-submit.sh"), "run", "--date", str(DAY)], cwd=tmp_path / "cluster",
                env=environ("cluster", SPARK_SUBMIT_MASTER=standalone_cluster.master_url,
                            SPARK_SUBMIT_BUNDLE=str(tmp_path / "bundle")),
                capture_output=True, text=True, timeout=900)
            code = local_code.result(timeout=600)
        said = capfd.readouterr()
        local = subprocess.CompletedProcess(["igdb-pipeline", "run"], code, said.out, said.err)
        assert local.returncode == 0, local.stderr[-3000:]
        assert f"igdb-pipeline dt={DAY}: done" in local.stdout, "the local run's output was not captured"
        assert on_cluster.returncode == 0, (on_cluster.stdout + on_cluster.stderr)[-5000:]
        assert f"igdb-pipeline dt={DAY}: done" in on_cluster.stdout
    finally:
        sandbox.stop()
        webhook.server.shutdown()

    # the same raw data on both sides (ingestion ran on each driver, against one catalogue)
    for entity in ENTITIES:
        landed = partition_bytes(tmp_path / "cluster" / "lake", entity)
        assert landed and landed == partition_bytes(tmp_path / "local" / "lake", entity), entity

    # the executors were the cluster's: two apps' executors, each in its own working directory,
    # with the archive unpacked there and the code zip beside it
    executors = sorted(Path(standalone_cluster.directory).glob("worker-*/app-*/*"))
    assert {e.parent.parent.name for e in executors} == {"worker-1", "worker-2"}
    for executor in executors:
        assert (executor / "environment" / "bin" / "python").exists(), executor
        assert (executor / "igdb_pipeline.zip").exists(), executor
        assert os.readlink(executor / "environment" / "bin" / "python").endswith("/bin/python3.11")

    urls = {side: postgres.url_for(database) for side, database in databases.items()}
    local_tables, cluster_tables = _tables(urls["local"], SCHEMA), _tables(urls["cluster"], SCHEMA)
    assert local_tables == cluster_tables and "dim_games" in local_tables
    compared = 0
    for table, columns in sorted(local_tables.items()):
        if table in RUN_TABLES:
            columns = [c for c in columns if c in LOADED_AS]
            if table == "pipeline_runs":
                continue
        local_rows, cluster_rows = _rows(urls["local"], table, columns), _rows(urls["cluster"], table, columns)
        differing = (local_rows - cluster_rows) + (cluster_rows - local_rows)
        assert not differing, f"{table}: {sum(differing.values())} rows differ between local mode and the cluster"
        assert local_rows, table
        compared += 1
    assert compared == len(local_tables) - 1

    # no secret in either side's output, lake, bundle or the executors' logs
    needles = [client_secret, password, hook_token, *sandbox.state.tokens]
    for run in (local, on_cluster):
        for needle in needles:
            assert needle not in run.stdout + run.stderr, "a run printed a secret"
    assert files_containing(tmp_path / "local", needles) == []
    assert files_containing(tmp_path / "cluster", needles) == []
    logs = [p for p in Path(standalone_cluster.directory).rglob("*") if p.name in {"stdout", "stderr"}
            or p.suffix == ".log"]
    assert logs and not [p for p in logs if any(n.encode() in p.read_bytes() for n in needles)]
    assert len(webhook.bodies) == 2  # each run's summary
    assert not [body for body in webhook.bodies for n in needles if n in body], "a webhook message holds a secret"
    ledger = _ledger_text(urls["local"]) + "\n" + _ledger_text(urls["cluster"])
    assert ledger.count("\n") >= 7 and not [n for n in needles if n in ledger], "the ledger holds a secret"
