"""Issue 10, item 6: every function event is either processed or parked with a reason, never dead-lettered
by an exception and never parked when it could have been processed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from shared.runtime import Runtime
from tests.functions.conftest import context_for
from tests.support.fake_mps import FakeMps

Handler = Callable[[bytes, Any], str]


def _submit(handlers: dict[str, Handler], fake_mps: FakeMps, event_text: Callable[..., str]) -> str:
    out = json.loads(
        handlers["submit_on_upload"](event_text("oss_put_object.json").encode(), context_for(fake_mps, "s"))
    )
    return str(out["outcomes"][0]["job_id"])


def _notify(handlers: dict[str, Handler], fake_mps: FakeMps, body: bytes) -> dict[str, Any]:
    return json.loads(handlers["store_results"](body, context_for(fake_mps, "store_results")))  # type: ignore[no-any-return]


DEEP = "[" * 200_000 + "]" * 200_000


@pytest.mark.parametrize(
    "body",
    [
        DEEP.encode(),  # STREAM: the raw body
        json.dumps({"TopicName": "t", "MessageId": "m-deep", "Message": DEEP}).encode(),  # JSON envelope
        json.dumps({"JobId": "a" * 32, "State": "Success", "FpShots": json.loads("[" * 500 + "]" * 500)}).encode(),
    ],
    ids=["stream", "envelope", "nested-field"],
)
def test_deeply_nested_json_is_parked_or_processed_never_raised(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, body: bytes
) -> None:
    out = _notify(handlers, fake_mps, body)  # no RecursionError escapes to FC's retry and the DLQ
    assert out["status"] == "parked"
    [parked] = wired.store.parked_messages()
    assert parked.reason


def test_deeply_nested_oss_and_timer_events_are_parked(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps
) -> None:
    out = json.loads(handlers["submit_on_upload"](DEEP.encode(), context_for(fake_mps, "s")))
    assert "nested too deeply" in out["reason"]
    handlers["report_failed"](b" " + DEEP.encode(), context_for(fake_mps, "report_failed"))
    assert {p.source for p in wired.store.parked_messages()} == {"oss", "timer"}


@pytest.mark.parametrize(
    "job_id", [",".join(["a" * 32] * 12), "a" * 70_000, "a b", ""], ids=["11-commas", "70k", "space", "empty"]
)
def test_a_job_id_that_is_not_one_is_parked_without_querying(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, job_id: str
) -> None:
    out = _notify(handlers, fake_mps, json.dumps({"Type": "FpShot", "JobId": job_id, "State": "Success"}).encode())
    assert out["status"] == "parked" and "JobId" in out["reason"]
    assert fake_mps.calls("QueryFpShotJobList") == []
    assert len(wired.store.parked_messages()) == 1


def test_a_malformed_informational_field_does_not_stop_the_notification(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    job_id = _submit(handlers, fake_mps, event_text)
    fake_mps.complete(job_id)
    body = {"Type": "FpShot", "JobId": job_id, "State": "Success", "FpShots": "garbage", "Code": {"x": 1}}
    out = _notify(handlers, fake_mps, json.dumps(body).encode())
    assert out["status"] == "stored" and out["state"] == "Success"
    assert wired.store.parked_messages() == []


def test_an_unknown_type_is_looked_up_by_job_id(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    job_id = _submit(handlers, fake_mps, event_text)
    fake_mps.complete(job_id)
    out = _notify(handlers, fake_mps, json.dumps({"Type": "FpShotV2", "JobId": job_id, "State": "Success"}).encode())
    assert out["status"] == "stored"
    # A type known not to be a fingerprint job is still parked at once.
    other = {"Type": "Transcode", "JobId": "b" * 32, "State": "Success"}
    assert _notify(handlers, fake_mps, json.dumps(other).encode())["status"] == "parked"


def test_the_stream_shape_with_attributes_is_processed(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    job_id = _submit(handlers, fake_mps, event_text)
    fake_mps.complete(job_id)
    message = json.dumps({"Type": "FpShot", "JobId": job_id, "State": "Success"})
    event = {"body": message, "attrs": {"Extend": json.dumps({"source": "mps"})}}
    out = _notify(handlers, fake_mps, json.dumps(event).encode())
    assert out["status"] == "stored" and wired.store.parked_messages() == []


def test_an_unexpected_state_from_mps_counts_as_not_final(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    job_id = _submit(handlers, fake_mps, event_text)
    fake_mps.set_state(job_id, "Canceling")  # a State MPS may add one day
    out = _notify(handlers, fake_mps, json.dumps({"JobId": job_id, "State": "Canceling"}).encode())
    assert out["status"] in {"pending", "unchanged"} and wired.store.parked_messages() == []
    job = wired.store.get_job(job_id)
    assert job is not None and job.state in {"Queuing", "Analysing"}  # still swept until a known final state
    fake_mps.complete(job_id)
    assert _notify(handlers, fake_mps, json.dumps({"JobId": job_id, "State": "Success"}).encode())["status"] == "stored"
