"""Where pages come from: one request per page, or IGDB's multiquery (up to 10 pages per request).

IGDB's limits count requests (4 per second, 8 open), not records. `POST /v4/multiquery` carries
up to 10 sub-queries of at most 500 records each, each with its own endpoint, fields, where,
sort and limit, and counts as one request: the ceiling is 20,000 records/s instead of 2,000.

Callers (the keyset walkers of every entity, the drift probes) ask a `PageSource` for a few
queries and block until they are answered, exactly as they would on a single request, so the
keyset logic is the same on both paths. `MultiquerySource` turns the queries waiting at any
moment into multiquery requests:

- dispatcher threads, one per open request allowed, take turns as the collector; the collector
  waits until a request's worth of queries is ready, or every registered caller is already
  waiting (nothing more can come), or no query came for a short quiet spell, so a small
  catalogue's whole day fits in the fewest requests; then it enters the rate limiter and takes
  the queries ready when its start time has come (the spacing between two starts fills it up);
- a sub-query that fails inside a 200 answer (an error object in its place) is retried alone,
  after a backoff, up to the client's attempts; a request that fails as a whole is retried by
  the client, and when those retries run out each query in it fails with RetriesExhausted, which
  the walkers treat as they treat a failed page (parked, tried again in a later round).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from core.errors import ApiError
from core.logs import bind_context, current_context, event
from ingestion.client import IGDBClient, RetriesExhausted

log = logging.getLogger(__name__)

MAX_SUBQUERIES = 10  # IGDB's cap on the sub-queries of one multiquery


@dataclass(frozen=True)
class Query:
    """One Apicalypse query: a page of `endpoint`, or (`count`) the number of records matching.
    `shape`, when given, turns the answer into what the caller keeps, as soon as it arrives (the
    walkers keep compact pages, not parsed records: memory stays small however many wait)."""

    endpoint: str
    body: str
    count: bool = False
    shape: Callable[[Any], Any] | None = None

    def answer(self, raw: Any) -> Any:
        return self.shape(raw) if self.shape is not None else raw


class PageSource(Protocol):
    """Answers queries; `enter`/`leave`/`idle` tell it who may still ask (a batching source waits
    for them), the others ignore them."""

    stats: Counter[str]

    def fetch(self, queries: Sequence[Query]) -> list[Any]:
        """The answers in the queries' order (records, or an int for a count); raises the first failure."""
        ...

    def enter(self, callers: int = 1) -> None: ...

    def leave(self, callers: int = 1) -> None: ...

    def idle(self) -> contextlib.AbstractContextManager[None]: ...


def _answer_of(query: Query, answer: Any) -> Any:
    if query.count:
        if not isinstance(answer, dict) or not isinstance(answer.get("count"), int):
            raise ApiError(f"IGDB {query.endpoint}/count: expected {{\"count\": n}}, got {str(answer)[:200]}")
        return answer["count"]
    return answer


class DirectSource:
    """One request per query (`igdb.multiquery` off): today's path, and IGDB's plain endpoints."""

    def __init__(self, client: IGDBClient) -> None:
        self.client = client
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()

    def fetch(self, queries: Sequence[Query]) -> list[Any]:
        answers = []
        for query in queries:
            with self._lock:
                self.stats[f"queries:{query.endpoint}"] += 1
            path = f"{query.endpoint}/count" if query.count else query.endpoint
            answers.append(query.answer(_answer_of(query, self.client.query(path, query.body))))
        return answers

    def enter(self, callers: int = 1) -> None:
        """Nothing waits for callers here."""

    def leave(self, callers: int = 1) -> None:
        """Nothing waits for callers here."""

    @contextlib.contextmanager
    def idle(self) -> Iterator[None]:
        yield


@dataclass
class _Waiting:
    query: Query
    future: Future[Any] = field(default_factory=Future)
    attempts: int = 0
    not_before: float = 0.0  # a sub-query retried after an in-answer error waits for its backoff


class Turn:
    """One registered caller's place among those a batching source waits for: given up once,
    either when the caller is done asking or when it ends, whichever comes first."""

    def __init__(self, source: PageSource) -> None:
        self.source = source
        self._left = False

    def done_asking(self) -> None:
        if not self._left:
            self._left = True
            self.source.leave()


def multiquery_body(named: Sequence[tuple[str, Query]]) -> str:
    """IGDB's multiquery syntax: `query <endpoint>[/count] "<name>" { <body> };` per sub-query."""
    return "\n".join(f'query {q.endpoint}{"/count" if q.count else ""} "{name}" {{ {q.body} }};' for name, q in named)


class MultiquerySource:
    """Batches the queries of every caller into multiquery requests (see the module docstring)."""

    def __init__(self, client: IGDBClient, per_request: int = MAX_SUBQUERIES, linger_seconds: float = 0.25,
                 max_wait_seconds: float = 0.5) -> None:
        if not 1 <= per_request <= MAX_SUBQUERIES:
            raise ValueError(f"sub-queries per request must be 1..{MAX_SUBQUERIES}, got {per_request}")
        self.client = client
        self.per_request = per_request
        self.linger_seconds = linger_seconds
        self.max_wait_seconds = max_wait_seconds
        self.stats: Counter[str] = Counter()
        self._cond = threading.Condition()
        self._waiting: list[_Waiting] = []
        self._callers = 0  # registered callers that may still ask
        self._blocked = 0  # callers waiting for an answer now
        self._last_submit = 0.0
        self._closed = False
        self._names = itertools.count(1)
        self._collector = threading.Lock()  # one dispatcher at a time fills a request
        self._digesting = threading.Lock()  # one answer at a time is parsed and handed out
        context = current_context()
        self._threads = [threading.Thread(target=self._dispatch, args=(context,), name=f"multiquery-{i}", daemon=True)
                         for i in range(client.limiter.max_in_flight)]
        for thread in self._threads:
            thread.start()

    # --- callers --------------------------------------------------------------------------------

    def enter(self, callers: int = 1) -> None:
        with self._cond:
            self._callers += callers

    def leave(self, callers: int = 1) -> None:
        with self._cond:
            self._callers -= callers
            self._cond.notify_all()

    @contextlib.contextmanager
    def idle(self) -> Iterator[None]:
        """The caller stops asking for a while (it waits on callers it registered)."""
        self.leave()
        try:
            yield
        finally:
            self.enter()

    def fetch(self, queries: Sequence[Query]) -> list[Any]:
        waiting = [_Waiting(q) for q in queries]
        with self._cond:
            if self._closed:
                raise RuntimeError("the multiquery source is closed")
            self._waiting.extend(waiting)
            self._blocked += 1
            self._last_submit = time.monotonic()
            for w in waiting:
                self.stats[f"queries:{w.query.endpoint}"] += 1
            self._cond.notify_all()
        try:
            return [w.future.result() for w in waiting]
        finally:
            with self._cond:
                self._blocked -= 1

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> MultiquerySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- dispatchers ----------------------------------------------------------------------------

    def _ready(self, now: float) -> list[_Waiting]:
        return [w for w in self._waiting if w.not_before <= now]

    def _wait_for_work(self) -> bool:
        """Block until a query can be sent; False once closed with nothing left."""
        with self._cond:
            while True:
                now = time.monotonic()
                if self._ready(now):
                    return True
                if self._closed and not self._waiting:
                    return False
                later = [w.not_before - now for w in self._waiting]
                self._cond.wait(timeout=min(later) if later else None)

    def _wait_for_batch(self) -> None:
        """Before entering the rate limiter: wait until a request's worth of queries is ready,
        every registered caller waits, no query came for `linger_seconds`, or `max_wait_seconds`
        passed. Waiting here, not once the start time has come, keeps requests on the limiter's
        even spacing (a request held past its start would bunch with the next one)."""
        with self._cond:
            began = time.monotonic()
            while True:
                now = time.monotonic()
                full = len(self._ready(now)) >= self.per_request
                everyone_waits = self._blocked >= self._callers
                quiet = now - self._last_submit >= self.linger_seconds
                if full or everyone_waits or quiet or now - began >= self.max_wait_seconds:
                    return
                self._cond.wait(timeout=self.linger_seconds / 4)

    def _take(self) -> list[tuple[str, _Waiting]]:
        """Called when this request's start has come: up to `per_request` queries ready now (more
        came in while the limiter held the request back)."""
        with self._cond:
            batch = self._ready(time.monotonic())[: self.per_request]
            taken = {id(w) for w in batch}
            self._waiting = [w for w in self._waiting if id(w) not in taken]
        return [(f"q{next(self._names)}", w) for w in batch]

    def _take_waiting(self) -> list[_Waiting]:
        with self._cond:
            taken, self._waiting = self._waiting, []
        return taken

    def _dispatch(self, context: dict[str, Any]) -> None:
        bind_context(context)
        while self._send_one():
            pass

    def _send_one(self) -> bool:
        """Become the collector, send one multiquery, hand out its answers; False once closed."""
        self._collector.acquire()
        held = True
        batch: list[tuple[str, _Waiting]] = []

        def body() -> str:  # called by the client when this request's start has come
            nonlocal held
            try:
                batch.extend(self._take())
                return multiquery_body([(name, w.query) for name, w in batch])
            finally:
                self._collector.release()
                held = False

        try:
            if not self._wait_for_work():
                return False
            self._wait_for_batch()
            self.client.query("multiquery", body, parse=lambda content: self._digest(batch, content))
        except Exception as exc:  # noqa: BLE001 - each query in the request fails with it
            # failing before the batch was taken (no token, say): the queries waiting fail instead
            for w in [w for _, w in batch] or self._take_waiting():
                w.future.set_exception(exc)
            return True
        finally:
            if held:
                self._collector.release()
        with self._cond:
            self.stats["requests"] += 1
            self.stats["subqueries"] += len(batch)
        return True

    def _digest(self, batch: list[tuple[str, _Waiting]], content: bytes) -> None:
        """Parse a 200's body and hand out its answers, one body at a time: a full answer is many
        times its JSON size as Python objects, and each sub-query's records are shaped (compacted)
        and dropped before the next body is parsed, so memory holds one parsed answer, not eight."""
        with self._digesting:
            self._deliver(batch, self._elements(content))

    @staticmethod
    def _elements(content: bytes) -> dict[Any, Any]:
        """The answer's elements by name; the parsed array itself is not kept, so each element is
        freed as soon as it is handed out. A ValueError (a cut body) makes the client ask again."""
        answer = orjson.loads(content)
        if not isinstance(answer, list):
            return {}
        return {e.get("name"): e for e in answer if isinstance(e, dict)}

    def _deliver(self, batch: list[tuple[str, _Waiting]], elements: dict[Any, Any]) -> None:
        for name, w in batch:
            element = elements.pop(name, None)
            key = "count" if w.query.count else "result"
            if element is not None and key in element:
                try:
                    w.future.set_result(w.query.answer(_answer_of(w.query, element) if w.query.count
                                                       else element[key]))
                except Exception as exc:  # noqa: BLE001 - a bad answer fails its caller, not the dispatcher
                    w.future.set_exception(exc)
                continue
            problem = (f"sub-query error {element.get('error') or element}" if element is not None
                       else "no answer for this sub-query")
            self._retry(w, problem)

    def _retry(self, w: _Waiting, problem: str) -> None:
        w.attempts += 1
        with self._cond:
            self.stats[f"retried:{w.query.endpoint}"] += 1
        if w.attempts >= self.client.retry.max_attempts:
            w.future.set_exception(RetriesExhausted(
                f"IGDB {w.query.endpoint}: {w.attempts} attempts of a multiquery sub-query failed, last: {problem}"))
            return
        delay = self.client.retry.delay(w.attempts, None)
        event(log, f"retrying a {w.query.endpoint} sub-query: {problem}", logging.DEBUG, attempt=w.attempts,
              delay_s=round(delay, 2))
        with self._cond:
            w.not_before = time.monotonic() + delay
            self._waiting.append(w)
            self._cond.notify_all()


@contextlib.contextmanager
def page_source(client: IGDBClient, multiquery: bool, per_request: int) -> Iterator[PageSource]:
    """The source the settings ask for (`igdb.multiquery`, `igdb.subqueries_per_request`)."""
    if not multiquery:
        yield DirectSource(client)
        return
    with MultiquerySource(client, per_request) as source:
        yield source
