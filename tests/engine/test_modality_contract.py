"""The contract every registered modality keeps (like python-threatexchange's SignalTypeAutoTest), run for each
entry of `engine.modalities.REGISTRY`: fingerprints survive their bytes, a file finds itself, the fast index
answers exactly like the generic linear-scan oracle, and a live index answers like one rebuilt from the stored
fingerprints after adds, replaces and removes (what a restart does).

A new modality needs only its media factory in `EXAMPLES`: the suite fails until it has one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.core import Fingerprint, ItemMatch, LinearScanIndex, Modality, ModalityIndex
from engine.modalities import REGISTRY, get_modality, guess_kind, modality_names
from engine.synth import audio as synth_audio
from engine.synth import text as synth_text
from engine.synth.video import make_video, transform_video
from engine.template import load_template
from shared.config import Route, Settings
from shared.contracts.modalities import (
    AUDIO_SUFFIXES,
    MODALITIES,
    MODALITIES_BY_MODEL,
    RESULT_KEYS,
    TEXT_SUFFIXES,
    kind_for,
    text_type_for,
)
from shared.contracts.mps import FpShotResult

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yml"


@dataclass(frozen=True)
class Examples:
    """Generated media of one modality: library items (id -> file) and queries (name -> file): copies of parts of
    items, and one unrelated file."""

    items: dict[int, Path]
    queries: dict[str, Path]


def _video(folder: Path) -> Examples:
    size, fps = (192, 144), 8.0
    items = {seed: make_video(folder / f"item{seed}.mp4", seed, 12.0, size, fps) for seed in (301, 302, 303)}
    queries = {
        "excerpt": transform_video(items[302], folder / "excerpt.mp4", start=3.0, seconds=6.0),
        "unrelated": make_video(folder / "unrelated.mp4", 399, 6.0, size, fps),
    }
    return Examples(items, queries)


def _audio(folder: Path) -> Examples:
    sr = synth_audio.SAMPLE_RATE
    music = {seed: synth_audio.music(seed, 12.0, sr) for seed in (31, 32, 33)}
    items = {
        seed: synth_audio.write_audio(folder / f"item{seed}.mp3", x, sr, bitrate=128000) for seed, x in music.items()
    }
    excerpt = synth_audio.excerpt(music[32], sr, 3.0, 6.0)
    queries = {
        "excerpt": synth_audio.write_audio(folder / "excerpt.m4a", excerpt, sr, bitrate=64000),
        "unrelated": synth_audio.write_audio(folder / "unrelated.mp3", synth_audio.music(39, 6.0, sr), sr),
    }
    return Examples(items, queries)


def _text(folder: Path) -> Examples:
    docs = {seed: synth_text.document(seed, 2500) for seed in (41, 42, 43)}
    items = {}
    for seed, doc in docs.items():
        items[seed] = folder / f"item{seed}.txt"
        items[seed].write_text(doc, encoding="utf-8")
    _, passage = synth_text.excerpt(docs[42], 700, seed=1)
    _, quoting = synth_text.embed(synth_text.char_edits(passage, 0.02, seed=2), synth_text.document(48, 1500), seed=3)
    queries = {"excerpt": folder / "excerpt.txt", "unrelated": folder / "unrelated.txt"}
    queries["excerpt"].write_text(quoting, encoding="utf-8")
    queries["unrelated"].write_text(synth_text.document(49, 1500), encoding="utf-8")
    return Examples(items, queries)


EXAMPLES: dict[str, Callable[[Path], Examples]] = {"video": _video, "audio": _audio, "text": _text}
COPIED_ITEM = {"video": 302, "audio": 32, "text": 42}  # the item the "excerpt" query copies


@dataclass(frozen=True)
class Prepared:
    modality: Modality
    items: dict[int, Fingerprint]  # stored forms
    queries: dict[str, Fingerprint]  # query forms: the items' own files too, as "self-<id>"


@pytest.fixture(scope="module", params=sorted(REGISTRY))
def prepared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    name: str = request.param
    assert name in EXAMPLES, f"modality {name!r} is registered but has no example media in this suite"
    modality = get_modality(name)
    examples = EXAMPLES[name](tmp_path_factory.mktemp(f"contract_{name}"))
    queries: dict[str, Fingerprint] = {}
    items: dict[int, Fingerprint] = {}
    for item_id, path in examples.items.items():
        fp = modality.extract(path)
        assert fp is not None and len(fp) > 0
        queries[f"self-{item_id}"] = fp
        items[item_id] = modality.stored_form(fp)
    for query_name, path in examples.queries.items():
        fp = modality.extract(path)
        assert fp is not None
        queries[query_name] = fp
    return Prepared(modality, items, queries)


def _answer(matches: list[ItemMatch]) -> list[tuple[int, list[tuple[float, ...]]]]:
    return [
        (m.item_id, [(s.input_start, s.input_end, s.ref_start, s.ref_end, round(s.similarity, 9)) for s in m.segments])
        for m in matches
    ]


def _answers(index: ModalityIndex, queries: dict[str, Fingerprint]) -> dict[str, list]:
    return {name: _answer(index.search(query)) for name, query in queries.items()}


def _reload(modality: Modality, fp: Fingerprint) -> Fingerprint:
    return modality.load_fingerprint(fp.to_bytes())


def test_registry_and_wire_table_name_the_same_modalities() -> None:
    assert set(REGISTRY) == {spec.name for spec in MODALITIES} == set(EXAMPLES)
    for name in REGISTRY:
        assert get_modality(name).name == name
    assert len(set(RESULT_KEYS)) == len(RESULT_KEYS)
    for model_id, names in MODALITIES_BY_MODEL.items():
        assert modality_names(model_id) == names and set(names) <= set(REGISTRY)
    # Every wire key is a field of the result model, and an empty result of each is still "no matches".
    for spec in MODALITIES:
        assert spec.result_field in FpShotResult.model_fields
        assert FpShotResult().matches_of(spec.name) == []


def test_fingerprint_bytes_round_trip(prepared: Prepared) -> None:
    modality = prepared.modality
    for fp in [*prepared.items.values(), *prepared.queries.values()]:
        data = fp.to_bytes()
        again = modality.load_fingerprint(data)
        assert type(again) is type(fp)
        assert again.to_bytes() == data
        assert len(again) == len(fp) and again.duration == pytest.approx(fp.duration)
    # The stored form is a fixed point: storing a stored fingerprint changes nothing.
    for fp in prepared.items.values():
        assert modality.stored_form(fp).to_bytes() == fp.to_bytes()


def test_every_item_finds_itself_and_the_excerpt_its_source(prepared: Prepared) -> None:
    index = prepared.modality.new_index()
    for item_id, fp in prepared.items.items():
        index.add(item_id, fp)
    for item_id in prepared.items:
        found = index.search(prepared.queries[f"self-{item_id}"])
        assert found and found[0].item_id == item_id and found[0].similarity >= 0.8, (item_id, found[:1])
    copied = COPIED_ITEM[prepared.modality.name]
    assert [m.item_id for m in index.search(prepared.queries["excerpt"])] == [copied]
    assert index.search(prepared.queries["unrelated"]) == []
    # The pairwise match is what the index is built on: it sees the copy too, and nothing in unrelated media.
    assert prepared.modality.match(prepared.queries["excerpt"], prepared.items[copied])
    assert not prepared.modality.match(prepared.queries["unrelated"], prepared.items[copied])


def test_fast_index_answers_like_the_linear_scan_oracle(prepared: Prepared) -> None:
    modality = prepared.modality
    fast, oracle = modality.new_index(), modality.reference_index()
    assert isinstance(oracle, LinearScanIndex)
    for item_id, fp in prepared.items.items():
        fast.add(item_id, fp)
        oracle.add(item_id, fp)
    answers = _answers(fast, prepared.queries)
    assert answers == _answers(oracle, prepared.queries)
    assert sum(len(a) for a in answers.values()) >= len(prepared.items) + 1  # not the trivial "both empty"


def test_live_index_answers_like_one_rebuilt_from_stored_fingerprints(prepared: Prepared) -> None:
    """Adds, a replace and removes on a live index, then a restart: the rebuilt index (from the stored bytes, in
    item id order) must answer every query exactly as the live one, and so must the oracle."""
    modality = prepared.modality
    (a, fp_a), (b, fp_b), (c, fp_c) = sorted(prepared.items.items())
    extra = modality.stored_form(prepared.queries["unrelated"])
    for build in (modality.new_index, modality.reference_index):
        live = build()
        live.add(a, fp_a)
        live.add(b, fp_b)
        live.add(900, extra)
        live.search(prepared.queries["excerpt"])  # a search in between: pending additions become runs
        live.add(c, fp_c)
        live.remove(b)
        live.add(901, fp_b)  # b's media under another id
        live.add(a, extra)  # replaced: a now holds other media
        live.remove(900)
        live.remove(900)  # twice is harmless
        stored = {a: extra, c: fp_c, 901: fp_b}
        assert len(live) == len(stored)
        rebuilt = build()
        for item_id in sorted(stored):
            rebuilt.add(item_id, _reload(modality, stored[item_id]))
        answers = _answers(live, prepared.queries)
        assert answers == _answers(rebuilt, prepared.queries)
        assert any(m[0] == 901 for m in answers["excerpt"])  # b's copy is found under its new id
        assert all(m[0] != b for found in answers.values() for m in found)  # and never under the removed one


@pytest.mark.parametrize(
    ("key", "kind", "text_type"),
    [
        ("uploads/a.MP4", "video", None),
        ("uploads/still.png", "video", None),
        ("library/song.mp3", "audio", None),
        ("library/voice.OPUS", "audio", None),
        ("library/clip.mka", "audio", None),
        ("notes/readme.md", "text", "Text"),
        ("notes/novel.txt", "text", "Text"),
        ("notes/a.text", "text", "Text"),
        ("subs/film.srt", "text", "ASR"),
        ("subs/film.vtt", "text", "ASR"),
        ("asr/transcript.json", "text", "ASR"),
        ("no-suffix", "video", None),
        ("dir.txt/file.mp3", "audio", None),
    ],
)
def test_one_suffix_classification_for_jobs_routes_and_views(key: str, kind: str, text_type: str | None) -> None:
    """The engine's default library, the routes' `text_type: auto` and the results view all use one table."""
    assert kind_for(key) == kind == guess_kind(Path(key))
    assert text_type_for(key) == text_type
    assert Route(prefix="", text_type="auto").text_type_for(key) == text_type
    assert (kind == "text") == (Path(key).suffix.lower() in TEXT_SUFFIXES)
    assert (kind == "audio") == (Path(key).suffix.lower() in AUDIO_SUFFIXES)


def test_a_text_type_makes_any_file_text() -> None:
    assert kind_for("upload.bin", "ASR") == "text" and kind_for("upload.mp4", "Text") == "text"


def test_the_deployed_routes_agree_with_the_classification() -> None:
    """template.yml lists suffixes per library (OSS cannot filter case-insensitively): each must classify as the
    kind of library its route feeds, and a text route's `auto` TextType must know each of its suffixes."""
    params = {"MediaBucketName": "b", "MpsPipelineId": "p", "LibraryFpDBId": "media", "TextLibraryFpDBId": "text"}
    params |= {"AudioLibraryFpDBId": "audio", "ReviewSecret": "0123456789abcdef0123"}
    routes = Settings.from_env(load_template(TEMPLATE, parameters=params).function("submit_on_upload").environment)
    assert routes.routes
    for route in routes.routes:
        for suffix in route.suffixes:
            if route.fp_db_id == "text":
                assert kind_for(f"x{suffix}") == "text" and route.text_type_for(f"x{suffix}") is not None, suffix
            else:
                assert kind_for(f"x{suffix}") in ("video", "audio"), suffix
