"""Audio and text through the whole local stack, routed as template.yml routes them: an MP3 ripped from a library
video's soundtrack is matched against the video library (ModelId 12 fingerprints soundtracks), a text with a
retyped passage against the text library (ModelId 11) with character ranges. Also the demo's self-check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aliyunsdkcore.client import AcsClient
from aliyunsdkmts.request.v20140618.ListFpShotDBRequest import ListFpShotDBRequest

from engine.localstack.bootstrap import AUDIO_LIBRARY_SETTING, LIBRARY_SETTING, TEXT_LIBRARY_SETTING
from engine.localstack.demo import DemoUpload, Expected, _check
from engine.localstack.fc_runtime import RetrySchedule
from engine.localstack.results import AlignedSlice, MatchedItem, ScreeningResult, _text_unit, screening_results
from engine.localstack.stack import LocalStack, StackPaths, StackSettings
from engine.synth import av
from engine.synth import text as synth_text
from shared.contracts.mps import FpShotConfig, FpShotJob
from shared.ports import JobRecord

SMALL = {"size": (240, 180), "fps": 12.0}
SR = 16000  # the engine analyses audio at 8 kHz: 16 kHz soundtracks are plenty and quick to make
LIBRARY_TEXT = synth_text.document(41, 3000)
PASSAGE_START, PASSAGE = synth_text.excerpt(LIBRARY_TEXT, 700, seed=3)
RETYPED = synth_text.char_edits(PASSAGE, 0.03, seed=4)
ESSAY_OFFSET, ESSAY = synth_text.embed(RETYPED, synth_text.document(42, 2000), seed=5)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("modality-media")
    concert = av.make_av(root / "concert.mp4", seed=31, seconds=20.0, sr=SR, **SMALL)  # type: ignore[arg-type]
    files = {
        "concert": concert,
        # seconds 6–16 of the soundtrack, re-recorded with noise into a 64 kb/s MP3
        "bootleg": av.soundtrack_excerpt(
            concert, root / "bootleg.mp3", 6.0, 16.0, [av.Noise(15.0, seed=2)], sr=SR, bitrate=64_000
        ),
        "novel": root / "novel.txt",
        "essay": root / "essay.txt",
        "notes": root / "notes.txt",
    }
    files["novel"].write_text(LIBRARY_TEXT, encoding="utf-8")
    files["essay"].write_text(ESSAY, encoding="utf-8")
    files["notes"].write_text(synth_text.document(43, 2000), encoding="utf-8")
    return files


def _stack(path: Path) -> LocalStack:
    return LocalStack(
        StackSettings(StackPaths.under(path), retry=RetrySchedule(base=0.2, cap=2.0), mns_retry_scale=0.01)
    )


@pytest.fixture
def stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    with _stack(tmp_path / "data") as running:
        yield running


def _results(stack: LocalStack) -> dict[str, ScreeningResult]:
    return {r.upload: r for r in screening_results(stack.results_store())}


def _screen(stack: LocalStack, uploads: dict[str, Path]) -> dict[str, ScreeningResult]:
    for key, path in uploads.items():
        stack.upload(path, key)

    def final() -> bool:
        rows = _results(stack)
        return all(k in rows and rows[k].verdict != "pending" for k in uploads)

    assert stack.wait(final, timeout=120)
    return _results(stack)


def _fp_db(stack: LocalStack, upload: str) -> str:
    [job] = [j for j in stack.results_store().recent_jobs(100) if j.object_key == upload]
    return job.fp_db_id


def test_audio_upload_matches_a_library_videos_soundtrack(stack: LocalStack, media: dict[str, Path]) -> None:
    assert _screen(stack, {"library/concert.mp4": media["concert"]})["library/concert.mp4"].verdict == "stored"
    bootleg = _screen(stack, {"uploads/bootleg.mp3": media["bootleg"]})["uploads/bootleg.mp3"]

    # audio is screened against the audio library (ModelId 13), which library videos' soundtracks fill too
    assert _fp_db(stack, "uploads/bootleg.mp3") == stack.state.get_setting(AUDIO_LIBRARY_SETTING)
    library_dbs = {j.fp_db_id for j in stack.results_store().recent_jobs(100) if j.object_key == "library/concert.mp4"}
    assert library_dbs == {stack.state.get_setting(LIBRARY_SETTING), stack.state.get_setting(AUDIO_LIBRARY_SETTING)}
    assert bootleg.verdict == "copy"
    [item] = bootleg.matches
    assert item.library_object == "library/concert.mp4"
    assert {s.kind for s in item.slices} == {"audio"}  # an MP3 has no pictures to match
    s = max(item.slices, key=lambda x: x.input_end - x.input_start)
    assert s.unit == "s"
    assert abs(s.input_start - 0.0) <= 1.0 and abs(s.input_end - 10.0) <= 1.0
    assert abs(s.library_start - 6.0) <= 1.0 and abs(s.library_end - 16.0) <= 1.0


def test_text_upload_matches_the_text_library_in_characters(stack: LocalStack, media: dict[str, Path]) -> None:
    assert _screen(stack, {"library/novel.txt": media["novel"]})["library/novel.txt"].verdict == "stored"
    results = _screen(stack, {"uploads/essay.txt": media["essay"], "uploads/notes.txt": media["notes"]})

    text_db = stack.state.get_setting(TEXT_LIBRARY_SETTING)
    assert text_db and text_db != stack.state.get_setting(LIBRARY_SETTING)
    for key in ("library/novel.txt", "uploads/essay.txt", "uploads/notes.txt"):
        assert _fp_db(stack, key) == text_db  # a .txt never reaches the video library

    essay = results["uploads/essay.txt"]
    assert essay.verdict == "copy"
    [item] = essay.matches
    assert item.library_object == "library/novel.txt"
    [s] = item.slices
    assert s.kind == "text" and s.unit == "chars"
    assert abs(s.input_start - ESSAY_OFFSET) <= 30 and abs(s.input_end - (ESSAY_OFFSET + len(RETYPED))) <= 30
    # MPS gives the library side of a text slice as text: it is the passage, where the novel has it
    at = LIBRARY_TEXT.find(s.library_text)
    assert at >= 0 and abs(at - PASSAGE_START) <= 30 and abs(len(s.library_text) - len(PASSAGE)) <= 30
    assert s.input_text and ESSAY.find(s.input_text) == int(s.input_start)
    assert s.describe().startswith(f"text chars {s.input_start:.0f}–{s.input_end:.0f} ↔ “")

    assert results["uploads/notes.txt"].verdict == "clean"


def test_bootstrap_ensures_the_text_library_once(tmp_path: Path) -> None:
    with _stack(tmp_path / "data") as first:
        ids = (first.state.get_setting(LIBRARY_SETTING), first.state.get_setting(TEXT_LIBRARY_SETTING))
        assert first.template.function("submit_on_upload").environment["FPSCREEN_ROUTES"].count(ids[1]) == 2
        creds = first.credentials
        assert creds is not None
        client = AcsClient(creds.access_key_id, creds.access_key_secret, first.region, auto_retry=False)
        request = ListFpShotDBRequest()
        request.set_FpDBIds(",".join(ids))  # type: ignore[arg-type]
        request.set_endpoint(first.engine.endpoint)
        request.set_accept_format("json")
        listed = json.loads(client.do_action_with_exception(request))["FpShotDBList"]["FpShotDB"]
        assert {db["FpDBId"]: int(db["ModelId"]) for db in listed} == {ids[0]: 12, ids[1]: 11}
    with _stack(tmp_path / "data") as again:  # a restart reuses both libraries
        assert (again.state.get_setting(LIBRARY_SETTING), again.state.get_setting(TEXT_LIBRARY_SETTING)) == ids


# ------------------------------------------------------------------------------------ the demo's self-check

WANT = DemoUpload(
    "uploads/x.txt", lambda *_: Path(), "copy", "library/novel.txt", (Expected("text", (100, 800), (50, 750)),)
)


def _copy(*slices: AlignedSlice, item: str = "library/novel.txt") -> ScreeningResult:
    return ScreeningResult(
        "uploads/x.txt", "j", "Success", "copy", "nosave", matches=[MatchedItem("pk", item, 0.9, list(slices))]
    )


def _text_slice(start: float, end: float, library_text: str) -> AlignedSlice:
    return AlignedSlice("text", start, end, 0.0, 0.0, 0.9, unit="chars", library_text=library_text)


@pytest.fixture
def library_text(monkeypatch: pytest.MonkeyPatch) -> str:
    text = "x" * 50 + synth_text.document(7, 800)[:700] + "y" * 50  # passage at 50–750, found once
    monkeypatch.setattr("engine.localstack.demo.LIBRARY_TEXTS", {"library/novel.txt": text})
    return text


def test_demo_check_accepts_the_expected_text_slice(library_text: str) -> None:
    assert _check(WANT, _copy(_text_slice(105, 795, library_text[55:745]))) == []


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        (lambda t: _copy(_text_slice(100, 800, t[50:750]), item="library/other.txt"), "expected a copy of"),
        (lambda t: _copy(AlignedSlice("audio", 100, 800, 50, 750, 0.9)), "no text slice"),
        (lambda t: _copy(_text_slice(300, 800, t[50:750])), "off by 200"),
        (lambda t: _copy(_text_slice(100, 800, t[250:750])), "off by 200"),
        (lambda t: _copy(_text_slice(100, 800, "not in the novel")), "not in library/novel.txt"),
        (lambda t: ScreeningResult("uploads/x.txt", "j", "Success", "clean", "nosave"), "expected copy, got clean"),
        (lambda t: None, "no result"),
    ],
)
def test_demo_check_rejects_wrong_results(library_text: str, result, problem: str) -> None:  # type: ignore[no-untyped-def]
    problems = _check(WANT, result(library_text))
    assert len(problems) == 1 and problem in problems[0], problems


def test_demo_check_wants_every_expected_kind() -> None:
    want = DemoUpload(
        "uploads/v.mp4",
        lambda *_: Path(),
        "copy",
        "library/v.mp4",
        (Expected("video", (0, 12), (5, 17)), Expected("audio", (0, 12), (5, 17))),
    )
    video = AlignedSlice("video", 0.0, 12.0, 5.0, 17.0, 0.95)
    audio_late = AlignedSlice("audio", 1.2, 12.0, 6.2, 17.0, 0.9)  # audio is held to 1 s, video to 1.5 s
    assert _check(want, _copy(video, AlignedSlice("audio", 0.5, 11.5, 5.5, 16.5, 0.9), item="library/v.mp4")) == []
    assert "no audio slice" in _check(want, _copy(video, item="library/v.mp4"))[0]
    assert "audio slice boundaries off by 1.2 s" in _check(want, _copy(video, audio_late, item="library/v.mp4"))[0]


# ------------------------------------------------------------------------------------ text ranges in the view


@pytest.mark.parametrize(
    ("text_type", "key", "unit"),
    [
        ("Text", "uploads/transcript.json", "chars"),  # the job's TextType decides
        ("ASR", "uploads/notes.txt", "s"),
        (None, "uploads/notes.TXT", "chars"),  # no TextType echoed: the suffix the routes use decides
        (None, "uploads/film.srt", "s"),
        (None, "uploads/asr.json", "s"),
    ],
)
def test_text_slices_count_characters_only_for_plain_text(text_type: str | None, key: str, unit: str) -> None:
    config = FpShotConfig(primary_key="pk", save_type="nosave", text_type=text_type)
    job = JobRecord(
        "j",
        "Success",
        object_key=key,
        result_json=FpShotJob(id="j", state="Success", fp_shot_config=config).to_wire_json(),
    )
    assert _text_unit(job) == unit


def test_slice_descriptions() -> None:
    assert AlignedSlice("video", 0.0, 12.0, 5.0, 17.04, 0.9).describe() == "video 0.0–12.0s ↔ 5.0–17.0s"
    text = AlignedSlice("text", 812.0, 1706.0, 0.0, 0.0, 0.9, unit="chars", library_text="the  copied\ntext " * 4)
    assert text.describe(snippet=16) == "text chars 812–1706 ↔ “the copied text …”"
    timed = AlignedSlice("text", 3.5, 9.0, 0.0, 0.0, 0.9, library_text="short")
    assert timed.describe() == "text 3.5–9.0s ↔ “short”"
