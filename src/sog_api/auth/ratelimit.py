"""Rate limiting: a token bucket per key (an API key, or a client address for refused
authentications), kept in this process's memory.

Each API process counts on its own, so N replicas behind a load balancer allow up to N times the
configured rate in all; a shared store (Redis, the database) would be needed for one global count.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """Whether a request may pass, and the numbers for the RateLimit-* headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the full allowance is back
    retry_after: int  # until the next request may pass (0 when allowed)

    def headers(self) -> list[tuple[bytes, bytes]]:
        values = [
            (b"ratelimit-limit", self.limit),
            (b"ratelimit-remaining", self.remaining),
            (b"ratelimit-reset", self.reset_seconds),
        ]
        if not self.allowed:
            values.append((b"retry-after", self.retry_after))
        return [(name, str(value).encode()) for name, value in values]


class RateLimiter:
    """Allows ``per_minute`` requests per key: bursts up to that many, refilled evenly."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 100_000,
    ) -> None:
        self.limit = per_minute
        self.rate = per_minute / 60.0  # tokens per second
        self.clock = clock
        self.max_buckets = max_buckets
        # key: (tokens, last seen), least recently seen first
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def hit(self, key: str) -> Decision:
        """Take one token from ``key``'s bucket if there is one."""
        now = self.clock()
        tokens, last = self._buckets.get(key, (float(self.limit), now))
        tokens = min(float(self.limit), tokens + max(0.0, now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.max_buckets:
            self._prune(now)
        return Decision(
            allowed=allowed,
            limit=self.limit,
            remaining=math.floor(tokens),
            reset_seconds=math.ceil((self.limit - tokens) / self.rate),
            retry_after=0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate)),
        )

    def _prune(self, now: float) -> None:
        """Keep at most ``max_buckets``: forget the buckets that have refilled completely (they
        hold nothing worth keeping), then, under a flood of new keys, the least recently seen.

        The least recently seen come first, so each hit does a constant amount of work on
        average, however many keys a flood brings.
        """
        full_after = self.limit / self.rate
        buckets = self._buckets
        while buckets and now - next(iter(buckets.values()))[1] >= full_after:
            buckets.popitem(last=False)
        while len(buckets) > self.max_buckets:
            buckets.popitem(last=False)
