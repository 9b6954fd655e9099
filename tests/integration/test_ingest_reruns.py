"""Reruns, watermarks and windows: a date is reproducible, the watermark only moves forward."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from core.errors import IngestError
from ingestion.ingest import ingest
from ingestion.sandbox.faults import Faults
from ingestion.sandbox.generator import DEFAULT_ANCHOR, GeneratorSpec
from ingestion.sandbox.store import Store
from tests.conftest import DAY, landed_records, partition_bytes, settings_for

ENTITIES = "games,genres,popularity_primitives"


def _manifest(lake: Path, entity: str, day: dt.date = DAY) -> dict:
    return json.loads((lake / "raw" / entity / f"dt={day}" / "_manifest.json").read_text())


def _state(lake: Path) -> dict:
    return json.loads((lake / "state" / "watermarks.json").read_text())


def test_second_run_of_a_date_changes_nothing(make_sandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(games=700)
    lake = tmp_path / "lake"
    settings = settings_for(sandbox, lake, IGDB_PAGE_SIZE=60, INGEST_ENTITIES=ENTITIES)
    ingest(settings, DAY, "run-1")
    first = {e: partition_bytes(lake, e) for e in ENTITIES.split(",")}
    first_state = (lake / "state" / "watermarks.json").read_bytes()
    first_manifests = {e: _manifest(lake, e) for e in ENTITIES.split(",")}

    ingest(settings, DAY, "run-2", force=True)

    assert {e: partition_bytes(lake, e) for e in ENTITIES.split(",")} == first
    assert (lake / "state" / "watermarks.json").read_bytes() == first_state
    for entity, before in first_manifests.items():
        after = _manifest(lake, entity)
        assert after["run_id"] == "run-2"
        for key in ("files", "records", "mode", "window", "dt", "entity"):
            assert after[key] == before[key], f"{entity}: manifest {key} changed on rerun"
    assert not list(lake.glob("raw/*/_tmp")), "staging folders left behind"
    assert sorted(p.name for p in (lake / "raw" / "games").iterdir()) == [f"dt={DAY}"]


def test_other_dates_are_untouched_by_a_rerun(make_sandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(games=300)
    lake = tmp_path / "lake"
    settings = settings_for(sandbox, lake, INGEST_ENTITIES="genres,games")
    ingest(settings, DAY - dt.timedelta(days=1), "run-a")
    ingest(settings, DAY, "run-b")
    yesterday = {p: p.read_bytes() for p in (lake / "raw").rglob(f"dt={DAY - dt.timedelta(days=1)}/*")}
    sandbox.state.store.touch("games", 0, sandbox.state.dice, ids=sandbox.state.store.ids("games")[:5])
    ingest(settings, DAY, "run-c", force=True)
    assert {p: p.read_bytes() for p in (lake / "raw").rglob(f"dt={DAY - dt.timedelta(days=1)}/*")} == yesterday


def test_incremental_window_from_watermark_then_periodic_full_refresh(make_sandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(games=900)
    store = sandbox.state.store
    lake = tmp_path / "lake"
    settings = settings_for(sandbox, lake, INGEST_ENTITIES="games", INGEST_SAFETY_MARGIN_SECONDS=3600,
                            INGEST_FULL_REFRESH_DAYS=7)
    ingest(settings, DAY, "day-1")
    assert _manifest(lake, "games")["mode"] == "full"
    assert len(landed_records(lake, "games")) == 900
    watermark = _state(lake)["games"]["watermark"]
    assert watermark == max(r["updated_at"] for r in store.records("games"))

    changed = store.touch("games", 0, sandbox.state.dice, ids=store.ids("games")[100:125])
    day2 = DAY + dt.timedelta(days=1)
    ingest(settings, day2, "day-2")
    manifest = _manifest(lake, "games", day2)
    assert manifest["mode"] == "incremental"
    assert manifest["window"]["since"] == watermark - 3600
    expected = {r["id"] for r in store.records("games") if r["updated_at"] >= watermark - 3600}
    landed = {r["id"] for r in landed_records(lake, "games", day2)}
    assert set(changed) <= landed
    assert landed == expected
    assert len(landed) < 900
    assert _state(lake)["games"]["watermark"] > watermark
    assert _state(lake)["games"]["last_full_refresh_dt"] == DAY.isoformat()

    # a rerun of day 2 after day 3 moved the watermark lands the same window again
    day3 = DAY + dt.timedelta(days=2)
    ingest(settings, day3, "day-3")
    before = partition_bytes(lake, "games", day2)
    ingest(settings, day2, "day-2-again", force=True)
    assert _manifest(lake, "games", day2)["window"]["since"] == watermark - 3600
    assert partition_bytes(lake, "games", day2) == before

    # seven days after the last full refresh, games are fully refreshed again
    day8 = DAY + dt.timedelta(days=7)
    ingest(settings, day8, "day-8")
    assert _manifest(lake, "games", day8)["mode"] == "full"
    assert _state(lake)["games"]["last_full_refresh_dt"] == day8.isoformat()


def test_full_refresh_on_request_and_watermark_never_moves_back(make_sandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(games=400)
    lake = tmp_path / "lake"
    settings = settings_for(sandbox, lake, INGEST_ENTITIES="games")
    ingest(settings, DAY, "day-1")
    sandbox.state.store.touch("games", 3, sandbox.state.dice)
    ingest(settings, DAY + dt.timedelta(days=1), "day-2")
    high = _state(lake)["games"]["watermark"]
    ingest(settings, DAY + dt.timedelta(days=2), "day-3", full_refresh=True)
    assert _manifest(lake, "games", DAY + dt.timedelta(days=2))["mode"] == "full"
    assert len(landed_records(lake, "games", DAY + dt.timedelta(days=2))) == 400
    # an older date landed later does not pull the watermark back
    ingest(settings, DAY - dt.timedelta(days=5), "old-day", full_refresh=True)
    assert _state(lake)["games"]["watermark"] == high


def test_an_older_date_landed_later_with_older_data_leaves_the_newer_watermark(make_sandbox, tmp_path: Path) -> None:
    """The test above lands the old date against the same data, so its `reached` equals the stored
    watermark and would pass without the forward-only rule; here the old date really reaches less."""
    today = make_sandbox(store=Store.generated(GeneratorSpec(games=300)))
    ten_days_ago = make_sandbox(store=Store.generated(GeneratorSpec(games=300, anchor=DEFAULT_ANCHOR - 10 * 86_400)))
    lake = tmp_path / "lake"
    ingest(settings_for(today, lake, INGEST_ENTITIES="games"), DAY, "today")
    stored = _state(lake)["games"]

    old_day = DAY - dt.timedelta(days=5)
    ingest(settings_for(ten_days_ago, lake, INGEST_ENTITIES="games"), old_day, "old-day", full_refresh=True)

    assert _manifest(lake, "games", old_day)["window"]["reached"] < stored["watermark"], "the old date reached as far"
    assert _state(lake)["games"] == stored, "an older date pulled the watermark or the full refresh date back"
    assert (stored["watermark_dt"], stored["last_full_refresh_dt"]) == (DAY.isoformat(), DAY.isoformat())


def test_pages_that_keep_failing_fail_the_run_and_name_the_gap(make_sandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(games=300)
    lake = tmp_path / "lake"
    settings = settings_for(sandbox, lake, INGEST_ENTITIES="games", IGDB_MAX_ATTEMPTS=2, IGDB_RETRY_ROUNDS=1,
                            INGEST_PARALLEL_RANGES=1)
    ingest(settings, DAY, "good")
    before = partition_bytes(lake, "games")
    state_before = _state(lake)
    sandbox.set_faults(Faults(error_rate=1.0))

    with pytest.raises(IngestError, match=r"games: pages still missing after 1 retry rounds: ids in \(0, max\]"):
        ingest(settings, DAY, "bad", force=True)

    assert partition_bytes(lake, "games") == before, "a failed run changed the published partition"
    assert _manifest(lake, "games")["run_id"] == "good"
    assert _state(lake) == state_before, "a failed run moved the watermark"
    assert sandbox.state.stats["fault_5xx"] >= 4  # 2 attempts in the first round, 2 in the retry round


@pytest.mark.parametrize("multiquery", [True, False], ids=["multiquery", "single page"])
def test_a_query_the_api_rejects_fails_at_once_with_its_cause(multiquery: bool, make_sandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(games=50)
    settings = settings_for(sandbox, tmp_path / "lake", INGEST_ENTITIES="games")
    from core.entities import ENTITIES, EntitySpec, LandingMode
    from core.lake import LocalLake
    from ingestion.ingest import Walking, igdb_client, ingest_entity
    from ingestion.multiquery import page_source
    from ingestion.watermarks import Window

    broken = EntitySpec("games", ("id", "cover.url"))  # expansions are not supported by the sandbox
    assert ENTITIES["games"].fields != broken.fields
    with igdb_client(settings) as client, page_source(client, multiquery, 10) as source, \
            pytest.raises(IngestError, match=r"HTTP 400: .*expansion not supported"):
        ingest_entity(source, LocalLake(tmp_path / "lake"), broken, DAY, Window(LandingMode.FULL, None), settings,
                      "run", Walking(4, 10 if multiquery else 1))
    assert sandbox.state.stats["rejected_syntax"] == 1
    assert not (tmp_path / "lake" / "raw" / "games" / f"dt={DAY}").exists()
