"""A 429's Retry-After holds the client back for as long as the server asked, across its threads.

The sandbox answers the first /v4 request with 429 (`Retry-After: 2`, or no header) and then,
switched back to normal, answers everything. The backoff is tiny (10 ms), so only the header can
explain a wait of two seconds. Arrival times are read from the sandbox's own counters, so what
is measured is when requests reach the server, not what the client believes it did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from ingestion.client import IGDBClient, RetryPolicy
from ingestion.ratelimit import RateLimiter
from ingestion.sandbox.faults import Faults
from ingestion.sandbox.server import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, RunningSandbox

RETRY_AFTER = 2.0
QUERY = "fields id,name; where id > 0; sort id asc; limit 5;"


def every_request_429(retry_after: float | None) -> Faults:
    """Every /v4 request answered 429 (with `Retry-After: retry_after`) until `watched` calms it."""
    return Faults(burst_429_rate=1.0, burst_429_length=1, retry_after_seconds=retry_after)


@dataclass
class Arrivals:
    """When /v4 requests reached the sandbox, and when it answered 429, by polling its counters."""

    requests: list[float] = field(default_factory=list)
    rate_limited: list[float] = field(default_factory=list)
    first_429: threading.Event = field(default_factory=threading.Event)

    def gap_after_first_429(self) -> float:
        """Seconds from the first 429 to the next request reaching the sandbox."""
        after = [t for t in self.requests[1:] if t >= self.rate_limited[0]]
        assert after, "no request reached the sandbox after the 429"
        return after[0] - self.rate_limited[0]


@contextmanager
def watched(sandbox: RunningSandbox, calm: Faults) -> Iterator[Arrivals]:
    """Record arrivals while the block runs; after the first 429, switch the sandbox to `calm`
    so only that one request is refused (the retry finds a normal server)."""
    arrivals = Arrivals()
    stop = threading.Event()

    def poll() -> None:
        seen_requests = seen_429 = 0
        while True:
            done = stop.is_set()  # read first: the last round still counts what came before the stop
            with sandbox.state.lock:
                requests, limited = sandbox.state.stats["requests"], sandbox.state.stats["fault_429"]
            now = time.monotonic()
            arrivals.requests.extend([now] * (requests - seen_requests))
            arrivals.rate_limited.extend([now] * (limited - seen_429))
            if limited and not seen_429:
                sandbox.set_faults(calm)
                arrivals.first_429.set()
            seen_requests, seen_429 = requests, limited
            if done:
                return
            time.sleep(0.001)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        yield arrivals
    finally:
        stop.set()
        watcher.join(timeout=5)


def _client(sandbox: RunningSandbox) -> IGDBClient:
    # a tiny backoff and many attempts: without the header, retries come at once and never run out
    retry = RetryPolicy(max_attempts=30, backoff_base=0.01, backoff_max=0.01)
    return IGDBClient.build(sandbox.api_url, sandbox.token_url, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET,
                            per_second=100.0, max_in_flight=4, margin=0.0, retry=retry, timeout=10.0)


@pytest.mark.parametrize("header", [RETRY_AFTER, None], ids=["retry-after-2s", "no-header"])
def test_a_429_with_retry_after_delays_the_retry_that_long(header: float | None, make_sandbox) -> None:
    sandbox = make_sandbox(games=50, faults=every_request_429(header))
    client = _client(sandbox)
    client.auth.headers()  # the token first, so only the query is timed
    with watched(sandbox, Faults(retry_after_seconds=header)) as arrivals:
        started = time.monotonic()
        answer = client.query("games", QUERY)
        took = time.monotonic() - started
    client.close()

    assert [r["id"] for r in answer] == sandbox.state.store.ids("games")[:5]
    assert client.stats["retry_429"] >= 1 and arrivals.rate_limited, "the sandbox never answered 429"
    if header is None:
        # the control: the same run without the header is quick, so the wait below is the header's
        assert took < 1.0 and arrivals.gap_after_first_429() < 1.0
    else:
        assert client.stats["retry_429"] == 1 and len(arrivals.rate_limited) == 1
        assert arrivals.gap_after_first_429() >= RETRY_AFTER - 0.05, "the retry came before Retry-After ended"
        assert took >= RETRY_AFTER


def test_retry_after_holds_back_the_clients_other_threads(make_sandbox) -> None:
    """One thread's 429 defers the whole client: another thread's new query waits out the header too."""
    sandbox = make_sandbox(games=50, faults=every_request_429(RETRY_AFTER))
    client = _client(sandbox)
    client.auth.headers()
    answers: dict[str, object] = {}

    def query(name: str) -> None:
        answers[name] = client.query("games", QUERY)

    with watched(sandbox, Faults(retry_after_seconds=RETRY_AFTER)) as arrivals:
        first = threading.Thread(target=query, args=("first",))
        first.start()
        assert arrivals.first_429.wait(10), "the sandbox never answered 429"
        time.sleep(0.5)  # the first thread has long handled its 429; the second one starts fresh
        second = threading.Thread(target=query, args=("second",))
        second.start()
        for thread in (first, second):
            thread.join(timeout=30)
    client.close()

    assert set(answers) == {"first", "second"}
    assert len(arrivals.rate_limited) == 1 and len(arrivals.requests) == 3
    # neither the retry nor the other thread's first request came before Retry-After was over
    assert arrivals.gap_after_first_429() >= RETRY_AFTER - 0.05


def test_defer_pushes_back_the_next_start_of_every_thread() -> None:
    limiter = RateLimiter(per_second=1000.0, max_in_flight=8)
    deferred_at = time.monotonic()
    limiter.defer(0.5)
    limiter.defer(0.1)  # a shorter deferral later (another 429) does not bring starts forward
    starts: list[float] = []
    lock = threading.Lock()

    def start() -> None:
        with limiter.slot():
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(starts) == 4
    assert min(starts) - deferred_at >= 0.5, "a thread started before the deferral ended"
    assert max(starts) - deferred_at < 1.5  # then the normal 1 ms pacing resumes
