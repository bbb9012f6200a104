"""shared.retry: capped exponential backoff with full jitter, attempt cap and deadline."""

from __future__ import annotations

import json
import logging

import pytest

from shared.log import JsonFormatter, bind_invocation
from shared.ports import MpsError
from shared.retry import NO_RETRY, Retrier, RetryPolicy

from .helpers import FakeClock


class Flaky:
    """Fails with the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def throttled() -> MpsError:
    return MpsError("Throttling.User", "slow down", http_status=400, retryable=True)


def retrier(policy: RetryPolicy, clock: FakeClock, rand: float = 0.5) -> Retrier:
    return Retrier(policy, sleep=clock.sleep, clock=clock, random=lambda: rand)


def test_backoff_caps_grow_exponentially_up_to_max_delay() -> None:
    policy = RetryPolicy(base_delay=0.2, max_delay=1.0)
    assert [policy.backoff_cap(n) for n in range(1, 6)] == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])
    assert policy.backoff_cap(500) == 1.0  # no overflow for absurd attempt numbers


@pytest.mark.parametrize("rand", [0.0, 0.25, 0.999999])
def test_full_jitter_draws_uniformly_below_the_cap(rand: float) -> None:
    policy = RetryPolicy(base_delay=0.2, max_delay=1.0)
    assert policy.delay(3, rand) == pytest.approx(rand * 0.8)
    assert 0.0 <= policy.delay(3, rand) < 0.8


def test_retries_until_success_with_growing_waits(clock: FakeClock) -> None:
    fn = Flaky(throttled(), throttled(), throttled())
    seen: list[tuple[int, float]] = []
    result = retrier(RetryPolicy(max_attempts=5, base_delay=0.1, deadline=None), clock).call(
        fn, on_retry=lambda attempt, wait, _exc: seen.append((attempt, wait))
    )
    assert result == "ok" and fn.calls == 4
    assert clock.sleeps == pytest.approx([0.05, 0.1, 0.2])
    assert [a for a, _ in seen] == [1, 2, 3]


def test_gives_up_after_max_attempts_with_the_last_error(clock: FakeClock) -> None:
    last = throttled()
    fn = Flaky(throttled(), throttled(), last, throttled())
    with pytest.raises(MpsError) as info:
        retrier(RetryPolicy(max_attempts=3, deadline=None), clock).call(fn)
    assert info.value is last and fn.calls == 3 and len(clock.sleeps) == 2


def test_non_retryable_errors_and_other_exceptions_are_raised_at_once(clock: FakeClock) -> None:
    fn = Flaky(MpsError("InvalidParameter", "bad", http_status=400, retryable=False))
    with pytest.raises(MpsError):
        retrier(RetryPolicy(), clock).call(fn)
    with pytest.raises(KeyError):
        retrier(RetryPolicy(), clock).call(Flaky(KeyError("bug")))
    assert clock.sleeps == []


def test_custom_predicate(clock: FakeClock) -> None:
    fn = Flaky(TimeoutError("t"), TimeoutError("t"))
    assert retrier(RetryPolicy(deadline=None), clock).call(fn, is_retryable=lambda e: isinstance(e, OSError)) == "ok"


def test_deadline_from_policy_and_from_caller(clock: FakeClock) -> None:
    policy = RetryPolicy(max_attempts=100, base_delay=1.0, max_delay=1.0, deadline=2.5)
    fn = Flaky(*[throttled() for _ in range(50)])
    with pytest.raises(MpsError):
        retrier(policy, clock, rand=0.999).call(fn)
    assert fn.calls == 3 and clock.now - 1000.0 < 2.5  # waits 0.999 + 0.999; a third would pass 2.5 s
    clock2 = FakeClock()
    fn2 = Flaky(*[throttled() for _ in range(50)])
    with pytest.raises(MpsError):
        retrier(RetryPolicy(max_attempts=100, base_delay=1.0, max_delay=1.0, deadline=None), clock2, 0.999).call(
            fn2, deadline_at=clock2() + 1.5
        )
    assert fn2.calls == 2


def test_attempt_timeout_counts_against_the_deadline(clock: FakeClock) -> None:
    """Attempts that take 2 s each: only retries that can finish by the deadline are started."""
    policy = RetryPolicy(max_attempts=100, base_delay=1.0, max_delay=1.0, deadline=None)

    def slow_throttled() -> str:
        clock.now += 2.0
        raise throttled()

    deadline = clock() + 5.5
    calls_before = clock.now
    with pytest.raises(MpsError):
        retrier(policy, clock).call(slow_throttled, deadline_at=deadline, attempt_timeout=2.0)
    assert clock.now <= deadline and clock.now - calls_before == pytest.approx(4.5)  # 2 attempts, 1 wait
    clock.now = calls_before
    with pytest.raises(MpsError):  # without the budget a third attempt starts at 5.0 and ends past 5.5
        retrier(policy, clock).call(slow_throttled, deadline_at=deadline)
    assert clock.now > deadline


def test_no_retry_policy_makes_one_attempt(clock: FakeClock) -> None:
    fn = Flaky(throttled())
    with pytest.raises(MpsError):
        retrier(NO_RETRY, clock).call(fn)
    assert fn.calls == 1


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"base_delay": -1.0}, {"max_delay": -0.1}, {"deadline": 0.0}])
def test_invalid_policies_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_retry_logs_are_json_lines_carrying_the_fc_request_id(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    bind_invocation("req-42", "submit_on_upload")
    try:
        with caplog.at_level(logging.INFO, logger="fpscreen"):
            retrier(RetryPolicy(max_attempts=3, base_delay=0.1, deadline=None), clock).call(
                Flaky(throttled()), label="SubmitFpShotJob"
            )
        [record] = [r for r in caplog.records if r.name.startswith("fpscreen.")]
        entry = json.loads(JsonFormatter().format(record))
    finally:
        bind_invocation("", "")
    assert entry["request_id"] == "req-42" and entry["function"] == "submit_on_upload"
    assert (entry["message"], entry["call"], entry["attempt"]) == ("retrying", "SubmitFpShotJob", 1)
    assert entry["wait"] == pytest.approx(0.05) and "Throttling.User" in entry["error"]
