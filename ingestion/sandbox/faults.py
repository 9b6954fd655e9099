"""The sandbox's limits, latency and failure modes: what IGDB does on a bad day, on demand and seeded.

Every fault applies to a request as a whole, a `/v4/multiquery` as much as a single query; only
`subquery_error_rate` reaches inside a multiquery, failing single sub-queries of a 200 answer.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

# A realistic latency model for benchmarks (`igdb-pipeline sandbox --latency-ms 100-300
# --latency-per-record-ms 0.08`). The Faults defaults stay at zero so tests get fast sandboxes.
# Why these values: they follow what a real IGDB answer of one page costs, and keep a full multiquery
# answer short enough that 8 open requests still reach IGDB's 4 a second.
DEFAULT_LATENCY_MS: tuple[int, int] = (100, 300)  # the per-answer wait, uniform(low, high) ms
DEFAULT_LATENCY_PER_RECORD_MS: float = 0.08  # added per record in the answer (all sub-queries summed)


@dataclass(frozen=True)
class Limits:
    """IGDB's published limits: 4 requests per second, 8 open requests."""

    per_second: float = 4.0
    max_open: int = 8


@dataclass(frozen=True)
class Faults:
    latency_ms: tuple[int, int] = (0, 0)  # each /v4 answer waits uniform(low, high) ms ...
    latency_per_record_ms: float = 0.0  # ... plus this per record it carries (a big answer costs more)
    error_rate: float = 0.0  # share of /v4 requests answered 500/502/503/504
    burst_429_rate: float = 0.0  # chance per request that a burst of 429s starts
    burst_429_length: int = 4  # requests answered 429 in one burst
    retry_after_seconds: float | None = 1.0  # Retry-After header on injected 429s (None: no header)
    drop_rate: float = 0.0  # close the connection without answering
    truncate_rate: float = 0.0  # send half of the body, then close
    token_ttl_seconds: float = 5_000_000.0  # how long issued tokens really work (small: expiry mid-run)
    announced_ttl_seconds: float | None = None  # expires_in told to the client; None: the truth.
    # Announcing more than token_ttl_seconds is a token revoked early: the client only learns from a 401.
    mutate_rate: float = 0.0  # chance per request that records are updated (updated_at = now)
    mutate_count: int = 5  # records updated each time
    create_rate: float = 0.0  # chance per request that a new game appears (id above the max)
    subquery_error_rate: float = 0.0  # chance per multiquery sub-query that its element is an error (in a 200)
    seed: int = 7

    @classmethod
    def from_json(cls, data: dict[str, Any], base: Faults | None = None) -> Faults:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        values = dict(data)
        if "latency_ms" in values:
            values["latency_ms"] = tuple(values["latency_ms"])
        return replace(base or cls(), **values)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultDice:
    """Seeded decisions, one lock: the same seed gives the same fault sequence per request order."""

    def __init__(self, faults: Faults) -> None:
        self._lock = threading.Lock()
        self.set(faults)

    def set(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)
            self._burst_left = 0

    def roll(self) -> str | None:
        """What goes wrong with the next /v4 request, if anything."""
        with self._lock:
            f = self.faults
            if self._burst_left > 0:
                self._burst_left -= 1
                return "429"
            draw = self._rng.random()
            for name, share in (("5xx", f.error_rate), ("drop", f.drop_rate), ("truncate", f.truncate_rate)):
                if draw < share:
                    return name
                draw -= share
            if self._rng.random() < f.burst_429_rate:
                self._burst_left = max(0, f.burst_429_length - 1)
                return "429"
            return None

    def latency(self) -> float:
        """The fixed part of an answer's wait, in seconds (records add `per_record_latency`)."""
        with self._lock:
            low, high = self.faults.latency_ms
            return self._rng.uniform(low, high) / 1000.0

    def per_record_latency(self, records: int) -> float:
        """Seconds an answer of `records` records waits on top of `latency()`: no dice, the size is the cost."""
        return self.faults.latency_per_record_ms * records / 1000.0

    def chance(self, share: float) -> bool:
        with self._lock:
            return self._rng.random() < share

    def choice(self, options: Sequence[Any]) -> Any:
        with self._lock:
            return self._rng.choice(options)

    def status_5xx(self) -> int:
        return self.choice([500, 502, 503, 504])
