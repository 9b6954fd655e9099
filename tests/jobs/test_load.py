"""The load step against a real PostgreSQL: idempotent reruns, no regression from older dates,
bridges replaced per game, the per-date lock, crash safety and clear connection errors."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql

from core.database import DatabaseError, LockBusy, connect
from core.lake import LocalLake
from ingestion.ingest import ingest
from ingestion.sandbox.generator import GeneratorSpec
from ingestion.sandbox.server import start_sandbox
from ingestion.sandbox.store import Store
from jobs.load.run import LOCK_NAMESPACE, LoadError, LoadRefused, load_waves, run_load
from jobs.load.warehouse import LOADED
from jobs.transform.run import run_transform
from jobs.validate.run import ValidationFailed, run_validation
from pipeline.ledger import read_ledger
from reliability.checks import table_digests, table_rows
from tests.conftest import CLI, FAST_LIMITS, cli_environ, settings_for

D1 = dt.date(2026, 11, 19)
D2 = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def two_days(spark, tmp_path_factory) -> dict[str, Any]:
    """D1 full; then one game loses a genre, one loses all, a few change; D2 incremental. Both validated."""
    lake_dir = tmp_path_factory.mktemp("load") / "lake"
    lake = LocalLake(lake_dir)
    sandbox = start_sandbox(Store.generated(GeneratorSpec(games=200, seed=11)), limits=FAST_LIMITS)
    try:
        settings = settings_for(sandbox, lake_dir)
        ingest(settings, D1, "d1")
        store = sandbox.state.store
        game = next(g for g in store.records("games") if len(g.get("genres") or []) >= 2)
        kept, removed = game["genres"][1:], game["genres"][0]
        store.update("games", game["id"], genres=kept)
        emptied = next(g for g in store.records("games") if g["id"] != game["id"] and g.get("genres"))
        store.update("games", emptied["id"], genres=[])  # every genre removed: an empty set on D2
        store.touch("games", 0, sandbox.state.dice, ids=store.ids("games")[::25])
        ingest(settings, D2, "d2")
    finally:
        sandbox.stop()
    for day in (D1, D2):  # D2 builds on D1's catalogue once D1 passed validation
        run_transform(spark, lake, day, top_n=20)
        run_validation(spark, lake, day, f"v-{day}", data_docs=False)
    return {"lake": lake_dir, "game": game["id"], "removed_genre": removed, "kept_genres": kept,
            "emptied": emptied["id"]}


def _load(spark, two_days, day: dt.date, url: str, schema: str) -> dict[str, Any]:
    return run_load(spark, LocalLake(two_days["lake"]), day, url, schema)


@pytest.mark.parametrize("mode", ["auto", "full"])
def test_a_rerun_of_a_date_changes_nothing(spark, two_days, pg_url, pg_schema, mode: str) -> None:
    first = run_load(spark, LocalLake(two_days["lake"]), D1, pg_url, pg_schema, mode=mode)
    before = table_digests(pg_url, pg_schema)

    again = run_load(spark, LocalLake(two_days["lake"]), D1, pg_url, pg_schema, mode=mode)

    assert table_digests(pg_url, pg_schema) == before
    assert all(m["changed"] == 0 for m in again["marts"].values()), again["marts"]
    assert {name: m["rows"] for name, m in again["marts"].items()} == \
           {name: m["rows"] for name, m in first["marts"].items()}
    assert first["marts"]["dim_games"]["rows"] == 200 == first["marts"]["dim_games"]["changed"]
    # auto: the same partition is not sent again; full: every row is sent, and changes nothing
    assert {m["mode"] for m in again["marts"].values()} == {"unchanged" if mode == "auto" else "full"}
    assert [m["staged"] for m in again["marts"].values()] == \
           [0 if mode == "auto" else m["rows"] for m in again["marts"].values()]


def _rows_by_key(spark, lake_dir: Path, day: dt.date) -> dict[int, tuple]:
    frame = spark.read.parquet(str(lake_dir / "marts" / "dim_games" / f"dt={day}"))
    return {row["game_id"]: tuple(row) for row in frame.collect()}


def test_the_next_date_sends_only_the_catalogue_rows_that_differ_and_ends_as_a_full_load(
        spark, two_days, pg_url, pg_schema) -> None:
    lake, full_schema = LocalLake(two_days["lake"]), f"{pg_schema}_full"
    try:
        results = {}
        for schema, mode in ((pg_schema, "auto"), (full_schema, "full")):
            run_load(spark, lake, D1, pg_url, schema, mode=mode)
            results[mode] = run_load(spark, lake, D2, pg_url, schema, mode=mode)
        assert table_rows(pg_url, pg_schema) == table_rows(pg_url, full_schema)
    finally:
        with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(full_schema)))
        conn.close()

    before, after = _rows_by_key(spark, two_days["lake"], D1), _rows_by_key(spark, two_days["lake"], D2)
    differ = sum(1 for key, row in after.items() if before.get(key) != row)
    games = results["auto"]["marts"]["dim_games"]
    assert games["mode"] == "delta" and 0 < differ < len(after)
    assert games["staged"] == differ and games["rows"] == len(after)
    assert results["full"]["marts"]["dim_games"]["staged"] == len(after)
    assert games["changed"] == results["full"]["marts"]["dim_games"]["changed"]


def test_a_removed_genre_and_an_emptied_set_disappear_from_the_bridge(spark, two_days, pg_url, pg_schema,
                                                                       caplog) -> None:
    with caplog.at_level(logging.INFO, logger="jobs.load.run"):
        _load(spark, two_days, D1, pg_url, pg_schema)
        _load(spark, two_days, D2, pg_url, pg_schema)
    # the five bridges share one COPY of each date's game ids, dropped with the staging tables
    assert sum("staged the parents of the bridges" in r.getMessage() for r in caplog.records) == 2
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE '\\_load\\_%%'",
                    (pg_schema,))
        assert cur.fetchall() == []
    conn.close()

    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT genre_id, source_dt FROM {}.game_genres WHERE game_id = %s ORDER BY 1").format(
            sql.Identifier(pg_schema)), (two_days["game"],))
        rows = cur.fetchall()
        cur.execute(sql.SQL("SELECT genre_ids FROM {}.dim_games WHERE game_id = %s").format(
            sql.Identifier(pg_schema)), (two_days["game"],))
        [(genre_ids,)] = cur.fetchall()
        cur.execute(sql.SQL("SELECT count(*) FROM {}.game_genres WHERE game_id = %s").format(
            sql.Identifier(pg_schema)), (two_days["emptied"],))
        [(emptied_rows,)] = cur.fetchall()
        cur.execute(sql.SQL("SELECT genre_ids FROM {}.dim_games WHERE game_id = %s").format(
            sql.Identifier(pg_schema)), (two_days["emptied"],))
        [(emptied_ids,)] = cur.fetchall()
    conn.close()
    assert emptied_rows == 0 and not emptied_ids  # a set emptied on D2 leaves no stale bridge rows
    assert [genre for genre, _ in rows] == sorted(two_days["kept_genres"])
    assert two_days["removed_genre"] not in [genre for genre, _ in rows]
    assert {source for _, source in rows} == {D1}  # the relations D2 kept are not rewritten: they date from D1
    assert sorted(genre_ids) == sorted(two_days["kept_genres"])


def test_an_older_date_loaded_later_changes_nothing_the_newer_wrote(spark, two_days, pg_url, pg_schema) -> None:
    _load(spark, two_days, D2, pg_url, pg_schema)
    newer = table_rows(pg_url, pg_schema)

    older = _load(spark, two_days, D1, pg_url, pg_schema)

    assert older["marts"]["dim_games"]["mode"] == "full"  # never a delta against a newer date

    after = table_rows(pg_url, pg_schema)
    for name, rows in newer.items():
        assert set(rows) <= set(after[name]), f"{name}: a row written by {D2} changed or vanished"
    # the game whose genre D2 removed keeps D2's set: D1's older set does not come back
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT genre_id FROM {}.game_genres WHERE game_id = %s ORDER BY 1").format(
            sql.Identifier(pg_schema)), (two_days["game"],))
        assert [r[0] for r in cur.fetchall()] == sorted(two_days["kept_genres"])
        # and the game whose genres D2 removed altogether gets none of D1's back
        cur.execute(sql.SQL("SELECT count(*) FROM {}.game_genres WHERE game_id = %s").format(
            sql.Identifier(pg_schema)), (two_days["emptied"],))
        assert cur.fetchone()[0] == 0
    conn.close()


def test_a_second_load_of_the_same_date_is_refused_while_one_runs(spark, two_days, pg_url, pg_schema) -> None:
    holder = psycopg2.connect(pg_url, application_name="igdb-pipeline")
    try:
        with holder.cursor() as cur:  # what a running load of D2 holds
            cur.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, D2.toordinal()))
        with pytest.raises(LockBusy, match=rf"another load of dt={D2} is running \(PostgreSQL backend pid \d+"):
            _load(spark, two_days, D2, pg_url, pg_schema)
        _load(spark, two_days, D1, pg_url, pg_schema)  # another date is not blocked
        with holder.cursor() as cur:  # the other load ends as a load does: it unlocks (closing alone
            # releases the lock only once the server notices, which can be after the next try)
            cur.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, D2.toordinal()))
    finally:
        holder.close()
    assert _load(spark, two_days, D2, pg_url, pg_schema)["marts"]  # released: it runs


def test_odd_characters_in_the_schema_name_work(spark, two_days, pg_url) -> None:
    schema = 'odd "schema"; drop table x; --'
    try:
        result = _load(spark, two_days, D1, pg_url, schema)
        assert table_rows(pg_url, schema)["dim_games"] and result["marts"]["dim_games"]["rows"] == 200
    finally:
        with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.close()


def test_a_wrong_database_url_is_a_clear_error_without_the_password() -> None:
    url = "postgresql://loader:Sup3rS3cretPw@127.0.0.1:1/igdb"
    with pytest.raises(DatabaseError) as failed:
        connect(url)
    message = str(failed.value)
    assert "Sup3rS3cretPw" not in message
    assert "postgresql://loader:***@127.0.0.1:1/igdb" in message and "check DATABASE_URL" in message


def test_the_cli_with_a_wrong_database_url_exits_1_without_the_password(two_days, tmp_path: Path) -> None:
    result = subprocess.run([*CLI, "load", "--date", str(D1), "--lake", str(two_days["lake"])],
                            env=cli_environ(DATABASE_URL="postgresql://loader:Sup3rS3cretPw@127.0.0.1:1/igdb"),
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Sup3rS3cretPw" not in result.stderr + result.stdout
    assert "check DATABASE_URL" in result.stderr


def test_only_a_complete_passed_and_current_validation_lets_the_load_run(spark, two_days, pg_url, pg_schema,
                                                                         tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    shutil.copytree(two_days["lake"], lake_dir)
    facts = lake_dir / "marts" / "fct_game_popularity" / f"dt={D1}"
    kept = spark.read.parquet(str(facts)).collect()
    frame = spark.read.parquet(str(facts))
    rows, schema = frame.limit(0).collect(), frame.schema
    shutil.rmtree(facts)
    spark.createDataFrame(rows, schema).coalesce(1).write.parquet(str(facts))  # an empty fact
    with pytest.raises(ValidationFailed):
        run_validation(spark, LocalLake(lake_dir), D1, "empty", only=["marts/fct_game_popularity"], data_docs=False)
    with pytest.raises(LoadRefused, match="failed validation"):
        run_load(spark, LocalLake(lake_dir), D1, pg_url, pg_schema)
    shutil.rmtree(facts)
    spark.createDataFrame(kept, schema).coalesce(1).write.parquet(str(facts))
    run_validation(spark, LocalLake(lake_dir), D1, "partial", only=["marts/fct_game_popularity"], data_docs=False)
    with pytest.raises(LoadRefused, match="was partial"):
        run_load(spark, LocalLake(lake_dir), D1, pg_url, pg_schema)
    run_validation(spark, LocalLake(lake_dir), D1, "full-again", data_docs=False)
    run_transform(spark, LocalLake(lake_dir), D1, top_n=20)
    with pytest.raises(LoadRefused, match="transformed again after its validation"):
        run_load(spark, LocalLake(lake_dir), D1, pg_url, pg_schema)
    shutil.rmtree(lake_dir / "reports" / "validation")
    with pytest.raises(LoadRefused, match="has not been validated"):
        run_load(spark, LocalLake(lake_dir), D1, pg_url, pg_schema)
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (pg_schema,))
        assert cur.fetchone()[0] == 0, "a refused load creates nothing"
    conn.close()


def _hyped(url: str, schema: str, day: dt.date) -> list[Any]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT game_id FROM {}.mart_top_hyped WHERE snapshot_date = %s ORDER BY rank").format(
            sql.Identifier(schema)), (day,))
        rows = [r[0] for r in cur.fetchall()]
    conn.close()
    return rows


def test_an_empty_ranked_mart_passes_the_gate_with_a_warning_and_load_on_empty_decides(
        spark, two_days, pg_url, pg_schema, tmp_path: Path) -> None:
    """D2 loaded with its upcoming games; then D2's mart_top_hyped is written empty, as a day with
    no upcoming game gives it. The gate warns; `fail` loads nothing, `skip` keeps D2's stored rows,
    `load` (the default) replaces them with none; the other marts load either way."""
    lake_dir = tmp_path / "lake"
    shutil.copytree(two_days["lake"], lake_dir)
    lake = LocalLake(lake_dir)
    run_load(spark, lake, D1, pg_url, pg_schema)
    run_load(spark, lake, D2, pg_url, pg_schema)
    stored = _hyped(pg_url, pg_schema, D2)
    assert stored, "D2 had no upcoming game: the test shows nothing"
    hyped = lake_dir / "marts" / "mart_top_hyped" / f"dt={D2}"
    frame = spark.read.parquet(str(hyped))
    rows, schema = frame.limit(0).collect(), frame.schema
    shutil.rmtree(hyped)
    spark.createDataFrame(rows, schema).coalesce(1).write.parquet(str(hyped))
    summary = run_validation(spark, lake, D2, "empty-hyped", data_docs=False)
    assert summary["passed"] and [w["suite"] for w in summary["warned"]] == ["marts/mart_top_hyped"]
    before = table_digests(pg_url, pg_schema)

    with pytest.raises(LoadError, match=r"marts/mart_top_hyped empty for dt=2026-11-20: nothing was loaded"):
        run_load(spark, lake, D2, pg_url, pg_schema, on_empty="fail")
    assert table_digests(pg_url, pg_schema) == before
    skipped = run_load(spark, lake, D2, pg_url, pg_schema, on_empty="skip")
    assert "mart_top_hyped" not in skipped["marts"] and _hyped(pg_url, pg_schema, D2) == stored
    loaded = run_load(spark, lake, D2, pg_url, pg_schema)
    assert loaded["marts"]["mart_top_hyped"]["rows"] == 0 and _hyped(pg_url, pg_schema, D2) == []
    assert _hyped(pg_url, pg_schema, D1), "another date's rows stay"


@pytest.mark.slow
def test_sigkill_during_a_load_leaves_every_table_as_it_was(spark, two_days, pg_url, pg_schema,
                                                             tmp_path: Path) -> None:
    _load(spark, two_days, D1, pg_url, pg_schema)
    before = table_digests(pg_url, pg_schema)
    # the test holds a lock the load's first upsert needs, so the kill lands inside that transaction
    blocker = psycopg2.connect(pg_url)
    with blocker.cursor() as cur:
        cur.execute(sql.SQL("LOCK TABLE {}.dim_games IN SHARE MODE").format(sql.Identifier(pg_schema)))
    env = cli_environ(DATABASE_URL=pg_url, DATABASE_SCHEMA=pg_schema)
    proc = subprocess.Popen([*CLI, "load", "--date", str(D2), "--lake", str(two_days["lake"]),
                             "--set", "spark.shuffle_partitions=2"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    watcher = psycopg2.connect(pg_url)
    watcher.autocommit = True
    try:
        deadline = time.monotonic() + 240
        seen = None
        while seen is None and time.monotonic() < deadline and proc.poll() is None:
            with watcher.cursor() as cur:
                cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'igdb-pipeline' "
                            "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO%%dim_games%%'")
                seen = cur.fetchone()
            time.sleep(0.05)
        assert seen is not None, "the load never reached its first upsert"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        blocker.rollback()
        with watcher.cursor() as cur:  # PostgreSQL rolls back once it notices the client is gone
            for _ in range(200):
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'igdb-pipeline%%'")
                if cur.fetchone()[0] == 0:
                    break
                time.sleep(0.05)
    finally:
        watcher.close()
        blocker.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    assert table_digests(pg_url, pg_schema) == before
    ledger = {(r["dt"], r["step"]): r for r in read_ledger(pg_url, pg_schema)}
    assert ledger[(D2, "load")]["status"] == "running", "a killed step stays 'running' in the ledger"
    # the next load of D2 cleans the leftover staging table and completes
    result = _load(spark, two_days, D2, pg_url, pg_schema)
    assert result["marts"]["dim_games"]["changed"] > 0


def test_the_catalogue_loads_first_and_alone_then_every_other_mart_once() -> None:
    waves = load_waves(LOADED)
    assert [ds.name for ds in waves[0]] == ["dim_games"]  # a kill in it leaves D unloaded
    assert sorted(ds.name for wave in waves for ds in wave) == sorted(ds.name for ds in LOADED)
    versioned = [ds for ds in waves[1] if ds.parents_versioned_by]
    assert versioned and all(ds.parents_versioned_by == "dim_games" for ds in versioned)
    assert load_waves([ds for ds in LOADED if ds.name.startswith("game_")]) == [
        [ds for ds in LOADED if ds.name.startswith("game_")]]  # without the catalogue: one wave
