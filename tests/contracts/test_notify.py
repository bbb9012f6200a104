from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

from shared.contracts.notify import NotifyParseError, parse_fp_shot_job_notify

JOB = "88c6ca184c0e47098a5b665e2a126797"


@pytest.mark.parametrize(
    ("fixture", "state"),
    [("notify_flat.json", "Success"), ("notify_nested.json", "Fail"), ("notify_lower_camel.json", "Success")],
)
def test_accepts_every_documented_shape(event_text: Callable[..., str], fixture: str, state: str) -> None:
    notify = parse_fp_shot_job_notify(event_text(fixture, job_id=JOB))
    assert notify.job_id == JOB
    assert notify.state == state
    assert notify.user_data == "testid-001"


def test_nested_failure_keeps_code_and_message(event_text: Callable[..., str]) -> None:
    notify = parse_fp_shot_job_notify(event_text("notify_nested.json", job_id=JOB))
    assert notify.code == "InvalidInput.MediaUndecodable"
    assert "cannot be decoded" in (notify.message or "")


def test_flat_carries_matches(event_text: Callable[..., str]) -> None:
    notify = parse_fp_shot_job_notify(event_text("notify_flat.json", job_id=JOB))
    assert notify.fp_shots is not None
    assert notify.fp_shots.fp_shot[0].slices[0].duplication.start == 1260.0


def test_base64_body_as_sent_by_queue_producers(event_text: Callable[..., str]) -> None:
    body = base64.b64encode(event_text("notify_flat.json", job_id=JOB).encode())
    assert parse_fp_shot_job_notify(body).job_id == JOB


def test_nested_notify_as_json_string() -> None:
    inner = json.dumps({"JobId": JOB, "State": "Success"})
    body = json.dumps({"Type": "FpShot", "FpShotJobNotify": inner})
    assert parse_fp_shot_job_notify(body).state == "Success"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"not json at all!", "neither JSON nor base64"),
        (b"[1, 2, 3]", "expected a JSON object"),
        (b'{"Type": "FpShot", "State": "Success"}', "JobId"),
    ],
)
def test_unparseable_messages_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(NotifyParseError) as err:
        parse_fp_shot_job_notify(body)
    assert reason in err.value.reason


def test_other_job_types_are_refused(event_text: Callable[..., str]) -> None:
    with pytest.raises(NotifyParseError, match="Transcode"):
        parse_fp_shot_job_notify(event_text("notify_transcode.json"))
