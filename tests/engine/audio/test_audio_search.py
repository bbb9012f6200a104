"""Quality bars: degraded excerpts are found with the right item and offsets; unrelated audio is not."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from audio_testlib import SR, AudioLibrary

from engine.audio import SPEED_GRID, AudioIndex, AudioModality
from engine.core import ItemMatch, Segment
from engine.synth import audio as synth

OFFSET_TOL = 0.2  # seconds


def _degrade(kind: str, x: np.ndarray) -> tuple[np.ndarray, str, int | None]:
    """(samples, file suffix, bit rate) of one degradation of an excerpt."""
    if kind == "clean":
        return x, ".wav", None
    if kind == "mp3_64k_noise_10db":
        return synth.add_noise(x, 10.0, seed=3), ".mp3", 64000
    if kind == "pink_noise_10db_aac":
        return synth.add_noise(x, 10.0, color="pink", seed=4), ".m4a", 64000
    if kind == "volume_-18db":
        return synth.gain(x, -18.0), ".mp3", 64000
    if kind == "volume_+9db_clipping":
        return synth.gain(x, 9.0), ".mp3", 64000
    if kind == "phone_band_pass":
        return synth.band_pass(x, SR, 300.0, 3400.0), ".mp3", 64000
    if kind == "band_pass_noise_opus":
        return synth.add_noise(synth.band_pass(x, SR), 10.0, seed=5), ".ogg", 32000
    raise AssertionError(kind)


def _only(matches: list[ItemMatch]) -> tuple[int, Segment]:
    assert len(matches) == 1, matches
    assert len(matches[0].segments) == 1, matches[0].segments
    return matches[0].item_id, matches[0].segments[0]


@pytest.mark.parametrize(
    ("kind", "item_id", "start"),
    [
        ("clean", 205, 3.37),
        ("mp3_64k_noise_10db", 17, 11.52),
        ("pink_noise_10db_aac", 9001, 6.05),
        ("volume_-18db", 42, 9.91),
        ("volume_+9db_clipping", 205, 12.2),
        ("phone_band_pass", 9001, 0.0),
        ("band_pass_noise_opus", 17, 4.44),
    ],
)
def test_degraded_five_second_excerpt_is_found_at_its_offset(
    audio_library: AudioLibrary, kind: str, item_id: int, start: float
) -> None:
    x, suffix, bitrate = _degrade(kind, synth.excerpt(audio_library.audio[item_id], SR, start, 5.0))
    query = audio_library.query(f"{kind}_{item_id}", x, suffix, bitrate)

    found, seg = _only(audio_library.index.search(query))

    assert found == item_id
    # The alignment: query time t is reference time start + t, at both ends of the segment.
    assert seg.ref_start - seg.input_start == pytest.approx(start, abs=OFFSET_TOL)
    assert seg.ref_end - seg.input_end == pytest.approx(start, abs=OFFSET_TOL)
    # The segment covers the excerpt, give or take the first and last landmarks.
    assert 0.0 <= seg.input_start <= 0.7
    assert 4.3 <= seg.input_end <= query.duration + 1e-6
    assert seg.similarity >= 0.8  # MPS's default threshold: a degraded copy is still a copy


def test_similarity_is_near_one_for_a_clean_copy_and_lower_for_a_heavy_degradation(
    audio_library: AudioLibrary,
) -> None:
    x = synth.excerpt(audio_library.audio[42], SR, 2.0, 6.0)
    clean = audio_library.query("sim_clean", x, ".wav", None)
    heavy = audio_library.query("sim_heavy", synth.add_noise(x, -3.0, seed=9), ".mp3", 32000)

    _, clean_seg = _only(audio_library.index.search(clean))
    item, heavy_seg = _only(audio_library.index.search(heavy))

    assert clean_seg.similarity >= 0.95
    assert item == 42
    assert heavy_seg.ref_start - heavy_seg.input_start == pytest.approx(2.0, abs=OFFSET_TOL)
    assert 0.4 <= heavy_seg.similarity < clean_seg.similarity


@pytest.mark.parametrize("k", range(3))
def test_unrelated_music_matches_nothing(
    audio_library: AudioLibrary, unrelated_music: Callable[[int, float], np.ndarray], k: int
) -> None:
    query = audio_library.query(f"unrelated_{k}", unrelated_music(k, 15.0))
    assert audio_library.index.search(query) == []
    assert audio_library.reference.search(query) == []


def test_noise_and_silence_match_nothing(audio_library: AudioLibrary) -> None:
    rng = np.random.default_rng(0)
    noise = audio_library.query("white_noise", (0.3 * rng.standard_normal(SR * 8)).astype(np.float32))
    silence = audio_library.query("silence", np.zeros(SR * 4, np.float32), ".wav", None)
    assert audio_library.index.search(noise) == []
    assert len(silence) == 0
    assert audio_library.index.search(silence) == []


def test_query_concatenating_two_items_yields_a_segment_for_each(audio_library: AudioLibrary) -> None:
    lib = audio_library.audio
    x = synth.concat(synth.excerpt(lib[17], SR, 8.0, 6.0), synth.excerpt(lib[9001], SR, 1.5, 6.0))
    query = audio_library.query("two_items", x)

    matches = {m.item_id: m.segments for m in audio_library.index.search(query)}

    assert set(matches) == {17, 9001}
    [first], [second] = matches[17], matches[9001]
    assert first.ref_start - first.input_start == pytest.approx(8.0, abs=OFFSET_TOL)
    assert second.ref_start - second.input_start == pytest.approx(1.5 - 6.0, abs=OFFSET_TOL)
    assert first.input_start < 0.7 and 5.0 < first.input_end <= 6.5
    assert 5.5 <= second.input_start < 6.7 and second.input_end > 11.0


def test_clip_embedded_in_other_audio_is_located(
    audio_library: AudioLibrary, unrelated_music: Callable[[int, float], np.ndarray]
) -> None:
    clip = synth.excerpt(audio_library.audio[205], SR, 10.0, 7.0)
    x = synth.embed(clip, unrelated_music(9, 16.0), SR, offset=5.0)
    query = audio_library.query("embedded", x)

    item, seg = _only(audio_library.index.search(query))

    assert item == 205
    assert seg.input_start == pytest.approx(5.0, abs=0.7)
    assert seg.input_end == pytest.approx(12.0, abs=0.7)
    assert seg.ref_start - seg.input_start == pytest.approx(10.0 - 5.0, abs=OFFSET_TOL)


def test_item_repeated_twice_in_a_query_gives_two_segments(audio_library: AudioLibrary) -> None:
    part = synth.excerpt(audio_library.audio[42], SR, 4.0, 6.0)  # long enough to count (MIN_SECONDS)
    x = synth.concat(part, np.zeros(SR * 4, np.float32), part)
    query = audio_library.query("repeated", x)

    [match] = audio_library.index.search(query)

    assert match.item_id == 42
    starts = sorted((s.input_start, s.ref_start) for s in match.segments)
    assert len(starts) == 2
    assert starts[0][1] == pytest.approx(starts[1][1], abs=OFFSET_TOL)  # same reference range, twice
    assert starts[1][0] - starts[0][0] == pytest.approx(10.0, abs=OFFSET_TOL)


def test_speed_change_is_found_with_speed_hypotheses(audio_library: AudioLibrary) -> None:
    x = synth.speed(synth.excerpt(audio_library.audio[9001], SR, 5.0, 8.0), 1.02)  # 2 % faster
    query = audio_library.query("faster", synth.add_noise(x, 15.0, seed=2))
    plain = AudioIndex(speeds=(1.0,), scan=())  # one hypothesis, no speed scan
    tolerant = AudioIndex(speeds=SPEED_GRID, scan=())
    for item_id, fp in audio_library.fingerprints.items():
        plain.add(item_id, fp)
        tolerant.add(item_id, fp)

    item, seg = _only(tolerant.search(query))

    assert plain.search(query) == []  # one hypothesis tolerates ~0.3 %: documented, and tested so it stays true
    assert item == 9001
    # Query time t is reference time 5 + 1.02 t.
    assert seg.ref_start == pytest.approx(5.0 + 1.02 * seg.input_start, abs=OFFSET_TOL)
    assert seg.ref_end == pytest.approx(5.0 + 1.02 * seg.input_end, abs=OFFSET_TOL)
    assert seg.input_end - seg.input_start > 6.0
    # The default (speed scan) finds it too, at least as well.
    default_item, default_seg = _only(audio_library.index.search(query))
    assert default_item == 9001
    assert default_seg.ref_start == pytest.approx(5.0 + 1.02 * default_seg.input_start, abs=OFFSET_TOL)
    assert default_seg.input_duration >= seg.input_duration - 0.2


@pytest.mark.parametrize(
    ("speed", "item_id", "start"),
    [
        (1.05, 205, 3.0),  # +5 %: "nightcore"-style
        (0.95, 17, 6.0),  # -5 %: "slowed"
        (1.08, 42, 4.0),
        (0.92, 9001, 2.0),
        (1.0365, 17, 9.5),  # between the scan's speeds (0.25 % apart): found by the refinement
        (0.9365, 9001, 6.0),
    ],
)
def test_resampled_copy_is_found_by_default(
    audio_library: AudioLibrary, speed: float, item_id: int, start: float
) -> None:
    """Playback speed changes up to +-8 % (pitch and tempo together) are found by the default index, with the
    item, the speed-scaled alignment and the copy's boundaries in both files' own seconds."""
    length = 8.0
    x = synth.speed(synth.excerpt(audio_library.audio[item_id], SR, start, length), speed)
    query = audio_library.query(f"resampled_{speed}_{item_id}", x)  # MP3 64k on top
    shown = length / speed  # seconds of the query the copy lasts

    found, seg = _only(audio_library.index.search(query))

    assert found == item_id
    # Query time t is reference time start + speed * t, at both ends of the segment.
    assert seg.ref_start == pytest.approx(start + speed * seg.input_start, abs=OFFSET_TOL)
    assert seg.ref_end == pytest.approx(start + speed * seg.input_end, abs=OFFSET_TOL)
    # Both spans, each in its own file's seconds: the reference span is `speed` times the query's.
    # (0.6 s: the index holds one landmark an anchor peak, and at 8 % a copy's first half second can go unmatched.)
    assert seg.input_start == pytest.approx(0.0, abs=0.6)
    assert seg.input_end == pytest.approx(shown, abs=0.6)
    assert seg.ref_start == pytest.approx(start, abs=0.6)
    assert seg.ref_end == pytest.approx(start + length, abs=0.6)
    assert seg.ref_duration == pytest.approx(speed * seg.input_duration, rel=0.01)
    assert seg.similarity >= 0.8
    # The brute-force reference agrees exactly.
    assert audio_library.reference.search(query) == audio_library.index.search(query)


def test_resampled_copy_inside_other_audio_is_located(
    audio_library: AudioLibrary, unrelated_music: Callable[[int, float], np.ndarray]
) -> None:
    clip = synth.speed(synth.excerpt(audio_library.audio[42], SR, 8.0, 7.0), 1.06)
    x = synth.embed(clip, unrelated_music(11, 16.0), SR, offset=4.0)
    query = audio_library.query("resampled_embedded", x)

    item, seg = _only(audio_library.index.search(query))

    assert item == 42
    assert seg.input_start == pytest.approx(4.0, abs=0.5)
    assert seg.input_end == pytest.approx(4.0 + 7.0 / 1.06, abs=0.5)
    assert seg.ref_start == pytest.approx(8.0 + 1.06 * (seg.input_start - 4.0), abs=OFFSET_TOL)


def test_two_items_at_two_speeds_in_one_query(audio_library: AudioLibrary) -> None:
    lib = audio_library.audio
    first = synth.speed(synth.excerpt(lib[17], SR, 2.0, 7.0), 1.07)
    second = synth.speed(synth.excerpt(lib[205], SR, 9.0, 7.0), 0.94)
    query = audio_library.query("two_speeds", synth.concat(first, second))
    split = first.size / SR

    matches = {m.item_id: m.segments for m in audio_library.index.search(query)}

    assert set(matches) == {17, 205}
    [a], [b] = matches[17], matches[205]
    assert a.ref_start == pytest.approx(2.0 + 1.07 * a.input_start, abs=OFFSET_TOL)
    assert b.ref_start == pytest.approx(9.0 + 0.94 * (b.input_start - split), abs=OFFSET_TOL)
    assert a.input_end <= split + 0.5 <= b.input_start + 1.0


@pytest.mark.parametrize("speed", [0.95, 1.05, 1.08])
def test_resampled_unrelated_music_matches_nothing(
    audio_library: AudioLibrary, unrelated_music: Callable[[int, float], np.ndarray], speed: float
) -> None:
    query = audio_library.query(f"unrelated_resampled_{speed}", synth.speed(unrelated_music(20, 12.0), speed))
    assert audio_library.index.search(query) == []
    assert audio_library.reference.search(query) == []


def test_speed_scan_can_be_turned_off(audio_library: AudioLibrary) -> None:
    x = synth.speed(synth.excerpt(audio_library.audio[205], SR, 3.0, 8.0), 1.05)
    query = audio_library.query("resampled_1.05_205", x)
    modality = AudioModality(scan=())
    index = modality.new_index()
    index.add_many(list(audio_library.fingerprints.items()))

    assert index.search(query) == []
    assert [m.item_id for m in audio_library.index.search(query)] == [205]


def test_max_items_caps_the_answer(audio_library: AudioLibrary) -> None:
    lib = audio_library.audio
    x = synth.concat(*(synth.excerpt(lib[i], SR, 2.0, 6.0) for i in (205, 17, 42)))
    query = audio_library.query("three_items", x, ".wav", None)
    assert {m.item_id for m in audio_library.index.search(query)} == {205, 17, 42}
    assert len(audio_library.index.search(query, max_items=2)) == 2
