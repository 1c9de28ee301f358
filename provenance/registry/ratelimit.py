"""A per-client rate limit on lookups: a token bucket per client address.

Each client (its IP address) may make ``burst`` lookups at once, then ``rate`` per second. A
lookup over the limit is answered 429 with ``Retry-After``: the whole seconds until the client
may ask again. Pure: the clock is injected, and the buckets are kept in memory (per process).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_MAX_CLIENTS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``rate`` lookups per second per client after a burst of ``burst``; ``rate`` 0 disables."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate < 0 or burst < 1:
            raise ValueError("a rate limit needs rate >= 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether lookups are limited at all."""
        return self.rate > 0

    def take(self, client: str) -> int | None:
        """Spend one lookup of ``client``'s.

        Returns:
            None if allowed, else the seconds to wait before asking again (at least 1).
        """
        if not self.enabled:
            return None
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= _MAX_CLIENTS:
                    self._forget_full(now)
                bucket = self._buckets[client] = _Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return None
            return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def _forget_full(self, now: float) -> None:
        """Drop the clients whose bucket has refilled (they are as if never seen)."""
        self._buckets = {
            client: bucket
            for client, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.at) * self.rate < self.burst
        }


__all__ = ["RateLimiter"]
