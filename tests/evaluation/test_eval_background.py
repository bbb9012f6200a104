"""`scripts/eval --real --background-hours H`: the library searched inside H hours of synthetic audio, reports of
background items counted as wrong items (generated media here: the real corpus is never needed by the tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.benchmarks.scale import BULK_ID
from engine.core import ItemMatch, Segment
from engine.evaluation.background import BACKGROUND, BackgroundAudioSystem
from engine.evaluation.corpus import Query, Reference
from engine.evaluation.execution import outcome_of
from engine.synth import audio as synth

SR = 22050


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> tuple[BackgroundAudioSystem, Path, Path]:
    tmp = tmp_path_factory.mktemp("background")
    music = {name: synth.music(seed, 40.0, SR) for name, seed in (("a", 61), ("b", 62))}
    refs = [Reference(name, "audio", synth.write_audio(tmp / f"{name}.wav", x, SR)) for name, x in music.items()]
    system = BackgroundAudioSystem(hours=2.0)
    system.index(refs)
    copy = synth.write_audio(tmp / "copy.mp3", synth.excerpt(music["a"], SR, 10.0, 15.0), SR, bitrate=64_000)
    other = synth.write_audio(tmp / "other.mp3", synth.music(63, 15.0, SR), SR, bitrate=64_000)
    return system, copy, other


def test_the_library_is_found_inside_the_background(system: tuple[BackgroundAudioSystem, Path, Path]) -> None:
    index, copy, other = system
    assert len(index._index) == 2 + 2 * 3600 // 180  # both items and two hours of 3-minute synthetic ones
    [found] = index.predict(copy)
    assert found.ref_id == "a" and found.boxes
    (in_start, in_end, ref_start, ref_end) = found.boxes[0]
    assert in_start == pytest.approx(0.0, abs=0.6) and ref_start == pytest.approx(10.0, abs=0.6)
    assert in_end == pytest.approx(15.0, abs=0.6) and ref_end == pytest.approx(25.0, abs=0.6)
    assert index.predict(other) == []


def test_a_background_item_reported_is_a_wrong_item(
    system: tuple[BackgroundAudioSystem, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    index, copy, _ = system
    chance = ItemMatch(BULK_ID + 7, [Segment(0.0, 6.0, 30.0, 36.0, 0.5)])
    monkeypatch.setattr(index._index, "search", lambda query, max_items: [chance])
    [reported] = index.predict(copy)
    assert reported.ref_id == BACKGROUND
    query = Query("q", "audio", "mp3_64k", copy, "a", ((0.0, 15.0, 10.0, 25.0),))
    outcome = outcome_of(query, [reported], localises=True)
    assert not outcome.found and outcome.wrong == 1
