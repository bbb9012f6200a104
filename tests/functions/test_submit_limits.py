"""Issue 10, item 4: limit what MPS limits, and park with a reason anything that cannot be submitted.

A long non-ASCII key is valid (MPS counts the key's UTF-8 bytes, not its percent-encoded length); a key or a
Location past MPS's limits is parked with its reason instead of failing the invocation into the DLQ.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest
from pydantic import ValidationError

from shared.contracts.mps import InputFile
from shared.runtime import Runtime
from tests.functions.conftest import context_for
from tests.support.fake_mps import FakeMps

Handler = Callable[[bytes, Any], str]
LONG_CHINESE_KEY = "uploads/" + "视频片段" * 30 + ".mp4"  # 132 characters, 372 bytes, 1,092 encoded


def _event(event_json: Callable[..., Any], *, key: str, region: str = "cn-shanghai") -> bytes:
    event = event_json("oss_put_object.json")
    event["events"][0]["oss"]["object"]["key"] = key
    event["events"][0]["region"] = region
    return json.dumps(event, ensure_ascii=False).encode()


def test_a_long_non_ascii_key_is_submitted(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_json: Callable[..., Any]
) -> None:
    assert (len(LONG_CHINESE_KEY), len(LONG_CHINESE_KEY.encode())) == (132, 372)
    out = json.loads(handlers["submit_on_upload"](_event(event_json, key=LONG_CHINESE_KEY), context_for(fake_mps, "s")))
    assert out["outcomes"][0]["status"] == "submitted"
    [job] = fake_mps.jobs.values()
    assert len(job.request.input.object) > 1024 and unquote(job.request.input.object) == LONG_CHINESE_KEY
    assert wired.store.parked_messages() == []


@pytest.mark.parametrize(
    ("key", "region", "field"),
    [
        ("uploads/" + "长" * 340 + ".mp4", "cn-shanghai", "Object"),  # 1,032 bytes: over MPS's 1,024
        ("uploads/clip-001.mp4", "cn-" + "x" * 60, "Location"),  # oss-cn-xxx…: 67 characters, over 64
    ],
)
def test_what_mps_cannot_accept_is_parked_with_its_reason(
    handlers: dict[str, Handler],
    wired: Runtime,
    fake_mps: FakeMps,
    event_json: Callable[..., Any],
    key: str,
    region: str,
    field: str,
) -> None:
    event = _event(event_json, key=key, region=region)
    out = json.loads(handlers["submit_on_upload"](event, context_for(fake_mps, "s")))  # returns: no DLQ
    [outcome] = out["outcomes"]
    assert outcome["status"] == "rejected" and field.lower() in outcome["reason"].lower()
    assert fake_mps.calls("SubmitFpShotJob") == []
    [parked] = wired.store.parked_messages()
    assert parked.reason.startswith("cannot be submitted to MPS") and field.lower() in parked.reason.lower()
    assert parked.attrs["object_key"] == key
    # A redelivery parks nothing new and still does not raise.
    handlers["submit_on_upload"](event, context_for(fake_mps, "s"))
    assert len(wired.store.parked_messages()) == 1


def test_input_file_limits_count_key_bytes() -> None:
    InputFile(bucket="b", location="oss-cn-shanghai", object="%E9%95%BF" * 341)  # 1,023 bytes decoded
    with pytest.raises(ValidationError, match="1026-byte key"):
        InputFile(bucket="b", location="oss-cn-shanghai", object="%E9%95%BF" * 342)
