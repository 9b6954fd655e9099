"""An IGDB-compatible HTTP server on 127.0.0.1: tokens, Apicalypse queries, limits and faults.

It stands in for IGDB where there are no Twitch credentials (`make run` on a laptop, CI, tests)
and misbehaves on demand (`Faults`), so the client's retries and exactly-once landing are tested
against real HTTP. Admin endpoints under `/_sandbox/` let tests and benchmarks steer it.

Routes: `POST /oauth2/token`; `POST /v4/<entity>` and `/v4/<entity>/count` (one Apicalypse
query); `POST /v4/multiquery` (up to apicalypse.MAX_SUBQUERIES named sub-queries, answered as one JSON
array in request order). A multiquery is one request to the limits and to every fault.
`GET /_sandbox/stats` counts what was asked: `requests`, `answered`, `multiquery_requests`,
`multiquery_answered`, `subqueries` (in answered multiqueries) and, per answered query or
sub-query, `queried:<entity>` or `counted:<entity>`, plus `fault_*` and `rejected_*`.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ingestion.sandbox.apicalypse import ApicalypseError, SubQuery, parse_multiquery, parse_query
from ingestion.sandbox.faults import FaultDice, Faults, Limits
from ingestion.sandbox.store import Store, dumps

log = logging.getLogger(__name__)

MULTIQUERY = "multiquery"  # the /v4/ route that bundles named sub-queries
SUBQUERY_ERROR = {"title": "Internal Server Error", "status": 500}  # a failed sub-query's element, as IGDB sends it

AUTH_FAILURE = {
    "message": "Authorization Failure. Have you tried:",
    "Tip 1": "Ensure you are sending Authorization and Client-ID as headers.",
    "Tip 2": "Ensure Authorization value starts with 'Bearer ', including the space",
    "Tip 3": "Ensure Authorization value ends with the App Access Token you generated, NOT your Client Secret.",
    "Docs": "https://api-docs.igdb.com/#authentication",
}


def igdb_error(title: str, status: int, cause: str | None = None) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"title": title, "status": status}
    if cause:
        body["cause"] = cause
    return [body]


class TokenBucket:
    """Server-side rate limit as API gateways do it: `rate` tokens per second, burst `rate`."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


@dataclass
class SandboxState:
    store: Store
    client_id: str
    client_secret: str
    limits: Limits
    dice: FaultDice
    bucket: TokenBucket
    tokens: dict[str, float] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    open_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, key: str) -> None:
        with self.lock:
            self.stats[key] += 1

    def count_all(self, keys: Counter[str]) -> None:
        """Several counters under one lock: an answer's stats appear together, and cheaply."""
        with self.lock:
            self.stats.update(keys)


@dataclass
class _Answer:
    """A 200 body made before it is sent: its bytes, its records (the latency model) and its stats."""

    data: bytes
    records: int
    stats: Counter[str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("sandbox: " + format, *args)

    # --- plumbing -------------------------------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None,
              truncate: bool = False) -> None:
        self._send_bytes(status, dumps(payload), headers, truncate)

    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None,
                    truncate: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if truncate:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self._hang_up()
        else:
            self.wfile.write(data)

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- routes ---------------------------------------------------------------------------------

    def do_POST(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        body = self._body()
        if path == "/oauth2/token":
            self._token()
        elif path.startswith("/v4/"):
            self._api(path[len("/v4/"):], body)
        elif path.startswith("/_sandbox/"):
            self._admin_post(path[len("/_sandbox/"):], body)
        else:
            self._send(404, igdb_error("Not Found", 404, f"no route {path}"))

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        state = self.server.state
        if path == "/_sandbox/stats":
            with state.lock:
                stats = dict(state.stats)
            self._send(200, {"stats": stats, "faults": state.dice.faults.to_json(),
                             "limits": {"per_second": state.limits.per_second, "max_open": state.limits.max_open}})
        elif path.startswith("/_sandbox/ids/"):
            self._send(200, state.store.ids(path[len("/_sandbox/ids/"):]))
        elif path.startswith("/_sandbox/records/"):
            self._send(200, state.store.records(path[len("/_sandbox/records/"):]))
        else:
            self._send(404, igdb_error("Not Found", 404, f"no route {path}"))

    def _token(self) -> None:
        state = self.server.state
        params = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        time.sleep(state.dice.latency())
        if params.get("grant_type") != "client_credentials":
            self._send(400, {"status": 400, "message": "unsupported grant type"})
        elif params.get("client_id") != state.client_id:
            self._send(400, {"status": 400, "message": "invalid client"})
        elif params.get("client_secret") != state.client_secret:
            self._send(403, {"status": 403, "message": "invalid client secret"})
        else:
            token = secrets.token_hex(15)
            faults = state.dice.faults
            announced = faults.announced_ttl_seconds or faults.token_ttl_seconds
            with state.lock:
                state.tokens[token] = time.monotonic() + faults.token_ttl_seconds
                state.stats["tokens_issued"] += 1
            self._send(200, {"access_token": token, "expires_in": max(1, int(announced)), "token_type": "bearer"})

    def _authorised(self) -> bool:
        state = self.server.state
        header = self.headers.get("Authorization", "")
        if self.headers.get("Client-ID") != state.client_id or not header.startswith("Bearer "):
            return False
        with state.lock:
            expires = state.tokens.get(header[len("Bearer "):])
        return expires is not None and time.monotonic() < expires

    def _api(self, route: str, body: bytes) -> None:
        state = self.server.state
        with state.lock:
            state.open_requests += 1
            state.stats["requests"] += 1
            if route == MULTIQUERY:
                state.stats["multiquery_requests"] += 1
            state.stats["peak_open"] = max(state.stats["peak_open"], state.open_requests)
            too_many_open = state.open_requests > state.limits.max_open
        try:
            if too_many_open:
                state.count("rejected_open_limit")
                self._send(429, igdb_error("Too Many Requests", 429, "more than 8 open requests"))
                return
            if not state.bucket.take():
                state.count("rejected_rate_limit")
                self._send(429, igdb_error("Too Many Requests", 429, "more than 4 requests per second"))
                return
            if not self._authorised():
                state.count("rejected_auth")
                self._send(401, AUTH_FAILURE)
                return
            self._answer(route, body)
        finally:
            with state.lock:
                state.open_requests -= 1

    def _plan(self, route: str, body: bytes) -> list[SubQuery] | None:
        """The request's queries (a single query is a plan of one); None once a 4xx is sent."""
        state = self.server.state
        text = body.decode("utf-8", errors="replace")
        entity, _, suffix = route.partition("/")
        if route != MULTIQUERY and (not state.store.has(entity) or suffix not in ("", "count")):
            self._send(404, igdb_error("Not Found", 404, f"unknown endpoint {route}"))
            return None
        try:
            if route == MULTIQUERY:
                return parse_multiquery(text, state.store)
            return [SubQuery(entity, "", suffix == "count", parse_query(text))]
        except ApicalypseError as exc:
            state.count("rejected_syntax")
            self._send(400, igdb_error("Syntax Error", 400, exc.cause))
            return None

    def _answer(self, route: str, body: bytes) -> None:
        state = self.server.state
        plan = self._plan(route, body)
        if plan is None:
            return
        multi = route == MULTIQUERY
        # Drawn before the fault roll as it always was (a seed keeps its fault sequence), slept
        # only once the answer is made, so the latency adds to the real cost of making it.
        wait = state.dice.latency()
        fault = state.dice.roll()
        if fault is not None:
            self._fault(fault, plan, multi, wait)
            return
        self._churn(plan[0].entity)  # while paging: the (first) entity the request is about
        answer = self._make(plan, multi)
        state.count_all(answer.stats)
        time.sleep(wait + state.dice.per_record_latency(answer.records))
        single = plan[0]
        headers = {} if multi or single.count else {"X-Count": str(state.store.size(single.entity))}
        self._send_bytes(200, answer.data, headers)

    def _fault(self, fault: str, plan: list[SubQuery], multi: bool, wait: float) -> None:
        """Fail the whole request, a multiquery as much as a single query."""
        state = self.server.state
        state.count(f"fault_{fault}")
        if fault == "truncate":  # a real body, cut: make it (and pay for it) first
            answer = self._make(plan, multi)
            time.sleep(wait + state.dice.per_record_latency(answer.records))
            self._send_bytes(200, answer.data, truncate=True)
            return
        time.sleep(wait)
        if fault == "5xx":
            self._send(state.dice.status_5xx(), {"message": "Internal server error"})
        elif fault == "429":
            after = state.dice.faults.retry_after_seconds
            headers = {} if after is None else {"Retry-After": f"{after:g}"}
            self._send(429, igdb_error("Too Many Requests", 429), headers)
        else:  # drop
            self._hang_up()

    def _churn(self, entity: str) -> None:
        """Records change or appear between a client's pages, as IGDB's editors make them."""
        state = self.server.state
        faults = state.dice.faults
        if faults.mutate_rate and state.dice.chance(faults.mutate_rate):
            if state.store.touch(entity, faults.mutate_count, state.dice):
                state.count("records_updated_while_paging")
        if faults.create_rate and state.dice.chance(faults.create_rate):
            if state.store.create(entity, state.dice) is not None:
                state.count("records_created_while_paging")

    def _make(self, plan: list[SubQuery], multi: bool) -> _Answer:
        """The 200 body: a single query's records or count, or the multiquery's array in request order."""
        store = self.server.state.store
        stats: Counter[str] = Counter(answered=1)
        if not multi:
            single = plan[0]
            if single.count:
                stats[f"counted:{single.entity}"] += 1
                return _Answer(dumps({"count": store.count(single.entity, single.query)}), 0, stats)
            stats[f"queried:{single.entity}"] += 1
            data, records = store.query_json(single.entity, single.query)
            return _Answer(data, records, stats)
        stats.update(multiquery_answered=1, subqueries=len(plan))
        chunks: list[bytes] = []  # joined once: the answer can be megabytes, so no copy per element
        total = 0
        for index, sub in enumerate(plan):
            if index:  # sub-queries are answered one after another: edits can fall between them
                self._churn(sub.entity)
            name, key, value, records = self._element(sub, stats)
            chunks += (b"," if chunks else b"[", b'{"name":', name, b',"', key, b'":', value, b"}")
            total += records
        return _Answer(b"".join([*chunks, b"]"]), total, stats)

    def _element(self, sub: SubQuery, stats: Counter[str]) -> tuple[bytes, bytes, bytes, int]:
        """One multiquery element as JSON pieces: name, key ("result", "count" or "error"), value, records."""
        state = self.server.state
        name = dumps(sub.name)
        rate = state.dice.faults.subquery_error_rate
        if rate and state.dice.chance(rate):
            stats["fault_subquery_error"] += 1
            return name, b"error", dumps(SUBQUERY_ERROR), 0
        if sub.count:
            stats[f"counted:{sub.entity}"] += 1
            return name, b"count", dumps(state.store.count(sub.entity, sub.query)), 0
        stats[f"queried:{sub.entity}"] += 1
        data, records = state.store.query_json(sub.entity, sub.query)
        return name, b"result", data, records

    def _admin_post(self, route: str, body: bytes) -> None:
        state = self.server.state
        try:
            data = json.loads(body or b"{}")
            if route == "faults":
                state.dice.set(Faults.from_json(data, state.dice.faults))
                self._send(200, state.dice.faults.to_json())
            elif route == "mutate":
                changed = state.store.touch(data.get("entity", "games"), int(data.get("count", 1)), state.dice,
                                            ids=data.get("ids"))
                self._send(200, {"updated": changed})
            else:
                self._send(404, igdb_error("Not Found", 404, f"no admin route {route}"))
        except (ValueError, TypeError) as exc:
            self._send(400, igdb_error("Bad Request", 400, str(exc)))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], state: SandboxState) -> None:
        super().__init__(address, _Handler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (a killed run) is counted, not printed as a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            self.state.count("client_gone")
            return
        super().handle_error(request, client_address)


@dataclass
class RunningSandbox:
    """A sandbox serving in a background thread; use as a context manager or call stop()."""

    server: _Server
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/v4"

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth2/token"

    @property
    def state(self) -> SandboxState:
        return self.server.state

    def set_faults(self, faults: Faults) -> None:
        self.state.dice.set(faults)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"


def start_sandbox(store: Store, *, port: int = 0, host: str = "127.0.0.1", limits: Limits | None = None,
                  faults: Faults | None = None, client_id: str = SANDBOX_CLIENT_ID,
                  client_secret: str = SANDBOX_CLIENT_SECRET) -> RunningSandbox:
    limits = limits or Limits()
    state = SandboxState(store, client_id, client_secret, limits, FaultDice(faults or Faults()),
                         TokenBucket(limits.per_second))
    server = _Server((host, port), state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="igdb-sandbox",
                              daemon=True)
    thread.start()
    return RunningSandbox(server, thread)
