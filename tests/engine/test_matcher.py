"""The job runner: SaveType semantics, the MPS result shape, default libraries, and one video job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import EmptyMedia, LibraryError, MediaError
from engine.library import LibraryStore
from engine.matcher import Matcher
from engine.synth import text as synth
from shared.contracts.mps import MODEL_TEXT, MODEL_VIDEO, FpShotConfig, FpShotResult

ORIGINAL = synth.document(11, 4000, "en")
OTHER = synth.document(12, 4000, "en")


@pytest.fixture
def store(tmp_path: Path) -> LibraryStore:
    with LibraryStore(tmp_path / "data") as store:
        yield store


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    near_copy = synth.char_edits(ORIGINAL, 0.03, 1)
    excerpt_in_other = synth.embed(synth.change_case(ORIGINAL[500:1100], 2), OTHER[:2000], 3)[1]
    contents = {"original": ORIGINAL, "other": OTHER, "near_copy": near_copy, "excerpt": excerpt_in_other}
    paths = {}
    for name, text in contents.items():
        paths[name] = tmp_path / f"{name}.txt"
        paths[name].write_text(text, encoding="utf-8")
    return paths


def _config(key: str, save_type: str, fp_db_id: str | None, **extra: object) -> FpShotConfig:
    return FpShotConfig.model_validate({"PrimaryKey": key, "SaveType": save_type, "FpDBId": fp_db_id, **extra})


def _keys(result: FpShotResult) -> list[str]:
    return [shot.primary_key for shot in result.text_matches()]


def test_save_types(store: LibraryStore, files: dict[str, Path]) -> None:
    lib = store.create_library("texts", MODEL_TEXT).fp_db_id
    matcher = Matcher(store)

    onlysave = matcher.run_job(files["original"], _config("orig", "onlysave", lib))
    assert onlysave.stored is not None and onlysave.file_id == onlysave.stored.file_id
    assert onlysave.result == FpShotResult()  # nothing searched, nothing reported

    nosave = matcher.run_job(files["near_copy"], _config("copy", "nosave", lib))
    assert nosave.stored is None and nosave.file_id is None
    assert _keys(nosave.result) == ["orig"]
    assert [i.primary_key for i in store.list_items(lib)] == ["orig"]

    save_dup = matcher.run_job(files["near_copy"], _config("copy", "save", lib))
    assert save_dup.duplicate and save_dup.stored is None
    assert _keys(save_dup.result) == ["orig"]

    strict = matcher.run_job(files["near_copy"], _config("copy", "save", lib, SimilarityThreshold="0.999"))
    assert not strict.duplicate and strict.stored is not None  # 3% edits: below a 0.999 threshold
    assert _keys(strict.result) == ["orig"]

    save_new = matcher.run_job(files["other"], _config("other", "save", lib))
    assert save_new.stored is not None and _keys(save_new.result) == []

    forced = matcher.run_job(files["excerpt"], _config("excerpt", "forcesave", lib))
    assert forced.stored is not None
    assert set(_keys(forced.result)) == {"orig", "copy", "other"}  # copies ORIGINAL and is embedded in OTHER
    assert [i.primary_key for i in store.list_items(lib)] == ["orig", "copy", "other", "excerpt"]


def test_resubmitting_a_key_replaces_it_instead_of_finding_itself(store: LibraryStore, files: dict[str, Path]) -> None:
    lib = store.create_library("texts", MODEL_TEXT).fp_db_id
    matcher = Matcher(store)
    first = matcher.run_job(files["original"], _config("orig", "save", lib), "oss://b/original.txt")
    again = matcher.run_job(files["original"], _config("orig", "save", lib), "oss://b/original.txt")
    assert first.stored is not None and again.stored is not None
    assert again.file_id == first.file_id
    assert _keys(again.result) == []
    [item] = store.list_items(lib)
    assert (item.primary_key, item.input_file) == ("orig", "oss://b/original.txt")


def test_text_result_has_the_mps_wire_shape(store: LibraryStore, files: dict[str, Path]) -> None:
    lib = store.create_library("texts", MODEL_TEXT).fp_db_id
    matcher = Matcher(store)
    matcher.run_job(files["original"], _config("orig", "onlysave", lib))

    outcome = matcher.run_job(files["excerpt"], _config("q", "nosave", lib))

    assert outcome.duration == len(files["excerpt"].read_text(encoding="utf-8"))
    wire = json.loads(outcome.result.to_wire_json())
    assert set(wire) == {"TextFpShots"}
    [shot] = wire["TextFpShots"]["TextFpShot"]
    slices = shot["TextFpShotSlices"]["TextFpShotSlice"]
    assert shot["PrimaryKey"] == "orig"
    assert isinstance(shot["Similarity"], str)
    assert float(shot["Similarity"]) == pytest.approx(sum(float(s["Similarity"]) for s in slices) / len(slices))
    [piece] = slices
    assert set(piece) == {"Similarity", "InputText", "DuplicationText", "InputFragment"}
    assert float(piece["Similarity"]) == pytest.approx(1.0)  # only the case was changed
    # The slice quotes the copied passage, give or take a character that happens to agree at either end.
    assert ORIGINAL[502:1098] in piece["DuplicationText"]
    assert ORIGINAL[502:1098].lower() in piece["InputText"].lower()
    assert len(piece["DuplicationText"]) <= 600 + 4
    query = files["excerpt"].read_text(encoding="utf-8")
    start, duration = int(piece["InputFragment"]["Start"]), int(piece["InputFragment"]["Duration"])
    assert query[start : start + duration] == piece["InputText"]


def test_asr_job_reports_seconds(store: LibraryStore, tmp_path: Path) -> None:
    lib = store.create_library("talks", MODEL_TEXT).fp_db_id
    matcher = Matcher(store)
    source = tmp_path / "source.txt"
    source.write_text(ORIGINAL, encoding="utf-8")
    matcher.run_job(source, _config("book", "onlysave", lib))
    timed = synth.cues(ORIGINAL[:1500], chars_per_second=15, start=60.0)
    asr = tmp_path / "speech.data"
    asr.write_text(synth.to_asr_json(timed), encoding="utf-8")

    outcome = matcher.run_job(asr, _config("talk", "nosave", lib, TextType="ASR"))

    assert outcome.duration == pytest.approx(timed[-1][1])
    [shot] = outcome.result.text_matches()
    fragment = shot.slices[0].input_fragment
    assert fragment.start == pytest.approx(60.0, abs=1.0)
    assert fragment.end == pytest.approx(timed[-1][1], abs=1.0)


def test_missing_fp_db_id_uses_the_default_library_of_the_kind(store: LibraryStore, files: dict[str, Path]) -> None:
    matcher = Matcher(store)
    stored = matcher.run_job(files["original"], _config("orig", "onlysave", None))
    assert stored.library.is_default and stored.library.model_id == MODEL_TEXT
    found = matcher.run_job(files["near_copy"], _config("q", "nosave", None))
    assert found.library.fp_db_id == stored.library.fp_db_id
    assert _keys(found.result) == ["orig"]


def test_min_similarity_filters_the_report_only(store: LibraryStore, files: dict[str, Path]) -> None:
    lib = store.create_library("texts", MODEL_TEXT).fp_db_id
    matcher = Matcher(store)
    matcher.run_job(files["original"], _config("orig", "onlysave", lib))
    assert _keys(matcher.run_job(files["near_copy"], _config("q", "nosave", lib)).result) == ["orig"]
    hidden = matcher.run_job(files["near_copy"], _config("q", "save", lib), min_similarity=0.999)
    assert _keys(hidden.result) == []
    assert hidden.duplicate and hidden.stored is None


def test_errors(store: LibraryStore, tmp_path: Path, files: dict[str, Path]) -> None:
    matcher = Matcher(store)
    lib = store.create_library("texts", MODEL_TEXT).fp_db_id
    with pytest.raises(LibraryError):
        matcher.run_job(files["original"], _config("x", "nosave", "f" * 32))
    bad = tmp_path / "bad.json"
    bad.write_text('[{"start": 0, "end": 1, "text": "a"', encoding="utf-8")
    with pytest.raises(MediaError, match="not valid ASR JSON"):
        matcher.run_job(bad, _config("x", "save", lib, TextType="ASR"))
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(EmptyMedia):
        matcher.run_job(empty, _config("x", "save", lib))
    assert store.list_items(lib) == []


def test_video_library_end_to_end(store: LibraryStore, tmp_path: Path) -> None:
    """A trimmed, re-encoded excerpt of a stored clip is found in FpShots with the right time ranges."""
    pytest.importorskip("engine.video")
    pytest.importorskip("engine.audio")
    video_synth = pytest.importorskip("engine.synth.video")
    source = video_synth.make_video(tmp_path / "source.mp4", seed=5, seconds=8.0, size=(160, 120))
    other = video_synth.make_video(tmp_path / "other.mp4", seed=6, seconds=4.0, size=(160, 120))
    excerpt = video_synth.transform_video(source, tmp_path / "excerpt.mp4", ops=[video_synth.Trim(2.0, 4.0)])
    lib = store.create_library("films", MODEL_VIDEO).fp_db_id
    matcher = Matcher(store)
    matcher.run_job(source, _config("film", "onlysave", lib))
    matcher.run_job(other, _config("other", "onlysave", lib))

    outcome = matcher.run_job(excerpt, _config("clip", "nosave", lib))

    wire = outcome.result.to_wire()
    assert set(wire) == {"FpShots", "AudioFpShots"}  # a video library reports pictures and sound
    assert wire["AudioFpShots"] == {"FpShot": []}  # the synthetic clips are silent
    assert outcome.duration == pytest.approx(4.0, abs=0.6)
    [shot] = outcome.result.video_matches()
    assert shot.primary_key == "film"
    first, last = shot.slices[0], shot.slices[-1]
    assert first.input.start == pytest.approx(0.0, abs=1.0)
    assert first.duplication.start == pytest.approx(2.0, abs=1.0)
    assert last.duplication.end == pytest.approx(6.0, abs=1.0)
    assert shot.similarity > 0.5


def test_image_query_against_a_video_library_reports_a_zero_length_input_slice(store: LibraryStore, tmp_path: Path
                                                                               ) -> None:  # fmt: skip
    """An image has no duration: its slice's input is (0, 0), which must be reported, not dropped as empty."""
    pytest.importorskip("engine.video")
    video_synth = pytest.importorskip("engine.synth.video")
    source = video_synth.make_video(tmp_path / "source.mp4", seed=5, seconds=8.0, size=(160, 120))
    still = video_synth.write_image(video_synth.read_clip(source, 5.3, 0.1).frames[0], tmp_path / "still.png")
    lib = store.create_library("films", MODEL_VIDEO).fp_db_id
    matcher = Matcher(store)
    stored = matcher.run_job(source, _config("film", "onlysave", lib))
    assert stored.stored is not None

    outcome = matcher.run_job(still, _config("still", "nosave", lib))

    assert outcome.duration == 0.0
    [shot] = outcome.result.video_matches()
    assert shot.primary_key == "film" and shot.similarity > 0.5
    [piece] = shot.slices
    assert (piece.input.start, piece.input.duration) == (0.0, 0.0)
    assert piece.duplication.start == pytest.approx(5.3, abs=1.0) and piece.duplication.duration > 0
    [wire] = outcome.result.to_wire()["FpShots"]["FpShot"]
    assert wire["FpShotSlices"]["FpShotSlice"][0]["Input"] == {"Start": "0", "Duration": "0"}


def test_stored_video_keeps_only_its_reference_hashes(store: LibraryStore, tmp_path: Path) -> None:
    """`save`/`forcesave`/`onlysave` store the job input's fingerprint: without its query crop windows."""
    pytest.importorskip("engine.video")
    video_synth = pytest.importorskip("engine.synth.video")
    source = video_synth.make_video(tmp_path / "source.mp4", seed=7, seconds=8.0, size=(160, 120))
    excerpt = video_synth.transform_video(source, tmp_path / "excerpt.mp4", ops=[video_synth.Trim(2.0, 4.0)])
    lib = store.create_library("films", MODEL_VIDEO).fp_db_id
    matcher = Matcher(store)
    for key, save_type in [("a", "save"), ("b", "onlysave"), ("c", "forcesave")]:  # `save` first: no duplicate yet
        outcome = matcher.run_job(source, _config(key, save_type, lib))
        assert outcome.stored is not None
        kept = store.load_fingerprint(outcome.stored.item_id, "video")
        assert kept is not None
        assert kept.hashes.shape[1] == 1  # type: ignore[attr-defined]
        assert len(kept.to_bytes()) <= 10 * len(kept) + 64  # 8-byte hash + a compressed time step, a frame

    found = matcher.run_job(excerpt, _config("q", "nosave", lib))

    assert sorted(shot.primary_key for shot in found.result.video_matches()) == ["a", "b", "c"]
    assert all(shot.similarity > 0.5 for shot in found.result.video_matches())
