from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest

from shared.contracts.mps import FpShotConfig, InputFile, SubmitFpShotJobRequest
from shared.idempotency import AlreadyInProgress, object_version_key, primary_key_for
from shared.ports import ClaimOutcome, MpsError, ObjectClaim
from shared.runtime import Runtime
from shared.services.submit import user_data_for
from tests.functions.conftest import TEXT_DB, VIDEO_DB, context_for
from tests.support.fake_mps import FakeMps

Handler = Callable[[bytes, Any], str]


def test_upload_submits_one_job_with_traceable_user_data(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    out = json.loads(
        handlers["submit_on_upload"](event_text("oss_put_object.json").encode(), context_for(fake_mps, "s"))
    )
    [outcome] = out["outcomes"]
    assert outcome["status"] == "submitted"
    [(job_id, job)] = fake_mps.jobs.items()
    assert outcome["job_id"] == job_id
    request = job.request
    assert request.input.bucket == "media-bucket"
    assert request.input.object == "uploads/clip-001.mp4"
    assert request.input.location == "oss-cn-shanghai"
    assert request.fp_shot_config.save_type == "nosave"
    assert request.fp_shot_config.fp_db_id == VIDEO_DB
    assert request.fp_shot_config.primary_key == primary_key_for("media-bucket", "uploads/clip-001.mp4")
    assert request.pipeline_id == "pipe-0001"
    # UserData leads back to the claim row, hence to the object
    claim_key = request.user_data.removeprefix("fpscreen:")
    claim = wired.store.get_object(claim_key)
    assert claim is not None and claim.status == "COMPLETED" and claim.job_id == job_id
    assert claim.object_key == "uploads/clip-001.mp4"
    stored = wired.store.get_job(job_id)
    assert stored is not None and stored.state == "Queuing" and stored.object_key == "uploads/clip-001.mp4"


def test_routes_pick_library_save_type_and_text_type(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    out = json.loads(
        handlers["submit_on_upload"](
            event_text("oss_multi_records_urlencoded.json").encode(), context_for(fake_mps, "s")
        )
    )
    assert [o["status"] for o in out["outcomes"]] == ["submitted", "submitted"]
    by_object = {unquote(job.request.input.object): job.request.fp_shot_config for job in fake_mps.jobs.values()}
    assert "library/%E7%94%B5%E5%BD%B1%20trailer.mp4" in {j.request.input.object for j in fake_mps.jobs.values()}
    assert by_object["library/电影 trailer.mp4"].save_type == "forcesave"
    assert by_object["library/电影 trailer.mp4"].fp_db_id == VIDEO_DB
    assert by_object["uploads/notes/readme.txt"].fp_db_id == TEXT_DB
    assert by_object["uploads/notes/readme.txt"].text_type == "Text"


def test_three_duplicate_deliveries_give_one_job(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    event = event_text("oss_put_object.json").encode()
    statuses = [
        json.loads(handlers["submit_on_upload"](event, context_for(fake_mps, "s")))["outcomes"][0]["status"]
        for _ in range(3)
    ]
    assert statuses == ["submitted", "duplicate", "duplicate"]
    assert len(fake_mps.calls("SubmitFpShotJob")) == 1


def test_concurrent_duplicate_deliveries_give_one_job(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    event = event_text("oss_put_object.json").encode()
    results: list[str] = []
    start = threading.Barrier(3)

    def deliver() -> None:
        start.wait()
        try:
            results.append(
                json.loads(handlers["submit_on_upload"](event, context_for(fake_mps, "s")))["outcomes"][0]["status"]
            )
        except AlreadyInProgress:
            results.append("retry-later")  # FC's async retry redelivers; by then it is a duplicate

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("submitted") == 1
    assert len(fake_mps.calls("SubmitFpShotJob")) == 1
    # the redelivery FC makes after an AlreadyInProgress is a no-op
    again = json.loads(handlers["submit_on_upload"](event, context_for(fake_mps, "s")))
    assert again["outcomes"][0]["status"] == "duplicate"


def test_crash_after_claim_is_retried_once_the_lease_expires(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    """An invocation that claimed the object and died before submitting must not lose the upload."""
    key = object_version_key("media-bucket", "uploads/clip-001.mp4", "688a7bf4f233dc9c88a80bf985ab7329", VIDEO_DB)
    crashed = ObjectClaim(key=key, owner="dead-invocation", status="IN_PROGRESS", expires_at=1.0, created_at=0.5)
    assert wired.store.claim_object(crashed, now=0.5).outcome is ClaimOutcome.ACQUIRED
    out = json.loads(
        handlers["submit_on_upload"](event_text("oss_put_object.json").encode(), context_for(fake_mps, "s"))
    )
    assert out["outcomes"][0]["status"] == "submitted"
    assert len(fake_mps.calls("SubmitFpShotJob")) == 1


def test_throttled_submit_is_retried_with_backoff(
    handlers: dict[str, Handler],
    wired: Runtime,
    fake_mps: FakeMps,
    sleeps: list[float],
    event_text: Callable[..., str],
) -> None:
    fake_mps.throttle_next(2, action="SubmitFpShotJob")
    out = json.loads(
        handlers["submit_on_upload"](event_text("oss_put_object.json").encode(), context_for(fake_mps, "s"))
    )
    assert out["outcomes"][0]["status"] == "submitted"
    assert len(fake_mps.calls("SubmitFpShotJob")) == 3
    assert len(fake_mps.calls("SubmitFpShotJob", ok=True)) == 1
    assert len(sleeps) == 2


def test_throttled_beyond_retries_fails_the_invocation_and_loses_nothing(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    event = event_text("oss_put_object.json").encode()
    fake_mps.throttle_next(4, action="SubmitFpShotJob", status=503)
    with pytest.raises(MpsError) as err:
        handlers["submit_on_upload"](event, context_for(fake_mps, "s"))
    assert err.value.retryable and err.value.code.startswith("Throttling")
    assert not fake_mps.jobs
    # FC retries the async event: the released claim is taken again and the job is submitted once
    out = json.loads(handlers["submit_on_upload"](event, context_for(fake_mps, "s")))
    assert out["outcomes"][0]["status"] == "submitted"
    assert len(fake_mps.jobs) == 1


def test_rejected_submit_is_parked_not_retried(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    fake_mps.fail_next(1, status=400, code="InvalidParameter.DBNotExist", action="SubmitFpShotJob")
    out = json.loads(
        handlers["submit_on_upload"](event_text("oss_put_object.json").encode(), context_for(fake_mps, "s"))
    )
    assert out["outcomes"][0]["status"] == "rejected"
    assert len(fake_mps.calls("SubmitFpShotJob")) == 1  # a 4xx parameter error is not retried
    [parked] = wired.store.parked_messages()
    assert "InvalidParameter.DBNotExist" in parked.reason
    assert json.loads(parked.body)["FpShotConfig"]  # the request is kept whole for review


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b'{"events": []}', "events"),
    ],
)
def test_malformed_oss_event_is_parked_with_a_clear_reason(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, raw: bytes, reason: str
) -> None:
    out = json.loads(handlers["submit_on_upload"](raw, context_for(fake_mps, "s")))
    assert reason in out["reason"]
    [parked] = wired.store.parked_messages()
    assert parked.body == raw.decode() and parked.source == "oss"
    assert not fake_mps.requests


def test_unrouted_and_non_create_events_are_skipped(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_json: Callable[..., Any]
) -> None:
    event = event_json("oss_put_object.json")
    event["events"][0]["oss"]["object"]["key"] = "elsewhere/a.mp4"
    removed = json.loads(json.dumps(event))
    removed["events"][0]["eventName"] = "ObjectRemoved:DeleteObject"
    for payload in (event, removed):
        out = json.loads(handlers["submit_on_upload"](json.dumps(payload).encode(), context_for(fake_mps, "s")))
        assert out["outcomes"][0]["status"] == "skipped"
    assert not fake_mps.jobs


def test_takeover_adopts_the_job_a_crashed_invocation_already_submitted(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    """The invocation submitted, then died before marking its claim complete: the retry must find that job
    (by its UserData) instead of submitting a second one."""
    key = object_version_key("media-bucket", "uploads/clip-001.mp4", "688a7bf4f233dc9c88a80bf985ab7329", VIDEO_DB)
    other = SubmitFpShotJobRequest(
        input=InputFile(bucket="media-bucket", location="oss-cn-shanghai", object="uploads/other.mp4"),
        fp_shot_config=FpShotConfig(primary_key="other", save_type="nosave"),
        pipeline_id="pipe-0001",
        user_data="fpscreen:someone-else",
    )
    fake_mps.add_job(other)
    mine = other.model_copy(update={"user_data": user_data_for(key)})
    job_id = fake_mps.add_job(mine)
    crashed = ObjectClaim(key=key, owner="dead", status="IN_PROGRESS", expires_at=1.0, created_at=time.time() - 5)
    assert wired.store.claim_object(crashed, now=0.5).outcome is ClaimOutcome.ACQUIRED
    out = json.loads(
        handlers["submit_on_upload"](event_text("oss_put_object.json").encode(), context_for(fake_mps, "s"))
    )
    assert out["outcomes"][0]["job_id"] == job_id
    assert fake_mps.calls("SubmitFpShotJob") == []
    stored = wired.store.get_job(job_id)
    assert stored is not None and stored.object_key == "uploads/clip-001.mp4"
