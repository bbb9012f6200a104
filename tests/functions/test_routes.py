"""Routing through submit_on_upload, end to end (handler → official SDK → fake MPS; store on both backends):
one object to several libraries (one job and one claim per object version and library), and subtitles
converted to ASR JSON next to the object (under derived/) before the converted object is submitted. The bucket
here is an in-memory double of `OssObjectActions` (these tests also run on the FC runtime's Python, without the
engine); test_routes_oss.py runs the conversion through oss2 against the OSS-compatible server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared import runtime as runtime_module
from shared.config import Settings
from shared.credentials import Credentials
from shared.idempotency import object_version_key, primary_key_for
from shared.mps import MpsClient, RetryPolicy
from shared.ports import ResultStore
from shared.runtime import Runtime
from shared.services.actions import ActionError
from shared.services.subtitles import SubtitleError, subtitles_to_asr
from tests.functions.conftest import context_for
from tests.support.fake_mps import FakeMps

Handler = Callable[[bytes, Any], str]
VIDEO_DB, AUDIO_DB, TEXT_DB = "video-db-0001", "audio-db-0002", "text-db-0003"
ROUTES = [
    {"prefix": "library/", "suffixes": [".mp4", ".png"], "fp_db_id": VIDEO_DB, "save_type": "forcesave"},
    {"prefix": "library/", "suffixes": [".mp4", ".mp3"], "fp_db_id": AUDIO_DB, "save_type": "forcesave"},
    {"prefix": "library/", "suffixes": [".srt", ".vtt", ".txt"], "fp_db_id": TEXT_DB, "save_type": "forcesave",
     "text_type": "auto"},
    {"prefix": "uploads/", "suffixes": [".mp3"], "fp_db_id": AUDIO_DB, "save_type": "nosave"},
    {"prefix": "uploads/", "suffixes": [".srt", ".vtt", ".txt"], "fp_db_id": TEXT_DB, "save_type": "nosave",
     "text_type": "auto"},
]  # fmt: skip
SRT = (
    "1\r\n00:00:01,000 --> 00:00:03,500\r\n<i>Hello</i> there,\r\nfriend.\r\n\r\n"
    "2\r\n00:00:04,250 --> 00:00:06,000\r\nIt&apos;s snowing today.\r\n"
)
VTT = "WEBVTT\n\nNOTE a comment block\n\ncue-1\n00:01.500 --> 00:02.000 align:start\n<v Bob>Hi {\\an8}Bob</v>\n"


class MemoryBucket:
    """`OssObjectActions.read`/`write` over a dict, with OSS's answer for a missing key (404: not retryable)."""

    def __init__(self) -> None:
        self.bucket_name = f"media-{uuid.uuid4().hex[:12]}"
        self.objects: dict[str, bytes] = {}

    def put_object(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    def get(self, key: str) -> bytes:
        return self.objects[key]

    def read(self, bucket: str, key: str) -> bytes:
        assert bucket == self.bucket_name
        if key not in self.objects:
            raise ActionError("NoSuchKey: The specified key does not exist.", retryable=False)
        return self.objects[key]

    def write(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        assert bucket == self.bucket_name and content_type == "application/json"
        self.objects[key] = data


@pytest.fixture
def bucket() -> MemoryBucket:
    return MemoryBucket()


@pytest.fixture
def routed(
    fake_mps: FakeMps, store: ResultStore, bucket: MemoryBucket, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    monkeypatch.setenv("FPSCREEN_ROUTES", json.dumps(ROUTES))
    monkeypatch.setenv("MPS_ENDPOINT", fake_mps.endpoint)
    monkeypatch.setenv("MPS_PIPELINE_ID", "pipe-0001")
    monkeypatch.setenv("FPSCREEN_STORE_URL", "injected://")
    _BUCKET.append(bucket.bucket_name)

    def factory(settings: Settings, credentials: Credentials | None) -> Runtime:
        assert credentials is not None
        client = MpsClient(
            credentials,
            region=settings.mps_region,
            endpoint=settings.mps_endpoint,
            retry_policy=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02),
            sleep=lambda _: None,
        )
        return Runtime(settings, store, client, objects=bucket)

    runtime_module.use_factory(factory)
    try:
        yield runtime_module.get_runtime(context_for(fake_mps, "submit_on_upload"))
    finally:
        runtime_module.use_factory(None)


def _event(bucket: str, key: str, etag: str) -> bytes:
    record = {
        "eventName": "ObjectCreated:PutObject",
        "eventSource": "acs:oss",
        "region": "cn-shanghai",
        "oss": {
            "bucket": {"name": bucket, "arn": f"acs:oss:cn-shanghai:123456789:{bucket}"},
            "object": {"key": key, "eTag": etag, "size": 10},
        },
    }
    return json.dumps({"events": [record]}).encode()


_BUCKET: list[str] = []


def _submit(handlers: dict[str, Handler], fake_mps: FakeMps, key: str, etag: str = "e1") -> list[dict[str, Any]]:
    event = _event(_BUCKET[-1], key, etag)
    out = json.loads(handlers["submit_on_upload"](event, context_for(fake_mps, "submit_on_upload")))
    return list(out["outcomes"])


def test_a_library_video_is_one_job_and_one_claim_per_library(
    handlers: dict[str, Handler], routed: Runtime, fake_mps: FakeMps
) -> None:
    outcomes = _submit(handlers, fake_mps, "library/film.mp4")
    assert [o["status"] for o in outcomes] == ["submitted", "submitted"]
    configs = {job.request.fp_shot_config.fp_db_id: job.request.fp_shot_config for job in fake_mps.jobs.values()}
    assert set(configs) == {VIDEO_DB, AUDIO_DB}
    # The same PrimaryKey in both libraries: a match in either names the same library object.
    name = _BUCKET[-1]
    assert {c.primary_key for c in configs.values()} == {primary_key_for(name, "library/film.mp4")}
    for db in (VIDEO_DB, AUDIO_DB):
        claim = routed.store.get_object(object_version_key(name, "library/film.mp4", "e1", db))
        assert claim is not None and claim.status == "COMPLETED" and claim.fp_db_id == db
    # Redelivery: nothing new, in either library; a new version of the object: one new job per library.
    assert [o["status"] for o in _submit(handlers, fake_mps, "library/film.mp4")] == ["duplicate", "duplicate"]
    assert len(fake_mps.jobs) == 2
    assert [o["status"] for o in _submit(handlers, fake_mps, "library/film.mp4", "e2")] == ["submitted"] * 2
    assert len(fake_mps.jobs) == 4
    stored = routed.store.jobs_for_item(primary_key_for(name, "library/film.mp4"))
    assert sorted(j.fp_db_id for j in stored) == sorted([VIDEO_DB, AUDIO_DB] * 2)


def test_audio_uploads_are_screened_against_the_audio_library(
    handlers: dict[str, Handler], routed: Runtime, fake_mps: FakeMps
) -> None:
    [outcome] = _submit(handlers, fake_mps, "uploads/song.MP3")
    assert (outcome["status"], outcome["key"]) == ("submitted", "uploads/song.MP3")
    [job] = fake_mps.jobs.values()
    assert (job.request.fp_shot_config.fp_db_id, job.request.fp_shot_config.save_type) == (AUDIO_DB, "nosave")


@pytest.mark.parametrize(("name", "body"), [("captions.srt", SRT), ("captions.vtt", VTT)])
def test_subtitles_are_converted_to_asr_json_under_derived_and_that_is_submitted(
    handlers: dict[str, Handler], routed: Runtime, fake_mps: FakeMps, bucket: MemoryBucket, name: str, body: str
) -> None:
    key = f"uploads/{name}"
    bucket.put_object(key, ("\ufeff" + body).encode("utf-8"))
    [outcome] = _submit(handlers, fake_mps, key)
    assert outcome["status"] == "submitted"
    [job] = fake_mps.jobs.values()
    derived = job.request.input.object
    assert derived.startswith("derived/asr/uploads/") and derived.endswith(".json")
    assert job.request.fp_shot_config.text_type == "ASR" and job.request.fp_shot_config.fp_db_id == TEXT_DB
    items = json.loads(bucket.get(derived))
    if name.endswith(".srt"):
        assert items == [
            {"start": 1.0, "end": 3.5, "text": "Hello there, friend."},
            {"start": 4.25, "end": 6.0, "text": "It's snowing today."},
        ]
    else:
        assert items == [{"start": 1.5, "end": 2.0, "text": "Hi Bob"}]
    # The job row and its claim still name the uploaded object (results and verdicts are about it).
    stored = routed.store.get_job(outcome["job_id"])
    assert stored is not None and stored.object_key == key


def test_each_version_of_a_subtitle_file_gets_its_own_converted_object(
    handlers: dict[str, Handler], routed: Runtime, fake_mps: FakeMps, bucket: MemoryBucket
) -> None:
    bucket.put_object("library/film.srt", SRT.encode())
    _submit(handlers, fake_mps, "library/film.srt", "v1")
    bucket.put_object("library/film.srt", SRT.replace("friend", "pal").encode())
    _submit(handlers, fake_mps, "library/film.srt", "v2")
    first, second = sorted(job.request.input.object for job in fake_mps.jobs.values())
    assert first != second
    texts = {json.loads(bucket.get(k))[0]["text"] for k in (first, second)}
    assert texts == {"Hello there, friend.", "Hello there, pal."}


def test_plain_text_is_submitted_as_it_is(
    handlers: dict[str, Handler], routed: Runtime, fake_mps: FakeMps, bucket: MemoryBucket
) -> None:
    bucket.put_object("uploads/notes.txt", b"plain words")
    _submit(handlers, fake_mps, "uploads/notes.txt")
    [job] = fake_mps.jobs.values()
    assert (job.request.input.object, job.request.fp_shot_config.text_type) == ("uploads/notes.txt", "Text")
    assert not [k for k in bucket.objects if k.startswith("derived/")]


def test_subtitles_without_cues_are_parked_with_the_reason(
    handlers: dict[str, Handler], routed: Runtime, fake_mps: FakeMps, bucket: MemoryBucket
) -> None:
    bucket.put_object("uploads/empty.srt", b"just some words, no timings\n")
    [outcome] = _submit(handlers, fake_mps, "uploads/empty.srt")
    assert outcome["status"] == "rejected" and "no subtitle cues" in outcome["reason"]
    assert fake_mps.jobs == {}
    [parked] = routed.store.parked_messages()
    assert parked.attrs["object_key"] == "uploads/empty.srt" and "not converted to ASR JSON" in parked.reason


def test_a_missing_subtitle_object_is_parked_not_retried_forever(
    handlers: dict[str, Handler], routed: Runtime, fake_mps: FakeMps
) -> None:
    [outcome] = _submit(handlers, fake_mps, "uploads/gone.vtt")  # deleted before the trigger ran: 404
    assert outcome["status"] == "rejected" and "could not be read" in outcome["reason"]


def test_the_converter_refuses_what_is_not_subtitles() -> None:
    with pytest.raises(SubtitleError, match="not UTF-8"):
        subtitles_to_asr(b"\xff\xfe\x00", "x.srt")
    with pytest.raises(SubtitleError, match="bad timestamp"):
        subtitles_to_asr(b"1\n00:00:xx --> 00:00:02,000\nhi\n", "x.srt")
    with pytest.raises(SubtitleError, match="no text"):
        subtitles_to_asr(b"00:00:01.000 --> 00:00:02.000\n\n", "x.vtt")
