"""The sandbox's /v4/multiquery speaks IGDB: named sub-queries, one request to the limits and faults."""

from __future__ import annotations

import json
import time

import pytest
import requests

from core.entities import ENTITIES
from ingestion.sandbox.apicalypse import MAX_SUBQUERIES, apply_query, matches, parse_query
from ingestion.sandbox.cli import add_sandbox_parser, faults_from_args
from ingestion.sandbox.faults import DEFAULT_LATENCY_MS, DEFAULT_LATENCY_PER_RECORD_MS, FaultDice, Faults, Limits
from ingestion.sandbox.generator import GeneratorSpec
from ingestion.sandbox.server import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from ingestion.sandbox.store import Store

GAME_FIELDS = ",".join(ENTITIES["games"].fields)


def _token(sandbox) -> str:
    response = requests.post(sandbox.token_url, params={"client_id": SANDBOX_CLIENT_ID,
                                                        "client_secret": SANDBOX_CLIENT_SECRET,
                                                        "grant_type": "client_credentials"}, timeout=5)
    return response.json()["access_token"]


def _post(sandbox, path: str, body: str, token: str) -> requests.Response:
    headers = {"Client-ID": SANDBOX_CLIENT_ID, "Authorization": f"Bearer {token}"}
    return requests.post(f"{sandbox.api_url}/{path}", data=body.encode(), headers=headers, timeout=30)


def _multi(sandbox, subs: list[tuple[str, str, str]], token: str) -> requests.Response:
    """POST /v4/multiquery with (endpoint, name, body) sub-queries."""
    text = "\n".join(f'query {endpoint} "{name}" {{\n  {body}\n}};' for endpoint, name, body in subs)
    return _post(sandbox, "multiquery", text, token)


def _keyset(ids: list[int], start: int, size: int = 500) -> str:
    """A keyset page body as ingestion sends it: ids[start:start+size]."""
    after = ids[start - 1] if start else 0
    return f"fields {GAME_FIELDS}; where id > {after} & id <= {ids[start + size - 1]}; sort id asc; limit {size};"


def _pages(ids: list[int], count: int, size: int = 500) -> list[tuple[str, str, str]]:
    return [("games", f"page {n}", _keyset(ids, n * size, size)) for n in range(count)]


def _wait_until_closed(sandbox, timeout: float = 5.0) -> None:
    """Wait for the server to close every open request, so the next one meets only the rate limit."""
    deadline = time.monotonic() + timeout
    while sandbox.state.open_requests and time.monotonic() < deadline:
        time.sleep(0.005)
    assert sandbox.state.open_requests == 0


def _cause(response: requests.Response) -> str:
    assert response.status_code == 400
    (error,) = response.json()
    assert error["title"] == "Syntax Error" and error["status"] == 400
    return str(error["cause"])


def test_answers_one_element_per_subquery_in_request_order(make_sandbox) -> None:
    sandbox = make_sandbox(games=300)
    token = _token(sandbox)
    ids = sandbox.state.store.ids("games")
    subs = [
        ("games", "Late games", f"fields id,name; where id > {ids[200]}; sort id desc; limit 5;"),
        ("genres", "All genres", "fields *; limit 500;"),
        ("games/count", "How many", f"where id > {ids[99]};"),
        ("games", "A page", _keyset(ids, 10, 50)),
    ]
    response = _multi(sandbox, subs, token)
    assert response.status_code == 200
    answer = response.json()
    assert [element["name"] for element in answer] == [name for _, name, _ in subs]
    assert [sorted(element) for element in answer] == [["name", "result"], ["name", "result"],
                                                       ["count", "name"], ["name", "result"]]
    assert answer[2]["count"] == 200
    assert [r["id"] for r in answer[3]["result"]] == ids[10:60]
    for (endpoint, _, body), element in zip(subs, answer, strict=True):  # what the single endpoints answer
        single = _post(sandbox, endpoint, body, token)
        assert single.status_code == 200
        assert single.json() == (element["result"] if "result" in element else {"count": element["count"]})


def test_rejects_what_igdb_rejects_with_a_cause(make_sandbox) -> None:
    sandbox = make_sandbox(games=20)
    token = _token(sandbox)
    ten = [("games", f"q{n}", "fields id; limit 1;") for n in range(MAX_SUBQUERIES)]
    assert _multi(sandbox, ten, token).status_code == 200
    assert "at most 10" in _cause(_multi(sandbox, [*ten, ("games", "q10", "fields id;")], token))
    duplicate = [("games", "same", "fields id;"), ("genres", "other", "fields id;"), ("games/count", "same", "")]
    assert _cause(_multi(sandbox, duplicate, token)) == 'Query "same": duplicate name, each query needs its own'
    bad = [("games", "fine", "fields id;"), ("games", "broken", "fields id; where name = Diablo;")]
    assert _cause(_multi(sandbox, bad, token)).startswith('Query "broken": Expecting a STRING')
    unknown = [("games", "fine", "fields id;"), ("dragons", "wyrm", "fields id;")]
    assert _cause(_multi(sandbox, unknown, token)) == "Query \"wyrm\": unknown endpoint 'dragons'"
    assert _cause(_post(sandbox, "multiquery", "  \n", token)).startswith("Empty multiquery")
    assert sandbox.state.stats["rejected_syntax"] == 5
    assert sandbox.state.stats["queried:games"] == MAX_SUBQUERIES  # the ten answered; nothing of the rejected


def test_a_multiquery_is_one_request_to_the_rate_and_open_limits(make_sandbox) -> None:
    sandbox = make_sandbox(games=200, limits=Limits(per_second=1.0, max_open=1))
    token = _token(sandbox)
    subs = [("games", f"q{n}", "fields id; limit 10;") for n in range(MAX_SUBQUERIES)]
    first = _multi(sandbox, subs, token)
    _wait_until_closed(sandbox)  # the server closes its slot just after the answer's last byte
    second = _multi(sandbox, subs, token)
    assert first.status_code == 200 and len(first.json()) == MAX_SUBQUERIES  # one of one open slot, one token
    assert second.status_code == 429 and second.json()[0]["title"] == "Too Many Requests"
    stats = sandbox.state.stats
    assert (stats["requests"], stats["multiquery_requests"], stats["rejected_rate_limit"]) == (2, 2, 1)
    assert stats["rejected_open_limit"] == 0 and stats["peak_open"] == 1


@pytest.mark.parametrize(
    ("faults", "status", "stat"),
    [
        (Faults(error_rate=1.0), 500, "fault_5xx"),
        (Faults(burst_429_rate=1.0, retry_after_seconds=2.5), 429, "fault_429"),
        (Faults(drop_rate=1.0), requests.ConnectionError, "fault_drop"),
        (Faults(truncate_rate=1.0), requests.exceptions.ChunkedEncodingError, "fault_truncate"),  # half a body
        (Faults(token_ttl_seconds=0.05, announced_ttl_seconds=3600), 401, "rejected_auth"),
    ],
    ids=["5xx", "429", "drop", "truncate", "expired-token"],
)
def test_whole_request_faults_apply_to_a_multiquery(make_sandbox, faults: Faults,
                                                    status: int | type[Exception], stat: str) -> None:
    sandbox = make_sandbox(games=50, faults=faults)
    token = _token(sandbox)
    if faults.token_ttl_seconds < 1:
        time.sleep(0.1)  # past the short-lived token's real expiry
    subs = [("games", "a", "fields id; limit 20;"), ("games/count", "b", "")]
    if not isinstance(status, int):
        with pytest.raises(status):
            _multi(sandbox, subs, token)
    else:
        response = _multi(sandbox, subs, token)
        assert response.status_code in ((500, 502, 503, 504) if status == 500 else (status,))
        if status == 429:
            assert response.headers["Retry-After"] == "2.5"
    assert sandbox.state.stats[stat] == 1
    assert sandbox.state.stats["answered"] == 0 and sandbox.state.stats["queried:games"] == 0


def test_records_change_and_appear_while_paging_by_multiquery(make_sandbox) -> None:
    sandbox = make_sandbox(games=50, faults=Faults(mutate_rate=1.0, mutate_count=3, create_rate=1.0))
    token = _token(sandbox)
    before = sandbox.state.store.size("games")
    genres = sandbox.state.store.size("genres")
    subs = [("games", "a", "fields id;"), ("genres", "b", "fields id;"), ("games", "c", "fields id;")]
    assert _multi(sandbox, subs, token).status_code == 200
    stats = sandbox.state.stats
    # before each sub-query, on its entity: IGDB answers them one after another while editors work
    assert stats["records_updated_while_paging"] == 3 and stats["records_created_while_paging"] == 3
    assert sandbox.state.store.size("games") == before + 2
    assert sandbox.state.store.size("genres") == genres + 1


def test_subquery_errors_come_inside_a_200(make_sandbox) -> None:
    sandbox = make_sandbox(games=50, faults=Faults(subquery_error_rate=1.0))
    token = _token(sandbox)
    subs = [("games", "a", "fields id;"), ("games/count", "b", ""), ("genres", "c", "fields id;")]
    response = _multi(sandbox, subs, token)
    assert response.status_code == 200
    error = {"title": "Internal Server Error", "status": 500}
    assert response.json() == [{"name": "a", "error": error}, {"name": "b", "error": error},
                               {"name": "c", "error": error}]
    stats = sandbox.state.stats
    assert stats["fault_subquery_error"] == 3 and stats["answered"] == 1 and stats["queried:games"] == 0

    sandbox.set_faults(Faults(subquery_error_rate=0.5, seed=3))
    many = [("games", f"q{n}", "fields id; limit 2;") for n in range(MAX_SUBQUERIES)]
    kinds = [sorted(element) for element in _multi(sandbox, many, token).json()]
    assert ["error", "name"] in kinds and ["name", "result"] in kinds  # each sub-query on its own dice
    assert stats["fault_subquery_error"] - 3 == kinds.count(["error", "name"])
    assert stats["queried:games"] == kinds.count(["name", "result"])
    assert _post(sandbox, "games", "fields id;", token).status_code == 200  # single queries: never


def test_latency_grows_with_the_records_in_the_answer(make_sandbox) -> None:
    per_record_ms = 0.2
    sandbox = make_sandbox(games=5000, faults=Faults(latency_per_record_ms=per_record_ms))
    token = _token(sandbox)
    ids = sandbox.state.store.ids("games")
    started = time.monotonic()
    small = _multi(sandbox, [("games", "few", _keyset(ids, 0, 10))], token)
    small_s = time.monotonic() - started
    started = time.monotonic()
    big = _multi(sandbox, _pages(ids, MAX_SUBQUERIES), token)
    big_s = time.monotonic() - started
    assert sum(len(element["result"]) for element in big.json()) == 5000 and len(small.json()[0]["result"]) == 10
    assert big_s >= 5000 * per_record_ms / 1000  # a sleep lasts at least that long: never flaky
    assert big_s - small_s >= 0.8  # 1.0 s of per-record wait against 2 ms
    started = time.monotonic()
    assert len(_post(sandbox, "games", _keyset(ids, 0, 500), token).json()) == 500
    assert time.monotonic() - started >= 500 * per_record_ms / 1000  # single queries pay per record too


def test_stats_count_what_was_asked_of_each_entity(make_sandbox) -> None:
    sandbox = make_sandbox(games=50)
    token = _token(sandbox)
    assert _post(sandbox, "games", "fields id;", token).status_code == 200
    assert _post(sandbox, "games/count", "", token).status_code == 200
    subs = [("games", "a", "fields id;"), ("games", "b", "fields id; offset 10;"), ("genres", "c", "fields id;"),
            ("games/count", "d", "")]
    assert _multi(sandbox, subs, token).status_code == 200
    stats = requests.get(f"{sandbox.url}/_sandbox/stats", timeout=5).json()["stats"]
    assert {key: stats.get(key) for key in ("requests", "answered", "multiquery_requests", "multiquery_answered",
                                            "subqueries", "queried:games", "counted:games", "queried:genres",
                                            "counted:genres")} == {
        "requests": 3, "answered": 3, "multiquery_requests": 1, "multiquery_answered": 1, "subqueries": 4,
        "queried:games": 3, "counted:games": 2, "queried:genres": 1, "counted:genres": None,
    }


def test_the_stores_json_answer_is_the_plain_encoding_also_after_edits() -> None:
    """Pages come from an id index and per-record JSON made once: what the plain evaluator and json.dumps give."""
    store = Store.generated(GeneratorSpec(games=400, seed=5))
    ids = store.ids("games")
    bodies = [f"fields {GAME_FIELDS}; where id > 0; sort id asc; limit 500;", _keyset(ids, 37, 100),
              f"fields {GAME_FIELDS}; where id > {ids[3]} & rating > 50; sort id desc; limit 40; offset 3;",
              f"fields {GAME_FIELDS}; where id = {ids[5]}.0;", f"fields {GAME_FIELDS}; where id = {ids[5]}.5;",
              f"fields {GAME_FIELDS}; where id > {ids[-1]};", "fields *; limit 30;", "fields name,id; limit 30;",
              f"fields {GAME_FIELDS}; sort name asc; limit 30;"]

    def check() -> None:
        for body in bodies:
            query = parse_query(body)
            expected = apply_query(store.records("games"), query)  # the plain evaluator, no id index
            assert store.query("games", query) == expected, body
            data, records = store.query_json("games", query)
            assert data == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode(), body
            assert records == len(expected)
            assert store.count("games", query) == sum(matches(query.where, r) for r in store.records("games")), body

    check()
    store.warm()
    check()
    dice = FaultDice(Faults(seed=1))
    store.touch("games", 20, dice)
    store.update("games", ids[40], name="Renamed ünïcode")
    store.delete("games", ids[50:60])
    store.put("games", [{**store.records("games")[0], "summary": "put back"}])
    store.create("games", dice)
    check()


def test_sandbox_cli_latency_and_subquery_flags_default_to_zero() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_sandbox_parser(parser.add_subparsers(), argparse.ArgumentParser(add_help=False))
    assert faults_from_args(parser.parse_args(["sandbox"])) == Faults()
    given = faults_from_args(parser.parse_args(["sandbox", "--latency-ms", "100-300", "--latency-per-record-ms",
                                                "0.08", "--subquery-error-rate", "0.25"]))
    assert given == Faults(latency_ms=DEFAULT_LATENCY_MS, latency_per_record_ms=DEFAULT_LATENCY_PER_RECORD_MS,
                           subquery_error_rate=0.25)
