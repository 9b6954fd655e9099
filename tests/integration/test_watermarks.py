"""The watermark state file: updates only move forward and concurrent writers never lose each other.

Runs on a real local folder lake and on S3 through moto's server mode (real HTTP, conditional
puts included: moto honours If-Match and If-None-Match on PutObject).
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import multiprocessing.synchronize
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from core.entities import LandingMode
from core.lake import Lake, LocalLake, S3Lake, open_lake
from ingestion.watermarks import STATE_PATH, EntityState, WatermarkConflict, WatermarkStore
from tests.conftest import BUCKET

D1 = dt.date(2026, 11, 19)
D2 = dt.date(2026, 11, 20)
W1 = 1_780_000_000
W2 = W1 + 86_400


@pytest.fixture(params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    """Each test runs on both lakes: a local folder, and S3 through a moto server on 127.0.0.1."""
    if request.param == "local":
        return LocalLake(tmp_path / "lake")
    request.getfixturevalue("aws_endpoint")
    # moto keeps its buckets for the whole process, across servers: a prefix of its own per test
    return S3Lake(f"s3://{BUCKET}/wm-{uuid.uuid4().hex[:12]}", staging_root=tmp_path / "staging")


def _stored(lake: Lake) -> dict:
    data = lake.read_bytes(STATE_PATH)
    assert data is not None, "no state file"
    return json.loads(data)


# --- write_if: the compare-and-swap both lakes provide -------------------------------------------


def test_write_if_only_writes_over_the_version_it_was_given(lake: Lake) -> None:
    rel = "state/w.json"
    assert lake.read_versioned(rel) == (None, None)
    assert lake.write_if(rel, b"one", None)  # None: create only
    one, v1 = lake.read_versioned(rel)
    assert (one, v1 is not None) == (b"one", True)

    assert not lake.write_if(rel, b"two", None), "create-only write replaced an existing object"
    assert lake.read_bytes(rel) == b"one"

    assert lake.write_if(rel, b"two", v1)  # the current version: written
    two, v2 = lake.read_versioned(rel)
    assert two == b"two" and v2 != v1

    assert not lake.write_if(rel, b"three", v1), "a write based on a stale version went through"
    assert lake.read_versioned(rel) == (b"two", v2)

    lake.delete(rel)
    assert not lake.write_if(rel, b"three", v2), "a write expecting an object that is gone went through"
    assert lake.read_bytes(rel) is None


def test_local_write_if_leaves_only_the_file_and_its_lock(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    assert lake.write_if("state/w.json", b"1", None)
    _, version = lake.read_versioned("state/w.json")
    assert lake.write_if("state/w.json", b"2", version)
    assert not lake.write_if("state/w.json", b"3", version)
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["w.json", "w.json.lock"]


# --- the watermark and the full refresh date only move forward -----------------------------------


def test_an_older_date_with_older_data_leaves_the_newer_watermark(lake: Lake) -> None:
    store = WatermarkStore(lake)
    store.advance("games", D2, LandingMode.INCREMENTAL, W2)
    before = lake.read_bytes(STATE_PATH)

    # D1 (re)landed after D2: its records reach an older updated_at
    kept = store.advance("games", D1, LandingMode.INCREMENTAL, W1)

    assert kept.watermark == W2 and kept.watermark_dt == D2.isoformat()
    assert store.get("games").watermark == W2
    assert store.get("games").watermark_dt == D2.isoformat()
    assert lake.read_bytes(STATE_PATH) == before, "nothing moved, yet the state file was rewritten"


def test_a_newer_reach_moves_the_watermark_whatever_the_date(lake: Lake) -> None:
    store = WatermarkStore(lake)
    store.advance("games", D2, LandingMode.INCREMENTAL, W1)
    moved = store.advance("games", D1, LandingMode.INCREMENTAL, W2)  # a rerun that saw newer edits
    assert (moved.watermark, moved.watermark_dt) == (W2, D1.isoformat())
    assert store.get("games") == moved


def test_an_older_full_refresh_leaves_the_newer_full_refresh_date(lake: Lake) -> None:
    store = WatermarkStore(lake)
    store.advance("games", D2, LandingMode.FULL, W2)
    store.advance("games", D1, LandingMode.FULL, W1)
    state = store.get("games")
    assert (state.watermark, state.watermark_dt, state.last_full_refresh_dt) == (W2, D2.isoformat(), D2.isoformat())


def test_advance_keeps_the_other_entities(lake: Lake) -> None:
    store = WatermarkStore(lake)
    store.advance("games", D2, LandingMode.FULL, W2)
    store.advance("genres", D1, LandingMode.FULL, W1)
    assert set(_stored(lake)) == {"games", "genres"}
    assert store.get("games").watermark == W2


# --- racing writers ---------------------------------------------------------------------------


def _race(workers: list[Callable[[], None]]) -> None:
    """Run the workers in threads released together by a barrier; re-raise the first failure."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(work: Callable[[], None]) -> None:
        try:
            barrier.wait()
            work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racing writer hung"
    if errors:
        raise errors[0]


def _advance_entities(lake: Lake, names: list[str], reached: int) -> Callable[[], None]:
    def work() -> None:
        store = WatermarkStore(lake)
        for name in names:
            store.advance(name, D2, LandingMode.FULL, reached)
    return work


def test_threads_advancing_different_entities_keep_every_update(lake: Lake) -> None:
    threads, per_thread = 8, 6
    names = {t: [f"e{t}_{i}" for i in range(per_thread)] for t in range(threads)}
    _race([_advance_entities(lake, names[t], W1 + t) for t in range(threads)])

    stored = _stored(lake)
    missing = sorted({n for ns in names.values() for n in ns} - set(stored))
    assert not missing, f"{len(missing)} updates were lost to a concurrent writer: {missing[:5]}"
    for t, ns in names.items():
        assert all(stored[n]["watermark"] == W1 + t for n in ns)


def test_threads_landing_different_dates_of_one_entity_keep_the_newest(lake: Lake) -> None:
    dates = [D1 + dt.timedelta(days=i) for i in range(12)]
    entities = [f"games{r}" for r in range(6)]  # several rounds of the race in one go

    def land(i: int) -> Callable[[], None]:
        def work() -> None:
            store = WatermarkStore(lake)
            for entity in entities:
                store.advance(entity, dates[i], LandingMode.FULL, W1 + i)
        return work

    _race([land(i) for i in reversed(range(len(dates)))])  # newest first: the likeliest to be overwritten
    for entity in entities:
        state = WatermarkStore(lake).get(entity)
        assert (state.watermark, state.watermark_dt) == (W1 + len(dates) - 1, dates[-1].isoformat()), entity
        assert state.last_full_refresh_dt == dates[-1].isoformat(), entity


def _advance_in_process(uri: str, names: list[str], reached: int, barrier: multiprocessing.synchronize.Barrier,
                        ) -> None:
    """A second ingest process: waits for the other at the barrier, then advances its entities."""
    lake = open_lake(uri)
    barrier.wait(timeout=60)
    _advance_entities(lake, names, reached)()


def test_two_processes_advancing_different_entities_keep_every_update(lake: Lake) -> None:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, like a second ingest run
    barrier = context.Barrier(2)
    names = {p: [f"p{p}_{i}" for i in range(40)] for p in range(2)}
    procs = [context.Process(target=_advance_in_process, args=(lake.uri, names[p], W1 + p, barrier))
             for p in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0, 0]

    stored = _stored(lake)
    missing = sorted({n for ns in names.values() for n in ns} - set(stored))
    assert not missing, f"{len(missing)} updates were lost to the other process: {missing[:5]}"
    assert {n: EntityState(**stored[n]).watermark for n in names[1]} == dict.fromkeys(names[1], W1 + 1)


# --- a conflict, step by step -------------------------------------------------------------------


class RivalledLake(LocalLake):
    """A real local lake on which another writer lands an entity of its own between each read and
    write of ours, `rivals` times: the race above, made deterministic. Nothing is faked: the
    rival's advance and our write_if run as they would in two processes."""

    def __init__(self, root: Path, rivals: int) -> None:
        super().__init__(root)
        self.rivals_left = rivals
        self.rival = WatermarkStore(LocalLake(root))

    def write_if(self, rel: str, data: bytes, expected: str | None) -> bool:
        if self.rivals_left:
            self.rivals_left -= 1
            self.rival.advance(f"rival{self.rivals_left}", D1, LandingMode.FULL, W1)
        return super().write_if(rel, data, expected)


def test_advance_rereads_after_a_conflict_and_keeps_the_rivals_update(tmp_path: Path) -> None:
    lake = RivalledLake(tmp_path, rivals=3)
    state = WatermarkStore(lake).advance("games", D2, LandingMode.FULL, W2)
    assert state.watermark == W2
    assert set(_stored(lake)) == {"games", "rival0", "rival1", "rival2"}


def test_advance_gives_up_rather_than_write_over_a_file_that_keeps_changing(tmp_path: Path) -> None:
    lake = RivalledLake(tmp_path, rivals=1000)
    store = WatermarkStore(lake)
    store.max_attempts = 3
    with pytest.raises(WatermarkConflict, match=r"games: state/watermarks.json kept changing"):
        store.advance("games", D2, LandingMode.FULL, W2)
    assert set(_stored(lake)) == {"rival999", "rival998", "rival997"}, "our write went over the rivals'"
