"""The one backoff policy: capped exponential backoff with full jitter (`Backoff`), and retries bounded by
attempts and by a deadline (`RetryPolicy`, run by `Retrier`). The MPS clients, the Tablestore batch writer,
the local FC's async retries and the engine's notification outbox all wait by `Backoff`.

Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): before retry n the caller sleeps
`random() * min(cap, base * 2**(n-1))`. Spreading retries uniformly keeps many FC instances that
were throttled together from retrying together. The deadline lets a function stop retrying while it still
has time to record the failure instead of being killed by its own timeout.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from shared.log import get_logger

T = TypeVar("T")

logger = get_logger("fpscreen.retry")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter: before retry n (1-based) wait a uniform draw below
    `ceiling(n) = min(cap, base * 2**(n-1))`."""

    base: float = 0.2  # seconds: the ceiling before the first retry
    cap: float = 5.0  # seconds: no single wait is longer

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0:
            raise ValueError("delays must not be negative")

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry number `retry` (1 = the first retry)."""
        exponent = min(max(retry - 1, 0), 62)  # 2**62 already exceeds any sane cap; avoids huge floats
        return min(self.cap, self.base * 2.0**exponent)

    def delay(self, retry: int, rand: float | None = None) -> float:
        """Full jitter: `rand` (in [0, 1), drawn here when None) times the ceiling."""
        return (_random.random() if rand is None else rand) * self.ceiling(retry)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4  # attempts in total, the first included
    base_delay: float = 0.2  # seconds: the cap before the first retry
    max_delay: float = 5.0  # seconds: no single wait is longer
    deadline: float | None = 30.0  # seconds for the whole call, waits included; None = attempts only

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError("deadline must be positive")

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.base_delay, self.max_delay)

    def backoff_cap(self, retry: int) -> float:
        """The longest wait before retry number `retry` (1 = the first retry)."""
        return self.backoff.ceiling(retry)

    def delay(self, retry: int, rand: float) -> float:
        """Full jitter: a uniform draw in [0, cap) given `rand` in [0, 1)."""
        return self.backoff.delay(retry, rand)


NO_RETRY = RetryPolicy(max_attempts=1, deadline=None)


def is_retryable_error(exc: BaseException) -> bool:
    """Default predicate: errors that say so themselves (`MpsError.retryable`)."""
    return bool(getattr(exc, "retryable", False))


class Retrier:
    """Runs a call under a `RetryPolicy`. Clock, sleep and randomness are injectable so tests never wait."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.policy = policy
        self.sleep = sleep
        self.clock = clock
        self.random = random

    def call(
        self,
        fn: Callable[[], T],
        *,
        is_retryable: Callable[[BaseException], bool] = is_retryable_error,
        deadline_at: float | None = None,
        attempt_timeout: float = 0.0,
        on_retry: Callable[[int, float, BaseException], None] | None = None,
        label: str = "",
    ) -> T:
        """Call `fn` until it succeeds, fails for good, runs out of attempts or would pass the deadline.

        `deadline_at` is an absolute time on `clock` (e.g. an FC invocation's end minus a margin); the
        earlier of it and `policy.deadline` wins. No retry starts unless its wait plus `attempt_timeout`
        (the longest one attempt can take) ends by the deadline, so the whole call returns in time.
        The last error is re-raised unchanged when giving up. `label` names the call in the logs.
        """
        start = self.clock()
        deadline = deadline_at
        if self.policy.deadline is not None:
            own = start + self.policy.deadline
            deadline = own if deadline is None else min(deadline, own)
        attempt = 1
        while True:
            try:
                return fn()
            except Exception as exc:
                if not is_retryable(exc) or attempt >= self.policy.max_attempts:
                    raise
                wait = self.policy.delay(attempt, self.random())
                if deadline is not None and self.clock() + wait + attempt_timeout > deadline:
                    logger.warning(
                        "giving up: the deadline is near",
                        extra={"call": label, "attempts": attempt, "error": str(exc)},
                    )
                    raise
                if on_retry is not None:
                    on_retry(attempt, wait, exc)
                retry = {"call": label, "attempt": attempt, "wait": round(wait, 3), "error": str(exc)}
                logger.info("retrying", extra=retry)
                self.sleep(wait)
                attempt += 1

    def remaining(self, deadline_at: float | None) -> float | None:
        """Seconds left until `deadline_at` on this retrier's clock (None = unbounded)."""
        return None if deadline_at is None else max(0.0, deadline_at - self.clock())
