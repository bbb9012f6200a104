"""Subtitle conversion through the real OSS path: `OssObjectActions` (oss2) against the OSS-compatible server,
read the upload, write its ASR JSON under derived/; and derived/ is outside every prefix a trigger watches.
Needs the engine's local servers, so it is skipped where only the FC layer is installed (Python 3.10)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("waitress", reason="the OSS-compatible server is part of the engine extra")

from engine.localstack.oss_compat import OssCompatServer
from engine.template import load_template
from shared.credentials import Credentials
from shared.services.actions import ActionError, OssObjectActions
from shared.services.submit import UploadedObject, derived_asr_key
from shared.services.subtitles import subtitles_to_asr

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def oss() -> Iterator[OssCompatServer]:
    with OssCompatServer(region="cn-shanghai") as server:
        yield server


def test_read_convert_and_write_through_oss2(oss: OssCompatServer) -> None:
    bucket = oss.bucket(f"media-{uuid.uuid4().hex[:12]}")
    bucket.create_bucket()
    objects = OssObjectActions(oss.endpoint, lambda: Credentials("test-ak", "test-sk"))
    bucket.put_object("uploads/c.srt", b"1\n00:00:01,000 --> 00:00:02,000\nsnow\n")
    obj = UploadedObject(bucket.bucket_name, "uploads/c.srt", "etag-1", "oss-cn-shanghai")
    target = derived_asr_key(obj)
    objects.write(obj.bucket, target, subtitles_to_asr(objects.read(obj.bucket, obj.key)), "application/json")
    stored = bucket.get_object(target)
    assert json.loads(stored.read()) == [{"start": 1.0, "end": 2.0, "text": "snow"}]
    assert stored.headers["Content-Type"] == "application/json"
    with pytest.raises(ActionError) as missing:
        objects.read(obj.bucket, "uploads/none.srt")
    assert not missing.value.retryable  # a 404 will not change on retry: the submit parks it


def test_derived_keys_are_outside_every_triggered_prefix() -> None:
    template = load_template(ROOT / "template.yml")
    prefixes = {t.prefix for t in template.oss_triggers()}
    key = derived_asr_key(UploadedObject("b", "uploads/a.srt", '"etag"', "oss-cn-shanghai"))
    assert prefixes and not any(key.startswith(p) for p in prefixes)
