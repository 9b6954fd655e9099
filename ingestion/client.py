"""IGDB API v4 client: Apicalypse POSTs through the shared rate limiter, retried when retrying helps.

Retried: 429 (honouring Retry-After), 5xx, timeouts, dropped connections and bodies that are not
complete JSON (a truncated response). A 401 drops the cached token and retries with a new one.
Not retried: 400 (a query bug: the IGDB error `cause` is in the message) and other 4xx.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import requests
from requests.adapters import HTTPAdapter

from core.errors import ApiError
from core.logs import event
from ingestion.auth import TwitchAuth
from ingestion.ratelimit import RateLimiter

log = logging.getLogger(__name__)


class RetriesExhausted(ApiError):
    """Every attempt at one request failed with a retryable error."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter exponential backoff; a Retry-After from the server is a floor."""
        backoff = random.uniform(0, min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1))))
        return max(backoff, retry_after or 0.0)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def _error_cause(response: requests.Response) -> str:
    """IGDB's error bodies are `[{"title":..., "status":..., "cause":...}]`."""
    try:
        body = response.json()
        first = body[0] if isinstance(body, list) and body else body
        return str(first.get("cause") or first.get("title") or first.get("message") or first)[:300]
    except (ValueError, AttributeError, TypeError, KeyError, IndexError):
        return response.text[:300]


class IGDBClient:
    def __init__(self, api_url: str, auth: TwitchAuth, limiter: RateLimiter, session: requests.Session,
                 retry: RetryPolicy, timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.auth = auth
        self.limiter = limiter
        self.session = session
        self.retry = retry
        self.timeout = timeout
        self._stats_lock = threading.Lock()
        self.stats: Counter[str] = Counter()

    @classmethod
    def build(cls, api_url: str, token_url: str, client_id: str, client_secret: str, *,
              per_second: float, max_in_flight: int, margin: float, retry: RetryPolicy,
              timeout: float) -> IGDBClient:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max_in_flight + 2, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        auth = TwitchAuth(token_url, client_id, client_secret, session, timeout)
        limiter = RateLimiter(per_second, max_in_flight, margin)
        return cls(api_url, auth, limiter, session, retry, timeout)

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    def query(self, endpoint: str, body: str | Callable[[], str],
              parse: Callable[[bytes], Any] = orjson.loads) -> Any:
        """POST an Apicalypse body to /v4/<endpoint>; the parsed JSON answer.

        `body` may be a function, called once when the first attempt's turn in the rate limiter
        has come (a multiquery fills its sub-queries as late as possible); retries resend it.
        `parse` turns a 200's body into the answer; a ValueError (a cut body) is retried."""
        url = f"{self.api_url}/{endpoint}"
        last_problem = "no attempt made"
        for attempt in range(1, self.retry.max_attempts + 1):
            headers, token_generation = self.auth.headers()
            retry_after: float | None = None
            with self.limiter.slot():
                if callable(body):
                    body = body()
                self._count("requests")
                try:
                    response = self.session.post(url, data=body.encode("utf-8"), headers=headers,
                                                 timeout=(10.0, self.timeout))
                    status = response.status_code
                    if status == 200:
                        try:
                            return parse(response.content)
                        except ValueError:
                            last_problem = "incomplete or malformed JSON body"
                            self._count("retry_bad_body")
                    elif status == 401:
                        self.auth.invalidate(token_generation)
                        last_problem = "HTTP 401 (token rejected)"
                        self._count("retry_401")
                    elif status == 429:
                        retry_after = parse_retry_after(response.headers.get("Retry-After"))
                        last_problem = "HTTP 429 (rate limited)"
                        self._count("retry_429")
                    elif status >= 500:
                        retry_after = parse_retry_after(response.headers.get("Retry-After"))
                        last_problem = f"HTTP {status}"
                        self._count("retry_5xx")
                    else:
                        raise ApiError(f"IGDB {endpoint} answered HTTP {status}: {_error_cause(response)}", status)
                except requests.RequestException as exc:
                    last_problem = f"{type(exc).__name__}"
                    self._count("retry_network")
            if retry_after:
                self.limiter.defer(retry_after)
            if attempt < self.retry.max_attempts:
                delay = 0.0 if last_problem.startswith("HTTP 401") else self.retry.delay(attempt, retry_after)
                event(log, f"retrying {endpoint}: {last_problem}", logging.DEBUG, attempt=attempt,
                      delay_s=round(delay, 2))
                time.sleep(delay)
        raise RetriesExhausted(f"IGDB {endpoint}: {self.retry.max_attempts} attempts failed, last: {last_problem}")

    def close(self) -> None:
        self.session.close()
