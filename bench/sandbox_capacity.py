"""How many records per second the sandbox itself can serve through /v4/multiquery.

The ingest benchmarks must measure the client, not the sandbox: at IGDB's limits a client can ask
for 4 multiqueries/s x 10 sub-queries x 500 games = 20,000 records/s, so the sandbox has to serve
well above that (~40,000 records/s) while the client shares the same two cores. This starts a
sandbox in its own process with limits out of the way (--rate 1000 --max-open 64, no latency)
and hammers it with 10 x 500-game keyset sub-queries from a few threads.

    python -m bench.sandbox_capacity            # or: --seconds 5 --threads 4 --games 100000

Only prints (no bench/out file): it is a check on the test harness, not a pipeline stage.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from bench.common import sandbox_process
from core.entities import ENTITIES
from ingestion.sandbox.apicalypse import MAX_SUBQUERIES
from ingestion.sandbox.server import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

PAGE = 500
FIELDS = ",".join(ENTITIES["games"].fields)  # what ingestion asks for: the realistic payload size
# every game record starts with its id (fields list it first), so counting this counts records
# without parsing megabytes of JSON on the cores the sandbox needs
RECORD_START = b'{"id":'


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)


def _call(conn: http.client.HTTPConnection, method: str, path: str, body: str = "",
          headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn.request(method, path, body=body.encode(), headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read()


def _token(url: str) -> str:
    conn = _connection(url)
    query = urlencode({"client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET,
                       "grant_type": "client_credentials"})
    status, body = _call(conn, "POST", f"/oauth2/token?{query}")
    conn.close()
    if status != 200:
        raise RuntimeError(f"token request failed: {status} {body[:200]!r}")
    return str(json.loads(body)["access_token"])


def _game_ids(url: str) -> list[int]:
    conn = _connection(url)
    status, body = _call(conn, "GET", "/_sandbox/ids/games")
    conn.close()
    if status != 200:
        raise RuntimeError(f"could not list game ids: {status}")
    return list(json.loads(body))


def multiquery_body(ids: list[int], start: int) -> str:
    """10 keyset sub-queries over consecutive 500-game windows from `ids[start]`, as ingestion pages."""
    parts = []
    for n in range(MAX_SUBQUERIES):
        lo = start + n * PAGE
        after = ids[lo - 1] if lo > 0 else 0
        upto = ids[min(lo + PAGE, len(ids)) - 1]
        parts.append(f'query games "p{n}" {{ fields {FIELDS}; where id > {after} & id <= {upto}; '
                     f"sort id asc; limit {PAGE}; }};")
    return "\n".join(parts)


def _hammer(url: str, token: str, bodies: list[str], offset: int, until: float, tally: dict[str, int],
            lock: threading.Lock) -> None:
    """One client thread: a kept-alive connection, multiquery after multiquery until `until`."""
    try:
        _hammer_until(url, token, bodies, offset, until, tally, lock)
    except (OSError, http.client.HTTPException) as exc:  # counted, so a broken sandbox cannot look fast
        with lock:
            tally["errors"] = tally.get("errors", 0) + 1
        print(f"  client thread failed: {exc!r}")


def _hammer_until(url: str, token: str, bodies: list[str], offset: int, until: float, tally: dict[str, int],
                  lock: threading.Lock) -> None:
    conn = _connection(url)
    headers = {"Client-ID": SANDBOX_CLIENT_ID, "Authorization": f"Bearer {token}"}
    mine = {"requests": 0, "records": 0, "bytes": 0, "not_200": 0}
    n = offset
    while time.monotonic() < until:
        status, data = _call(conn, "POST", "/v4/multiquery", bodies[n % len(bodies)], headers)
        n += 1
        mine["requests"] += 1
        if status != 200:
            mine["not_200"] += 1
            continue
        mine["records"] += data.count(RECORD_START)
        mine["bytes"] += len(data)
    conn.close()
    with lock:
        for key, value in mine.items():
            tally[key] = tally.get(key, 0) + value


def measure_capacity(url: str, seconds: float = 10.0, threads: int = 4) -> dict[str, Any]:
    """Serve-rate of the sandbox at `url`: records/s and requests/s over `seconds` of multiqueries."""
    token = _token(url)
    ids = _game_ids(url)
    span = MAX_SUBQUERIES * PAGE
    if len(ids) < span:
        raise ValueError(f"need at least {span} games, the sandbox has {len(ids)}")
    bodies = [multiquery_body(ids, start) for start in range(0, len(ids) - span + 1, span)]
    tally: dict[str, int] = {}
    lock = threading.Lock()
    started = time.monotonic()
    until = started + seconds
    workers = [threading.Thread(target=_hammer, args=(url, token, bodies, i * len(bodies) // threads, until,
                                                       tally, lock)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    return {
        "seconds": round(elapsed, 2), "threads": threads, "requests": tally.get("requests", 0),
        "not_200": tally.get("not_200", 0), "failed_threads": tally.get("errors", 0),
        "records": tally.get("records", 0),
        "records_per_s": round(tally.get("records", 0) / elapsed, 1),
        "requests_per_s": round(tally.get("requests", 0) / elapsed, 2),
        "mb_per_s": round(tally.get("bytes", 0) / elapsed / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with sandbox_process("--games", str(args.games), "--rate", "1000", "--max-open", "64") as info:
        print(f"sandbox-capacity: {info['games']} games, ready in {info['startup_s']}s at {info['url']}")
        result = measure_capacity(info["url"], args.seconds, args.threads)
    print(json.dumps(result))
    print(f"  {result['records_per_s']:,.0f} records/s ({result['requests_per_s']} multiqueries/s of "
          f"{MAX_SUBQUERIES} x {PAGE}); goal >= 40,000 (20,000 at IGDB's limits, plus headroom)")


if __name__ == "__main__":
    main()
