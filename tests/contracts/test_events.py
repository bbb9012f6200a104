from __future__ import annotations

from collections.abc import Callable

import pytest

from shared.contracts.events import (
    EventParseError,
    parse_mns_topic_event,
    parse_oss_event,
    parse_timer_event,
)


def test_oss_put_object(event_text: Callable[..., str]) -> None:
    event = parse_oss_event(event_text("oss_put_object.json").encode())
    record = event.events[0]
    assert record.bucket == "media-bucket"
    assert record.key == "uploads/clip-001.mp4"
    assert record.location == "oss-cn-shanghai"
    assert record.is_object_created
    assert record.version_tag == "688a7bf4f233dc9c88a80bf985ab7329"


def test_oss_keys_are_url_decoded_and_etags_unquoted(event_text: Callable[..., str]) -> None:
    event = parse_oss_event(event_text("oss_multi_records_urlencoded.json"))
    assert [r.key for r in event.events] == ["library/电影 trailer.mp4", "uploads/notes/readme.txt"]
    assert event.events[0].version_tag == "9b2cf535f27731c974343645a3985328-2"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not JSON"),
        (b'{"events": []}', "events"),
        (b'{"foo": 1}', "events"),
    ],
)
def test_oss_malformed(raw: bytes, message: str) -> None:
    with pytest.raises(EventParseError, match=message):
        parse_oss_event(raw)


def test_oss_record_without_object(event_text: Callable[..., str]) -> None:
    with pytest.raises(EventParseError, match=r"events\.0\.oss\.object"):
        parse_oss_event(event_text("oss_malformed_no_object.json"))


def test_mns_json_envelope(event_text: Callable[..., str]) -> None:
    message = parse_mns_topic_event(event_text("mns_topic_json_envelope.json", job_id="j1").encode())
    assert message.topic_name == "mts-fp-notify"
    assert message.message_id == "C39FB8C345BBFBA8-1-1687FEC4D4F-20000****"
    assert b'"JobId":"j1"' in message.body


def test_mns_stream_body_is_passed_through(event_text: Callable[..., str]) -> None:
    raw = event_text("notify_flat.json", job_id="j2").encode()
    message = parse_mns_topic_event(raw)
    assert message.body == raw
    assert message.message_id is None


def test_mns_empty_event() -> None:
    with pytest.raises(EventParseError, match="empty"):
        parse_mns_topic_event(b"  ")


def test_timer(event_text: Callable[..., str]) -> None:
    timer = parse_timer_event(event_text("timer.json").encode())
    assert timer.trigger_name == "report-failed-timer"
    assert parse_timer_event(b"").trigger_time is None
    with pytest.raises(EventParseError):
        parse_timer_event(b"[1]")
