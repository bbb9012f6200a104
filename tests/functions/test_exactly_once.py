"""Issue 10, item 1: one upload never becomes two MPS jobs, whatever fails around the submit.

(a) MPS accepts the submit but the answer is lost (read timeout, reset, 5xx): the client does not resend it,
    the service finds the job by its UserData and adopts it.
(b) Something raises after a successful submit (the store is write-locked): the claim is kept as
    MAYBE_SUBMITTED, not deleted, so FC's retry reconciles by UserData instead of submitting again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from shared.ports import JobRecord, MpsError
from shared.runtime import Runtime
from tests.functions.conftest import context_for
from tests.support.fake_mps import FakeMps

Handler = Callable[[bytes, Any], str]


def _claim_of(fake_mps: FakeMps, runtime: Runtime) -> Any:
    [job] = fake_mps.jobs.values()
    return runtime.store.get_object(job.request.user_data.removeprefix("fpscreen:"))  # type: ignore[union-attr]


@pytest.mark.parametrize("status", [0, 500, 503])
def test_a_submit_whose_answer_is_lost_is_adopted_not_resent(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str], status: int
) -> None:
    fake_mps.accept_then_fail_next(1, status=status, code="ServiceUnavailable" if status else "InternalError")
    event = event_text("oss_put_object.json").encode()
    out = json.loads(handlers["submit_on_upload"](event, context_for(fake_mps, "s")))
    [(job_id, _)] = fake_mps.jobs.items()
    assert out["outcomes"][0] == {"key": "uploads/clip-001.mp4", "status": "submitted", "job_id": job_id, "reason": ""}
    assert len(fake_mps.calls("SubmitFpShotJob")) == 1
    claim = _claim_of(fake_mps, wired)
    assert (claim.status, claim.job_id) == ("COMPLETED", job_id)
    # A redelivery is a no-op.
    again = json.loads(handlers["submit_on_upload"](event, context_for(fake_mps, "s")))
    assert again["outcomes"][0]["status"] == "duplicate" and len(fake_mps.jobs) == 1


def test_a_store_failure_after_the_submit_keeps_the_claim_and_the_retry_adopts(
    handlers: dict[str, Handler],
    wired: Runtime,
    fake_mps: FakeMps,
    event_text: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_save = wired.store.save_job
    failures = [sqlite3.OperationalError("database is locked")]

    def locked_once(job: JobRecord) -> bool:
        if failures:
            raise failures.pop()
        return real_save(job)

    monkeypatch.setattr(wired.store, "save_job", locked_once)
    event = event_text("oss_put_object.json").encode()
    with pytest.raises(sqlite3.OperationalError):
        handlers["submit_on_upload"](event, context_for(fake_mps, "s"))
    [(job_id, _)] = fake_mps.jobs.items()
    claim = _claim_of(fake_mps, wired)
    assert claim is not None and claim.status == "MAYBE_SUBMITTED"  # kept, lease already expired

    out = json.loads(handlers["submit_on_upload"](event, context_for(fake_mps, "s")))  # FC's retry
    assert out["outcomes"][0]["status"] == "submitted" and out["outcomes"][0]["job_id"] == job_id
    assert len(fake_mps.calls("SubmitFpShotJob")) == 1 and len(fake_mps.jobs) == 1
    assert (_claim_of(fake_mps, wired).status, wired.store.get_job(job_id).state) == ("COMPLETED", "Queuing")  # type: ignore[union-attr]


def test_a_lost_answer_whose_job_is_not_listed_yet_fails_retryably_and_keeps_the_claim(
    handlers: dict[str, Handler],
    wired: Runtime,
    fake_mps: FakeMps,
    event_text: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # MPS lists a new job a moment later than it creates it: the first look finds nothing, the retry does.
    fake_mps.accept_then_fail_next(1, status=0)
    real_page = fake_mps._page
    hidden = [True]

    def slow_listing(*args: Any, **kwargs: Any) -> Any:
        if hidden:
            hidden.pop()
            return [], None
        return real_page(*args, **kwargs)

    monkeypatch.setattr(fake_mps, "_page", slow_listing)
    event = event_text("oss_put_object.json").encode()
    with pytest.raises(MpsError) as info:
        handlers["submit_on_upload"](event, context_for(fake_mps, "s"))
    assert info.value.retryable and info.value.maybe_accepted
    assert _claim_of(fake_mps, wired).status == "MAYBE_SUBMITTED"
    out = json.loads(handlers["submit_on_upload"](event, context_for(fake_mps, "s")))
    [(job_id, _)] = fake_mps.jobs.items()
    assert out["outcomes"][0]["job_id"] == job_id and len(fake_mps.calls("SubmitFpShotJob")) == 1


def test_a_failed_reconciliation_keeps_the_claim_and_parks_nothing(
    handlers: dict[str, Handler],
    wired: Runtime,
    fake_mps: FakeMps,
    event_text: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_save = wired.store.save_job
    failures = [sqlite3.OperationalError("database is locked")]

    def locked_once(job: JobRecord) -> bool:
        if failures:
            raise failures.pop()
        return real_save(job)

    monkeypatch.setattr(wired.store, "save_job", locked_once)
    event = event_text("oss_put_object.json").encode()
    with pytest.raises(sqlite3.OperationalError):
        handlers["submit_on_upload"](event, context_for(fake_mps, "s"))
    # The retry's look-up fails with an error that is not retryable in itself: the job may still exist, so
    # the invocation fails retryably, the claim stays MAYBE_SUBMITTED and nothing is parked or re-submitted.
    fake_mps.fail_next(1, status=400, code="InvalidParameter", action="QueryFpShotJobList")
    with pytest.raises(MpsError) as info:
        handlers["submit_on_upload"](event, context_for(fake_mps, "s"))
    assert info.value.retryable and info.value.maybe_accepted
    assert _claim_of(fake_mps, wired).status == "MAYBE_SUBMITTED" and wired.store.parked_messages() == []
    out = json.loads(handlers["submit_on_upload"](event, context_for(fake_mps, "s")))
    [(job_id, _)] = fake_mps.jobs.items()
    assert out["outcomes"][0]["job_id"] == job_id and len(fake_mps.calls("SubmitFpShotJob")) == 1
