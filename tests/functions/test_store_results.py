from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from shared.contracts.mps import FpShotResult
from shared.runtime import Runtime
from tests.functions.conftest import context_for
from tests.support.fake_mps import FakeMps

Handler = Callable[[bytes, Any], str]

RESULT = FpShotResult.model_validate(
    {
        "FpShots": {
            "FpShot": [
                {
                    "PrimaryKey": "lib-item-7",
                    "Similarity": "0.9",
                    "FpShotSlices": {
                        "FpShotSlice": [
                            {
                                "Input": {"Start": "0", "Duration": "10"},
                                "Duplication": {"Start": "30", "Duration": "10"},
                                "Similarity": "0.95",
                            },
                            {
                                "Input": {"Start": "20", "Duration": "5"},
                                "Duplication": {"Start": "70", "Duration": "5"},
                                "Similarity": "0.85",
                            },
                        ]
                    },
                }
            ]
        },
        "AudioFpShots": {
            "FpShot": [
                {
                    "PrimaryKey": "lib-item-7",
                    "Similarity": "0.8",
                    "FpShotSlices": {
                        "FpShotSlice": [
                            {
                                "Input": {"Start": "1", "Duration": "8"},
                                "Duplication": {"Start": "31", "Duration": "8"},
                                "Similarity": "0.8",
                            }
                        ]
                    },
                }
            ]
        },
        "TextFpShots": {
            "TextFpShot": [
                {
                    "PrimaryKey": "script-3",
                    "Similarity": "1.0",
                    "TextFpShotSlices": {
                        "TextFpShotSlice": [
                            {
                                "Similarity": "1.0",
                                "InputText": "It's snowy today.",
                                "DuplicationText": "It's snowy today.",
                                "InputFragment": {"Start": "0", "Duration": "3"},
                            }
                        ]
                    },
                }
            ]
        },
    }
)


def _submit(handlers: dict[str, Handler], fake_mps: FakeMps, event_text: Callable[..., str]) -> str:
    out = json.loads(
        handlers["submit_on_upload"](event_text("oss_put_object.json").encode(), context_for(fake_mps, "s"))
    )
    return out["outcomes"][0]["job_id"]


def _notify(handlers: dict[str, Handler], fake_mps: FakeMps, body: bytes) -> dict[str, Any]:
    return json.loads(handlers["store_results"](body, context_for(fake_mps, "store_results")))


def test_success_is_stored_with_one_row_per_slice(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    job_id = _submit(handlers, fake_mps, event_text)
    fake_mps.complete(job_id, result=RESULT, duration=95)
    out = _notify(handlers, fake_mps, event_text("mns_topic_json_envelope.json", job_id=job_id).encode())
    assert out == {"job_id": job_id, "status": "stored", "state": "Success", "reason": ""}
    job = wired.store.get_job(job_id)
    assert job is not None and job.state == "Success"
    assert job.object_key == "uploads/clip-001.mp4" and job.bucket == "media-bucket"
    assert job.match_count == 3 and job.max_similarity == 1.0 and job.duration == 95  # the text match
    rows = {row.slice_id: row for row in wired.store.matches_for_job(job_id)}
    assert sorted(rows) == ["audio:0000:0000", "text:0000:0000", "video:0000:0000", "video:0000:0001"]
    second = rows["video:0000:0001"]
    assert (second.input_start, second.input_duration, second.duplication_start) == (20.0, 5.0, 70.0)
    assert second.matched_key == "lib-item-7" and second.similarity == 0.85
    assert rows["text:0000:0000"].duplication_text == "It's snowy today."
    assert len(fake_mps.calls("QueryFpShotJobList")) == 1


def test_duplicate_and_out_of_order_notifications_give_one_consistent_result(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    job_id = _submit(handlers, fake_mps, event_text)
    fake_mps.complete(job_id, result=RESULT)
    envelope = event_text("mns_topic_json_envelope.json", job_id=job_id).encode()
    _notify(handlers, fake_mps, envelope)
    first_rows = wired.store.matches_for_job(job_id)
    # the same message again (MNS at-least-once): same rows
    assert _notify(handlers, fake_mps, envelope)["status"] == "unchanged"
    assert wired.store.matches_for_job(job_id) == first_rows
    # a stale view arriving late (MPS answers an earlier state): the finished job never goes back
    fake_mps.set_state(job_id, "Analysing")
    assert _notify(handlers, fake_mps, envelope)["status"] == "unchanged"
    job = wired.store.get_job(job_id)
    assert job is not None and job.state == "Success"
    assert wired.store.matches_for_job(job_id) == first_rows


def test_stream_and_base64_bodies(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    job_id = _submit(handlers, fake_mps, event_text)
    fake_mps.complete(job_id, result=RESULT)
    raw = event_text("notify_flat.json", job_id=job_id).encode()
    assert _notify(handlers, fake_mps, raw)["state"] == "Success"
    assert _notify(handlers, fake_mps, base64.b64encode(raw))["status"] == "unchanged"


def test_failed_job_goes_to_the_outbox_once(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    job_id = _submit(handlers, fake_mps, event_text)
    fake_mps.fail(job_id, "InvalidInput.MediaUndecodable", "cannot decode uploads/clip-001.mp4")
    body = event_text("notify_nested.json", job_id=job_id).encode()
    assert _notify(handlers, fake_mps, body)["state"] == "Fail"
    _notify(handlers, fake_mps, body)
    [failed] = wired.store.pending_failed(10)
    assert failed.job_id == job_id and failed.code == "InvalidInput.MediaUndecodable"
    assert wired.store.matches_for_job(job_id) == []


def test_unparseable_message_is_parked_not_retried(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    envelope = json.loads(event_text("mns_topic_json_envelope.json", job_id="x"))
    envelope["Message"] = "%%% not a notification %%%"
    out = _notify(handlers, fake_mps, json.dumps(envelope).encode())
    assert out["status"] == "parked" and "neither JSON nor base64" in out["reason"]
    [parked] = wired.store.parked_messages()
    assert parked.message_id == envelope["MessageId"] and parked.body == envelope["Message"]
    assert not fake_mps.requests  # nothing to query: the message says no job


def test_job_unknown_to_mps(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    out = _notify(handlers, fake_mps, event_text("notify_flat.json", job_id="f" * 32).encode())
    # Not dropped with a warning: parked, with the reason a review command shows.
    assert out["status"] == "parked" and "unknown to QueryFpShotJobList" in out["reason"]
    [parked] = wired.store.parked_messages()
    assert "f" * 32 in parked.reason and "NonExistIds" in parked.reason
