"""scripts/backfill.py against the local OSS endpoint: listing, the exact FC event shape, selection by the
template's OSS triggers, rate limiting, and local mode with an injected handler."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import oss2
import pytest
from typer.testing import CliRunner

from engine.localstack.oss_compat import OssCompatServer
from engine.template import Template, load_template
from shared.contracts.events import parse_oss_event

ROOT = Path(__file__).resolve().parents[2]
OBJECTS = {
    "library/a.mp4": b"alpha",
    "library/sub/b c+d 视频.mov": b"bravo",
    "library/100%.mp4": b"charlie",
    "library/dir/": b"",  # a folder placeholder
    "uploads/x.MP4": b"x-ray",
    "other/y.mp4": b"yankee",
}


@pytest.fixture(scope="module")
def backfill() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fpscreen_scripts_backfill", ROOT / "scripts" / "backfill.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def oss() -> Iterator[OssCompatServer]:
    with OssCompatServer(region="cn-shanghai") as server:
        yield server


@pytest.fixture
def bucket(oss: OssCompatServer) -> oss2.Bucket:
    b = oss.bucket(f"bf-{uuid.uuid4().hex[:12]}")
    b.create_bucket()
    for key, body in OBJECTS.items():
        b.put_object(key, body)
    return b


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yml", {"ALIYUN::Region": "cn-shanghai"})


class RecordingLimiter:
    def __init__(self) -> None:
        self.acquired = 0

    def acquire(self, tokens: float = 1.0, *, timeout: float | None = None) -> bool:
        self.acquired += 1
        return True


def test_listing_skips_folders_and_pages(backfill: ModuleType, bucket: oss2.Bucket) -> None:
    keys = [o.key for o in backfill.list_objects(bucket, "library/")]
    assert keys == sorted(k for k in OBJECTS if k.startswith("library/") and not k.endswith("/"))
    assert [o.key for o in backfill.list_objects(bucket, "library/", start_after="library/a.mp4")] == [
        "library/sub/b c+d 视频.mov"
    ]


def test_event_has_the_fc_oss_shape(backfill: ModuleType, bucket: oss2.Bucket) -> None:
    info = next(o for o in backfill.list_objects(bucket, "library/sub/"))
    event = backfill.oss_event(bucket.bucket_name, "cn-shanghai", info, account_id="123", request_id="abc")
    (record,) = event["events"]
    assert set(record) == {
        "eventName", "eventSource", "eventTime", "eventVersion", "oss", "region", "requestParameters",
        "responseElements", "userIdentity",
    }  # fmt: skip
    assert record["eventName"] == "ObjectCreated:PutObject" and record["eventSource"] == "acs:oss"
    assert record["eventVersion"] == "1.0" and record["region"] == "cn-shanghai"
    assert record["oss"]["bucket"] == {
        "arn": f"acs:oss:cn-shanghai:123:{bucket.bucket_name}",
        "name": bucket.bucket_name,
        "ownerIdentity": "123",
    }
    obj = record["oss"]["object"]
    assert set(obj) == {"deltaSize", "eTag", "key", "size"}
    assert obj["eTag"] == hashlib.md5(b"bravo").hexdigest().upper()
    assert obj["size"] == obj["deltaSize"] == 5
    assert record["responseElements"] == {"requestId": "ABC"}
    assert record["eventTime"].endswith(".000Z")


@pytest.mark.parametrize("key", [k for k in OBJECTS if not k.endswith("/")])
def test_event_bytes_parse_back_to_the_exact_key(backfill: ModuleType, bucket: oss2.Bucket, key: str) -> None:
    (info,) = [o for o in backfill.list_objects(bucket, key)]
    parsed = parse_oss_event(backfill.event_bytes(backfill.oss_event(bucket.bucket_name, "cn-shanghai", info)))
    (record,) = parsed.events
    assert record.key == key and record.bucket == bucket.bucket_name
    assert record.is_object_created
    assert record.version_tag == hashlib.md5(OBJECTS[key]).hexdigest()  # same idempotency key as a live event


def test_backfill_selects_what_the_triggers_fire_for(
    backfill: ModuleType, bucket: oss2.Bucket, template: Template
) -> None:
    sent: list[bytes] = []
    limiter = RecordingLimiter()
    stats = backfill.backfill(
        backfill.list_objects(bucket, ""),
        bucket=bucket.bucket_name,
        region="cn-shanghai",
        submit=sent.append,
        limiter=limiter,
        select=backfill.trigger_filter(template, bucket.bucket_name),
    )
    keys = [parse_oss_event(payload).events[0].key for payload in sent]
    assert keys == sorted(["library/a.mp4", "library/sub/b c+d 视频.mov", "library/100%.mp4", "uploads/x.MP4"])
    assert (stats.listed, stats.submitted, stats.skipped, stats.failed) == (5, 4, 1, 0)  # other/ is skipped
    assert limiter.acquired == 4  # one token per submission, none for skipped objects
    assert stats.last_key == "uploads/x.MP4"


def test_trigger_filter_compares_the_bucket_once_known(backfill: ModuleType, bucket: oss2.Bucket) -> None:
    deployed = load_template(ROOT / "template.yml", {"MediaBucketName": "the-media-bucket"})
    info = next(o for o in backfill.list_objects(bucket, "library/a.mp4"))
    assert backfill.trigger_filter(deployed, "the-media-bucket")(info)
    assert not backfill.trigger_filter(deployed, "another-bucket")(info)


def test_local_mode_calls_the_injected_handler(backfill: ModuleType, bucket: oss2.Bucket, template: Template) -> None:
    calls: list[tuple[dict[str, Any], Any]] = []

    def handler(event: bytes, context: Any) -> str:
        assert isinstance(event, bytes)  # FC hands Python handlers bytes
        calls.append((json.loads(event), context))
        return "{}"

    submit = backfill.local_submitter(handler, lambda: backfill.local_context(template))
    stats = backfill.backfill(
        backfill.list_objects(bucket, "library/"),
        bucket=bucket.bucket_name,
        region="cn-shanghai",
        submit=submit,
        limiter=RecordingLimiter(),
    )
    assert stats.submitted == len(calls) == 3
    contexts = [context for _, context in calls]
    assert len({c.request_id for c in contexts}) == 3  # a fresh request id per event, as FC gives
    assert {c.function.name for c in contexts} == {"submit_on_upload"}
    assert contexts[0].function.timeout == template.function("submit_on_upload").timeout
    assert {e["events"][0]["oss"]["bucket"]["name"] for e, _ in calls} == {bucket.bucket_name}


def test_failures_are_counted_and_the_run_goes_on(backfill: ModuleType, bucket: oss2.Bucket) -> None:
    def submit(payload: bytes) -> None:
        if parse_oss_event(payload).events[0].key == "library/100%.mp4":
            raise ConnectionError("throttled")

    stats = backfill.backfill(
        backfill.list_objects(bucket, "library/"),
        bucket=bucket.bucket_name,
        region="cn-shanghai",
        submit=submit,
        limiter=RecordingLimiter(),
    )
    assert (stats.submitted, stats.failed) == (2, 1)
    assert stats.errors == [("library/100%.mp4", "ConnectionError: throttled")]


def test_dry_run_and_limit_submit_nothing_beyond(backfill: ModuleType, bucket: oss2.Bucket) -> None:
    sent: list[bytes] = []
    limiter = RecordingLimiter()
    objects = list(backfill.list_objects(bucket, "library/"))
    dry = backfill.backfill(objects, bucket="b", region="r", submit=sent.append, limiter=limiter, dry_run=True)
    assert dry.submitted == 3 and sent == [] and limiter.acquired == 0
    limited = backfill.backfill(objects, bucket="b", region="r", submit=sent.append, limiter=limiter, limit=2)
    assert limited.submitted == 2 and len(sent) == 2


def test_invoke_submitter_invokes_asynchronously(backfill: ModuleType) -> None:
    class FakeClient:
        def __init__(self) -> None:
            self.calls: list[tuple[Any, ...]] = []

        def invoke_function(
            self, service: str, function: str, payload: bytes, headers: dict[str, str], qualifier: Any
        ) -> None:
            self.calls.append((service, function, payload, headers, qualifier))

    client = FakeClient()
    backfill.invoke_submitter(client, "fpscreen")(b"{}")
    assert client.calls == [("fpscreen", "submit_on_upload", b"{}", {"x-fc-invocation-type": "Async"}, None)]


def test_apply_function_env_reports_unfilled_parameters(backfill: ModuleType, template: Template) -> None:
    env: dict[str, str] = {"MPS_REGION": "cn-beijing"}
    unfilled = backfill.apply_function_env(template, environ=env)
    assert env["MPS_REGION"] == "cn-beijing"  # the caller's environment wins
    assert env["MPS_ENDPOINT"] == "mts.cn-shanghai.aliyuncs.com"
    assert set(unfilled) == {"FPSCREEN_ROUTES", "MPS_PIPELINE_ID"}
    filled = load_template(
        ROOT / "template.yml",
        {"LibraryFpDBId": "db", "TextLibraryFpDBId": "text-db", "AudioLibraryFpDBId": "audio-db", "MpsPipelineId": "p"}
        | {"ALIYUN::Region": "cn-shanghai"},
    )
    assert backfill.apply_function_env(filled, environ={}) == []


def test_cli_dry_run(backfill: ModuleType, bucket: oss2.Bucket, oss: OssCompatServer) -> None:
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "ak", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "sk"}
    args = [bucket.bucket_name, "--prefix", "", "--endpoint", oss.endpoint, "--dry-run", "--mode", "local"]
    result = CliRunner().invoke(backfill.app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "5 listed, would send 4, skipped 1, failed 0" in result.output
    assert "resume with --start-after uploads/x.MP4" in result.output
