"""Every id the sandbox holds lands exactly once, whatever the API does to us (real HTTP)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ingestion.ingest import igdb_client, ingest
from ingestion.multiquery import page_source
from ingestion.sandbox.faults import Faults, Limits
from tests.conftest import DAY, landed_records, settings_for

# scenario -> (faults, the sandbox statistics that prove the fault really happened)
FAULTS = {
    "5xx": (Faults(error_rate=0.15), ["fault_5xx"]),
    "429 bursts": (Faults(burst_429_rate=0.08, burst_429_length=3, retry_after_seconds=0.05), ["fault_429"]),
    "dropped connections": (Faults(drop_rate=0.1), ["fault_drop"]),
    "truncated bodies": (Faults(truncate_rate=0.1), ["fault_truncate"]),
    "token expiry mid-run": (Faults(token_ttl_seconds=0.3, announced_ttl_seconds=3600, latency_ms=(5, 20)),
                             ["rejected_auth"]),
    "updated while paging": (Faults(mutate_rate=0.5, mutate_count=10), ["records_updated_while_paging"]),
    "sub-query errors": (Faults(subquery_error_rate=0.2), ["fault_subquery_error"]),
    "all together": (
        Faults(error_rate=0.1, burst_429_rate=0.06, burst_429_length=3, retry_after_seconds=0.05, drop_rate=0.05,
               truncate_rate=0.05, token_ttl_seconds=0.5, announced_ttl_seconds=3600, mutate_rate=0.3,
               subquery_error_rate=0.1, latency_ms=(0, 10)),
        ["fault_5xx", "fault_429", "fault_drop", "fault_truncate", "rejected_auth", "records_updated_while_paging",
         "fault_subquery_error"],
    ),
}
# both ways pages travel: several per /v4/multiquery request (the default), one per request
PATHS = {"multiquery": "true", "single page": "false"}
MULTIQUERY_ONLY = {"fault_subquery_error"}  # a single-page answer has no sub-queries to fail


def _assert_exactly_once(lake: Path, entity: str, expected_ids: list[int]) -> list[dict]:
    records = landed_records(lake, entity)
    ids = [r["id"] for r in records]
    doubled = [i for i, n in Counter(ids).items() if n > 1]
    assert not doubled, f"{entity}: ids landed twice: {doubled[:10]}"
    assert sorted(ids) == ids, f"{entity}: a partition's ids are not in ascending order"
    missing = sorted(set(expected_ids) - set(ids))
    assert not missing, f"{entity}: ids lost: {missing[:10]}"
    assert set(ids) == set(expected_ids)
    return records


@pytest.mark.parametrize("path", PATHS, ids=list(PATHS))
@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_every_id_lands_once_under_faults(fault: str, path: str, make_sandbox, tmp_path: Path) -> None:
    faults, evidence = FAULTS[fault]
    if path != "multiquery":
        if set(evidence) <= MULTIQUERY_ONLY:
            pytest.skip("a fault of multiquery answers only")
        evidence = [key for key in evidence if key not in MULTIQUERY_ONLY]
    sandbox = make_sandbox(games=1500, faults=faults)
    settings = settings_for(sandbox, tmp_path / "lake", IGDB_PAGE_SIZE=50, INGEST_PARALLEL_RANGES=4,
                            IGDB_MAX_ATTEMPTS=8, IGDB_RETRY_ROUNDS=5, IGDB_MULTIQUERY=PATHS[path],
                            # 3 pages per multiquery: requests enough for every fault to strike
                            IGDB_SUBQUERIES_PER_REQUEST=3,
                            INGEST_ENTITIES="games,genres,popularity_primitives")
    reports = ingest(settings, DAY, "test-run")

    for entity in ("games", "genres", "popularity_primitives"):
        _assert_exactly_once(tmp_path / "lake", entity, sandbox.state.store.ids(entity))
    stats = sandbox.state.stats
    for key in evidence:
        assert stats[key] > 0, f"the scenario never produced {key}, so it proved nothing"
    if "rejected_auth" in evidence:
        assert stats["tokens_issued"] > 1, "the client never fetched a new token after the 401s"
    assert {r.entity for r in reports} == {"games", "genres", "popularity_primitives"}
    assert (stats["multiquery_requests"] > 0) == (path == "multiquery"), "the pages did not travel as asked"


def test_updated_records_land_in_their_latest_seen_version_once(make_sandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(games=800, faults=Faults(mutate_rate=1.0, mutate_count=20))
    settings = settings_for(sandbox, tmp_path / "lake", IGDB_PAGE_SIZE=40, INGEST_ENTITIES="games")
    ingest(settings, DAY, "test-run")
    records = _assert_exactly_once(tmp_path / "lake", "games", sandbox.state.store.ids("games"))
    assert sandbox.state.stats["queried:games"] > 20  # pages enough for the updates to land among them
    # every landed record is a version the server really had: the current one, or an older one
    # whose updated_at is not newer than the current one
    current = {r["id"]: r for r in sandbox.state.store.records("games")}
    assert all(r["updated_at"] <= current[r["id"]]["updated_at"] for r in records)
    assert any(r["updated_at"] > 1_780_000_000 for r in records), "no record changed while paging"


def test_games_created_while_paging_are_landed(make_sandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(games=600, faults=Faults(create_rate=0.5))
    settings = settings_for(sandbox, tmp_path / "lake", IGDB_PAGE_SIZE=30, INGEST_ENTITIES="games")
    before = sandbox.state.store.size("games")
    ingest(settings, DAY, "test-run")
    ids = {r["id"] for r in landed_records(tmp_path / "lake", "games")}
    after = sandbox.state.store.ids("games")
    assert len(after) > before
    # the open last range lands games created before it finished; anything later is tomorrow's
    assert set(after[:before]) <= ids
    assert ids <= set(after)


@pytest.mark.parametrize("path", PATHS, ids=list(PATHS))
def test_client_stays_within_the_rate_and_open_limits(path: str, make_sandbox, tmp_path: Path) -> None:
    """No fault injected: a client that respects the limits never sees a 429."""
    sandbox = make_sandbox(games=1200, limits=Limits(per_second=40.0, max_open=3),
                           faults=Faults(latency_ms=(20, 60)))
    settings = settings_for(sandbox, tmp_path / "lake", IGDB_PAGE_SIZE=25, INGEST_PARALLEL_RANGES=6,
                            INGEST_ENTITIES="games", IGDB_MULTIQUERY=PATHS[path])
    ingest(settings, DAY, "test-run")
    stats = sandbox.state.stats
    assert stats["queried:games"] >= 1200 // 25
    assert stats["rejected_rate_limit"] == 0
    assert stats["rejected_open_limit"] == 0
    assert stats["peak_open"] <= 3
    _assert_exactly_once(tmp_path / "lake", "games", sandbox.state.store.ids("games"))


@pytest.mark.parametrize("path", PATHS, ids=list(PATHS))
@pytest.mark.parametrize("trial", range(2))
def test_tail_splitting_never_lands_an_id_twice(trial: int, path: str, make_sandbox, tmp_path: Path) -> None:
    """Uneven ranges: walkers that finish early split the busy ones while their pages are in flight.
    Dense ids then sparse ones make the density estimate wrong, so one in-flight page spans a split's
    midpoint: the page landing and the split must not both claim those ids."""
    from ingestion.paginator import KeysetFetcher
    from ingestion.sandbox.store import Store

    games = [{"id": i, "name": f"g{i}", "updated_at": 1_700_000_000 + i} for i in range(1, 200)]
    games += [{"id": i, "name": f"g{i}", "updated_at": 1_700_000_000 + i} for i in range(1000, 3300)]
    games += [{"id": i, "name": f"g{i}", "updated_at": 1_700_000_000 + i} for i in range(3300, 4000, 25)]
    sandbox = make_sandbox(store=Store({"games": games}), faults=Faults(latency_ms=(1, 12), seed=trial))
    settings = settings_for(sandbox, tmp_path / "lake")
    with igdb_client(settings) as client, page_source(client, PATHS[path] == "true", 10) as source:
        result = KeysetFetcher(source, "games", ("id", "name", "updated_at"), None, scratch=tmp_path / "out",
                               page_size=20, ranges=4).fetch()
    assert result.splits > 0, "no range was split, so the scenario proved nothing"
    ids = [json.loads(line)["id"] for f in result.files for line in f.path.read_bytes().splitlines()]
    assert len(ids) == len(set(ids)), "an id landed twice"
    assert ids == sorted(ids) == sandbox.state.store.ids("games")


def test_a_page_in_flight_during_a_split_is_clipped_to_the_new_bound(make_sandbox, tmp_path: Path) -> None:
    """The contract splitting relies on: ids past a range's (new) upper bound belong to the new range."""
    from ingestion.paginator import KeysetFetcher, compact_page

    sandbox = make_sandbox(games=10)
    settings = settings_for(sandbox, tmp_path / "lake")
    with igdb_client(settings) as client, page_source(client, False, 1) as source:
        fetcher = KeysetFetcher(source, "games", ("id",), None, scratch=tmp_path / "out", page_size=5, ranges=1)
        fetcher._plan()
        walked = fetcher._take()
        assert walked is not None
        planned = walked.records  # the first page, landed while planning
        walked.pages, walked.records, walked.cursor = 1, 100, 100  # as if 100 ids were landed from (0, 100]
        fetcher._max_id = 10_000
        fetcher.page_size = 10
        upper = fetcher._split_largest()  # meanwhile a page (101..105, 5000, 6000) is in flight
        assert upper is not None and walked.hi == upper.lo == 5050
        fetcher._land_page(walked, compact_page("games")([{"id": i} for i in (101, 102, 103, 5000, 6000)]))
        walked.close()
    assert walked.done and walked.cursor == 5000
    landed = [json.loads(line)["id"] for line in walked.path.read_bytes().splitlines()]
    assert landed[planned:] == [101, 102, 103, 5000], "6000 is above the new bound: the upper range lands it"


