"""The sandbox speaks IGDB: tokens, Apicalypse, error bodies and limits, over real HTTP."""

from __future__ import annotations

import threading

import requests

from ingestion.sandbox.faults import Faults, Limits
from ingestion.sandbox.server import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET


def _token(sandbox) -> str:
    response = requests.post(sandbox.token_url, params={"client_id": SANDBOX_CLIENT_ID,
                                                        "client_secret": SANDBOX_CLIENT_SECRET,
                                                        "grant_type": "client_credentials"}, timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    return body["access_token"]


def _post(sandbox, path: str, body: str, token: str | None) -> requests.Response:
    headers = {"Client-ID": SANDBOX_CLIENT_ID}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(f"{sandbox.api_url}/{path}", data=body, headers=headers, timeout=10)


def test_token_endpoint_checks_the_credentials(make_sandbox) -> None:
    sandbox = make_sandbox(games=10)
    wrong = requests.post(sandbox.token_url, params={"client_id": SANDBOX_CLIENT_ID, "client_secret": "nope",
                                                     "grant_type": "client_credentials"}, timeout=5)
    assert wrong.status_code == 403 and wrong.json()["message"] == "invalid client secret"
    assert _token(sandbox) != _token(sandbox)


def test_queries_filter_sort_limit_and_count(make_sandbox) -> None:
    sandbox = make_sandbox(games=300)
    token = _token(sandbox)
    ids = sandbox.state.store.ids("games")
    page = _post(sandbox, "games", f"fields id,name; where id > {ids[9]} & id <= {ids[30]}; sort id asc; limit 5;",
                 token)
    assert page.status_code == 200
    assert [r["id"] for r in page.json()] == ids[10:15]
    assert all(set(r) <= {"id", "name"} for r in page.json())
    top = _post(sandbox, "games", "fields id; sort id desc; limit 1;", token).json()
    assert top == [{"id": ids[-1]}]
    listed = _post(sandbox, "games", f"fields id; where id = ({ids[0]},{ids[5]}) | id = {ids[7]}; limit 10;",
                   token).json()
    assert [r["id"] for r in listed] == [ids[0], ids[5], ids[7]]
    count = _post(sandbox, "games/count", f"where id > {ids[99]};", token).json()
    assert count == {"count": 200}
    genres = _post(sandbox, "genres", "fields *; limit 500;", token).json()
    assert len(genres) == sandbox.state.store.size("genres") and {"id", "name", "slug"} <= set(genres[0])


def test_igdb_errors_for_bad_queries_and_missing_tokens(make_sandbox) -> None:
    sandbox = make_sandbox(games=10)
    token = _token(sandbox)
    too_many = _post(sandbox, "games", "fields id; limit 501;", token)
    assert too_many.status_code == 400
    assert too_many.json()[0]["title"] == "Syntax Error" and "500" in too_many.json()[0]["cause"]
    unquoted = _post(sandbox, "games", "fields id; where name = Diablo;", token)
    assert unquoted.status_code == 400 and "Diablo" in unquoted.json()[0]["cause"]
    assert _post(sandbox, "games", "fields id;", None).status_code == 401
    assert _post(sandbox, "games", "fields id;", "not-a-token").json()["message"].startswith("Authorization Failure")
    assert _post(sandbox, "dragons", "fields id;", token).status_code == 404


def test_expired_token_is_refused(make_sandbox) -> None:
    sandbox = make_sandbox(games=10, faults=Faults(token_ttl_seconds=0.05, announced_ttl_seconds=3600))
    token = _token(sandbox)
    import time

    time.sleep(0.1)
    assert _post(sandbox, "games", "fields id;", token).status_code == 401


def test_more_than_the_rate_or_open_limit_gets_429(make_sandbox) -> None:
    sandbox = make_sandbox(games=10, limits=Limits(per_second=4.0, max_open=8))
    token = _token(sandbox)
    statuses = [_post(sandbox, "games", "fields id;", token).status_code for _ in range(8)]
    assert statuses[:4] == [200] * 4 and 429 in statuses[4:]
    assert sandbox.state.stats["rejected_rate_limit"] >= 1

    slow = make_sandbox(games=10, limits=Limits(per_second=100.0, max_open=2), faults=Faults(latency_ms=(300, 300)))
    token = _token(slow)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(_post(slow, "games", "fields id;", token).status_code))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 200, 429, 429]
    assert slow.state.stats["rejected_open_limit"] == 2
