"""A client-side token bucket, so one process never pushes MPS past its QPS quota.

MPS allows 100 requests/s per account (some pages say 150). The default of 50/s leaves room for other
instances and tools sharing the account; it is a per-process limit, so size it by expected concurrency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

DEFAULT_RATE = 50.0  # requests per second
DEFAULT_BURST = 10.0


class RateLimiter(Protocol):
    def acquire(self, tokens: float = 1.0, *, timeout: float | None = None) -> bool:
        """Block until `tokens` may be spent; False (nothing spent) if that would take longer than `timeout`."""
        ...


class TokenBucket:
    """Thread-safe token bucket refilled at `rate` tokens/s, holding at most `burst`.

    Waiting callers reserve their tokens up front (the balance may go negative) and then sleep outside the
    lock, so concurrent callers are spaced `1/rate` apart in arrival order without polling.
    """

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        burst: float = DEFAULT_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, tokens: float = 1.0, *, timeout: float | None = None) -> bool:
        if tokens > self.burst:
            raise ValueError(f"cannot take {tokens} tokens from a bucket of {self.burst}")
        with self._lock:
            self._refill()
            wait = max(0.0, (tokens - self._tokens) / self.rate)
            if timeout is not None and wait > timeout:
                return False
            self._tokens -= tokens
        if wait > 0:
            self._sleep(wait)
        return True

    def try_acquire(self, tokens: float = 1.0) -> bool:
        return self.acquire(tokens, timeout=0.0)

    def available(self) -> float:
        """Tokens in the bucket now (negative while callers wait on reservations)."""
        with self._lock:
            self._refill()
            return self._tokens

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)  # a clock that steps back must not drain the bucket
        self._updated = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)


class Unlimited:
    """A limiter that never waits (for the local engine or tests that do not exercise limiting)."""

    def acquire(self, tokens: float = 1.0, *, timeout: float | None = None) -> bool:
        return True
