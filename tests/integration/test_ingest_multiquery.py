"""Multiquery batching and entity-level resume, counted at the sandbox (real HTTP)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from core.entities import ENTITIES
from core.errors import IngestError
from ingestion.ingest import ingest
from ingestion.sandbox.generator import GeneratorSpec, generate_dataset
from ingestion.sandbox.store import Store
from tests.conftest import DAY, landed_records, settings_for

SMALL = 60  # games: every entity of the generated catalogue fits in one 500-record page


def test_a_small_catalogue_takes_one_request_for_the_whole_day(make_sandbox, tmp_path: Path) -> None:
    """8 entities, each one page, plus the highest-id probe of the 2 large ones: 10 sub-queries,
    the fewest requests multiquery allows is 1 (and 1 more for the 8 drift samples)."""
    sandbox = make_sandbox(games=SMALL)
    assert all(0 < sandbox.state.store.size(e) <= 500 for e in ENTITIES), "the catalogue is not small"
    ingest(settings_for(sandbox, tmp_path / "lake", INGEST_DRIFT_CHECK="false"), DAY, "small")
    assert sandbox.state.stats["requests"] == 1
    assert sandbox.state.stats["subqueries"] == len(ENTITIES) + sum(spec.large for spec in ENTITIES.values())
    for entity in ENTITIES:
        assert {r["id"] for r in landed_records(tmp_path / "lake", entity)} == set(sandbox.state.store.ids(entity))

    again = make_sandbox(games=SMALL)
    ingest(settings_for(again, tmp_path / "lake2"), DAY, "small-with-drift")
    assert again.state.stats["requests"] == 2, "the drift samples of every entity fit in one more request"


def test_without_multiquery_every_page_is_one_request(make_sandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(games=SMALL)
    ingest(settings_for(sandbox, tmp_path / "lake", INGEST_DRIFT_CHECK="false", IGDB_MULTIQUERY="false"), DAY, "one")
    stats = sandbox.state.stats
    assert stats["multiquery_requests"] == 0
    assert stats["requests"] == len(ENTITIES) + sum(spec.large for spec in ENTITIES.values())


def test_a_big_day_fills_its_requests(make_sandbox, tmp_path: Path) -> None:
    """Pages of every entity share requests: nearly every multiquery carries 10 sub-queries."""
    sandbox = make_sandbox(games=1500)
    ingest(settings_for(sandbox, tmp_path / "lake", IGDB_PAGE_SIZE=50, INGEST_DRIFT_CHECK="false"), DAY, "big")
    stats = sandbox.state.stats
    pages = sum(stats[f"queried:{e}"] for e in ENTITIES)
    assert pages > 250
    assert stats["requests"] <= math.ceil(pages / 10) * 1.25, (stats["requests"], pages)


def _catalogue_with_a_broken_popularity_page() -> tuple[Store, dict]:
    """A generated catalogue whose popularity answer repeats an id: the ingest of popularity fails
    (a page not in ascending order), every other entity lands."""
    datasets = generate_dataset(GeneratorSpec(games=300, seed=3))
    repeated = dict(datasets["popularity_primitives"][5])
    datasets["popularity_primitives"].append(repeated)
    return Store(datasets), repeated


def test_a_rerun_fetches_only_the_entities_that_failed(make_sandbox, tmp_path: Path) -> None:
    store, repeated = _catalogue_with_a_broken_popularity_page()
    sandbox = make_sandbox(store=store)
    settings = settings_for(sandbox, tmp_path / "lake", IGDB_PAGE_SIZE=100, INGEST_DRIFT_CHECK="false")
    with pytest.raises(IngestError, match=r"1 of 8 entities not landed .*popularity_primitives: .*ascending"):
        ingest(settings, DAY, "fails-at-popularity")
    lake = tmp_path / "lake"
    published = {e for e in ENTITIES if (lake / "raw" / e / f"dt={DAY}" / "_manifest.json").exists()}
    assert published == set(ENTITIES) - {"popularity_primitives"}
    asked = dict(sandbox.state.stats)

    store.put("popularity_primitives", [repeated])  # IGDB answers properly again
    reports = {r.entity: r for r in ingest(settings, DAY, "rerun")}

    stats = sandbox.state.stats
    for entity in published:
        assert stats[f"queried:{entity}"] == asked[f"queried:{entity}"], f"{entity} was requested again"
        assert reports[entity].resumed and reports[entity].queries == 0
    assert stats["queried:popularity_primitives"] > asked["queried:popularity_primitives"]
    assert not reports["popularity_primitives"].resumed
    assert {r["id"] for r in landed_records(lake, "popularity_primitives")} == set(store.ids("popularity_primitives"))

    before = dict(stats)
    ingest(settings, DAY, "forced", force=True)
    for entity in ENTITIES:
        assert stats[f"queried:{entity}"] > before[f"queried:{entity}"], f"--force did not refetch {entity}"


def test_an_entity_landed_with_another_window_is_fetched_again(make_sandbox, tmp_path: Path) -> None:
    """A full refresh asked for a date whose games landed incrementally is not 'already landed'."""
    sandbox = make_sandbox(games=200)
    lake = tmp_path / "lake"
    settings = settings_for(sandbox, lake, INGEST_ENTITIES="games", INGEST_DRIFT_CHECK="false")
    ingest(settings, DAY, "day-1")
    day2 = DAY.replace(day=DAY.day + 1)
    ingest(settings, day2, "day-2")
    asked = sandbox.state.stats["queried:games"]
    ingest(settings, day2, "day-2-again")
    assert sandbox.state.stats["queried:games"] == asked, "the same window was fetched again"
    [report] = ingest(settings, day2, "day-2-full", full_refresh=True)
    assert report.mode == "full" and not report.resumed
    assert sandbox.state.stats["queried:games"] > asked


def test_chained_pages_never_skip_a_record_that_entered_the_window_mid_chain(make_sandbox, tmp_path: Path) -> None:
    """Incremental games while editors keep touching records: a touched record enters the window
    (`updated_at >= since`) and shifts the offsets of the chain's later links. The overlap check
    must catch it: every game in the window when the day began lands once."""
    from ingestion.sandbox.faults import Faults

    sandbox = make_sandbox(games=1500)
    store, dice = sandbox.state.store, sandbox.state.dice
    lake = tmp_path / "lake"
    settings = settings_for(sandbox, lake, INGEST_ENTITIES="games", IGDB_PAGE_SIZE=20, INGEST_DRIFT_CHECK="false")
    ingest(settings, DAY, "day-1")
    store.touch("games", 0, dice, ids=store.ids("games")[::3])  # a third of the catalogue changed overnight
    day2 = DAY.replace(day=DAY.day + 1)
    since = json.loads((lake / "state" / "watermarks.json").read_text())["games"]["watermark"] - 3600
    in_window = {r["id"] for r in store.records("games") if r["updated_at"] >= since}
    assert len(in_window) >= 500
    sandbox.set_faults(Faults(mutate_rate=1.0, mutate_count=3, seed=11))

    ingest(settings, day2, "day-2")

    landed = [r["id"] for r in landed_records(lake, "games", day2)]
    assert len(landed) == len(set(landed)), "a game landed twice"
    assert in_window <= set(landed), f"games of the window lost: {sorted(in_window - set(landed))[:10]}"
    manifest = (lake / "raw" / "games" / f"dt={day2}" / "_manifest.json").read_text()
    assert '"broken_chains": 0' not in manifest and '"broken_chains"' in manifest, \
        "no chain was ever cut by a record entering the window: the scenario proved nothing"


def test_a_chain_whose_link_does_not_start_where_the_last_ended_is_cut_there(make_sandbox, tmp_path: Path) -> None:
    """The rule itself, on pages made by hand: a link is landed only when it begins with the last
    record of the link before it; what follows a broken link waits for the next round."""
    from ingestion.ingest import igdb_client
    from ingestion.multiquery import page_source
    from ingestion.paginator import KeysetFetcher, compact_page

    sandbox = make_sandbox(games=10)
    with igdb_client(settings_for(sandbox, tmp_path / "lake")) as client, page_source(client, True, 10) as source:
        (tmp_path / "out").mkdir()
        fetcher = KeysetFetcher(source, "games", ("id",), None, scratch=tmp_path / "out", page_size=3, chain=3)
        rng = fetcher._add_range(0, 0, None)
        page = compact_page("games")
        fetcher._land_chain(rng, [page([{"id": 1}, {"id": 2}, {"id": 3}]),
                                  page([{"id": 3}, {"id": 4}, {"id": 5}]),   # begins where the first ended: 4, 5
                                  page([{"id": 6}, {"id": 7}, {"id": 8}])])  # should begin with 5: a record moved
        rng.close()
    landed = [int(line) for line in (rng.path.read_bytes().replace(b'{"id":', b"").replace(b"}", b"")).split()]
    assert landed == [1, 2, 3, 4, 5]
    assert rng.cursor == 5 and not rng.done and fetcher.broken_chains == 1


def test_a_request_waits_for_the_registered_callers_about_to_ask(make_sandbox, tmp_path: Path) -> None:
    """Three callers registered, asking 20 ms apart: one request carries all three pages. A caller
    that is registered but never asks holds a request back only for the quiet spell."""
    import threading
    import time

    from ingestion.ingest import igdb_client
    from ingestion.multiquery import MultiquerySource, Query

    sandbox = make_sandbox(games=50)
    with igdb_client(settings_for(sandbox, tmp_path / "lake")) as client, MultiquerySource(client) as source:
        source.enter(3)

        def ask(delay: float) -> None:
            time.sleep(delay)
            try:
                source.fetch([Query("genres", f"fields id; where id > {delay * 100:.0f}; sort id asc; limit 5;")])
            finally:
                source.leave()

        callers = [threading.Thread(target=ask, args=(d,)) for d in (0.0, 0.02, 0.04)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        assert sandbox.state.stats["requests"] == 1 and sandbox.state.stats["subqueries"] == 3

        source.enter(2)  # one of them will never ask
        began = time.monotonic()
        [page] = source.fetch([Query("genres", "fields id; sort id asc; limit 5;")])
        assert len(page) == 5 and time.monotonic() - began < source.max_wait_seconds + 0.4
        assert sandbox.state.stats["requests"] == 2
