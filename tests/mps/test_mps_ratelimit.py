"""shared.mps.ratelimit: token bucket spacing, bursts, timeouts and thread safety, on a fake clock."""

from __future__ import annotations

import itertools
import threading

import pytest

from shared.mps.ratelimit import DEFAULT_RATE, TokenBucket

from .helpers import FakeClock


def bucket(clock: FakeClock, rate: float = 10.0, burst: float = 1.0) -> TokenBucket:
    return TokenBucket(rate, burst, clock=clock, sleep=clock.sleep)


def test_default_rate_leaves_headroom_below_the_documented_quota() -> None:
    assert DEFAULT_RATE < 100  # MPS: 100 QPS per account
    assert TokenBucket().rate == DEFAULT_RATE


def test_calls_are_spaced_one_over_rate(clock: FakeClock) -> None:
    limiter = bucket(clock, rate=10)
    starts = []
    for _ in range(4):
        limiter.acquire()
        starts.append(clock())
    assert [b - a for a, b in itertools.pairwise(starts)] == pytest.approx([0.1, 0.1, 0.1])


def test_burst_passes_at_once_then_refills_with_time(clock: FakeClock) -> None:
    limiter = bucket(clock, rate=5, burst=3)
    for _ in range(3):
        limiter.acquire()
    assert clock.sleeps == []
    limiter.acquire()
    assert clock.sleeps == pytest.approx([0.2])
    clock.now += 10.0  # idle: the bucket refills, but never above the burst
    assert limiter.available() == pytest.approx(3.0)


def test_timeout_refuses_without_spending(clock: FakeClock) -> None:
    limiter = bucket(clock, rate=2)
    assert limiter.try_acquire()
    assert not limiter.try_acquire()
    assert not limiter.acquire(timeout=0.4)  # the next token is 0.5 s away
    assert limiter.available() == pytest.approx(0.0)  # the refusals reserved nothing
    assert limiter.acquire(timeout=0.5) and clock.sleeps == pytest.approx([0.5])


def test_concurrent_callers_get_distinct_slots(clock: FakeClock) -> None:
    """With the clock frozen, each reservation must queue behind the previous one: waits 0, 0.1, ..., 1.9."""
    waits: list[float] = []
    lock = threading.Lock()

    def record(seconds: float) -> None:
        with lock:
            waits.append(seconds)

    limiter = TokenBucket(10, 1, clock=clock, sleep=record)
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        for _ in range(5):
            limiter.acquire()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(waits) == pytest.approx([k / 10 for k in range(1, 20)])


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=2).acquire(3)
