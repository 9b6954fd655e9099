"""Local partition swaps and incremental window planning."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core.entities import LandingMode
from core.lake import LocalLake, exchange_paths
from ingestion.paginator import max_id_query, page_query
from ingestion.watermarks import EntityState, plan_window

DAY = dt.date(2026, 11, 20)


def test_exchange_swaps_two_folders_atomically(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text("A")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("B")
    assert exchange_paths(tmp_path / "a", tmp_path / "b")  # Linux: renameat2(RENAME_EXCHANGE)
    assert (tmp_path / "a" / "x").read_text() == "B"
    assert (tmp_path / "b" / "x").read_text() == "A"


def test_staged_partition_replaces_the_whole_folder(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    with lake.staged_partition("raw/e/dt=2026-01-01", "r1") as folder:
        (folder / "part-00000.jsonl").write_text("old0")
        (folder / "part-00001.jsonl").write_text("old1")
    with lake.staged_partition("raw/e/dt=2026-01-01", "r2") as folder:
        (folder / "part-00000.jsonl").write_text("new0")
    assert lake.list_files("raw/e/dt=2026-01-01") == ["part-00000.jsonl"]
    assert lake.read_text("raw/e/dt=2026-01-01/part-00000.jsonl") == "new0"
    assert not (tmp_path / "raw/e/_tmp").exists()


def test_failed_build_leaves_the_old_partition_and_no_staging(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    with lake.staged_partition("raw/e/dt=2026-01-01", "r1") as folder:
        (folder / "part-00000.jsonl").write_text("old")
    with pytest.raises(RuntimeError), lake.staged_partition("raw/e/dt=2026-01-01", "r2") as folder:
        (folder / "part-00000.jsonl").write_text("half")
        raise RuntimeError("fetch failed")
    assert lake.read_text("raw/e/dt=2026-01-01/part-00000.jsonl") == "old"
    assert not (tmp_path / "raw/e/_tmp").exists()


def test_two_rename_fallback_is_repaired_after_a_crash_between_renames(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    with lake.staged_partition("raw/e/dt=2026-01-01", "r1") as folder:
        (folder / "part-00000.jsonl").write_text("old")
    final = tmp_path / "raw/e/dt=2026-01-01"
    backup = tmp_path / "raw/e/_tmp/dt=2026-01-01.previous"
    backup.parent.mkdir(parents=True)
    final.rename(backup)  # what a crash right after the first rename leaves behind
    assert lake.read_text("raw/e/dt=2026-01-01/part-00000.jsonl") == "old"
    assert final.is_dir() and not backup.exists()


def test_small_files_are_replaced_atomically(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    lake.write_text("state/w.json", "1")
    lake.write_text("state/w.json", "2")
    assert lake.read_text("state/w.json") == "2"
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["w.json"]
    assert lake.read_text("state/missing.json") is None


def test_page_queries_are_keyset_not_offset() -> None:
    query = page_query(("id", "name"), "updated_at >= 5", 100, 200, 500)
    assert query == "fields id,name; where id > 100 & id <= 200 & (updated_at >= 5); sort id asc; limit 500;"
    assert "offset" not in query
    assert page_query(("id",), None, 0, None, 10) == "fields id; where id > 0; sort id asc; limit 10;"
    assert max_id_query(None) == "fields id; sort id desc; limit 1;"


@pytest.mark.parametrize(
    ("state", "previous", "force", "expected"),
    [
        (EntityState(), None, False, (LandingMode.FULL, None)),  # first run ever
        (EntityState(1000, "2026-11-19", "2026-11-18"), None, False, (LandingMode.INCREMENTAL, 1000 - 60)),
        (EntityState(1000, "2026-11-19", "2026-11-13"), None, False, (LandingMode.FULL, None)),  # 7 days old
        (EntityState(1000, "2026-11-19", "2026-11-18"), None, True, (LandingMode.FULL, None)),  # --full-refresh
        (EntityState(5000, "2026-11-25", "2026-11-18"), {"mode": "incremental", "window": {"since": 777}}, False,
         (LandingMode.INCREMENTAL, 777)),  # a rerun reuses its own window
        (EntityState(30, "2026-11-19", "2026-11-18"), None, False, (LandingMode.INCREMENTAL, 0)),
    ],
)
def test_plan_window(state: EntityState, previous: dict | None, force: bool, expected: tuple) -> None:
    window = plan_window(DAY, state, previous, force_full=force, margin_seconds=60, full_refresh_days=7)
    assert (window.mode, window.since) == expected
    assert window.where() == (None if expected[1] is None else f"updated_at >= {expected[1]}")
