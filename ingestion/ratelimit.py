"""One rate limiter for the whole process: at most N request starts per second and M in flight.

Starts are spaced evenly (1/N s apart, widened by a small margin) instead of bursting N at the
top of each second: an evenly paced client never trips a token-bucket or sliding-window limiter
on the server, even with a little network jitter, so no request is wasted on a 429.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class RateLimiter:
    def __init__(self, per_second: float, max_in_flight: int, margin: float = 0.0) -> None:
        self.interval = (1.0 / per_second) * (1.0 + margin)
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        self._next_start = 0.0
        self.max_in_flight = max_in_flight
        self._in_flight = 0
        self.peak_in_flight = 0
        self.starts = 0

    def _reserve_start(self) -> float:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self.interval
            self.starts += 1
            return start - now

    def defer(self, seconds: float) -> None:
        """Push every later start back (a server's Retry-After applies to the whole client)."""
        with self._lock:
            self._next_start = max(self._next_start, time.monotonic() + seconds)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one in-flight slot, entered at the next free start time."""
        with self._slots:
            wait = self._reserve_start()
            if wait > 0:
                time.sleep(wait)
            with self._lock:
                self._in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            try:
                yield
            finally:
                with self._lock:
                    self._in_flight -= 1
