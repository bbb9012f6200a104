"""Significance and warps: tempo-only and pitch-only copies come back as one slice spanning them; short
coincidences and chance-level evidence are not reported; one copy cut by weak evidence is one slice."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from audio_testlib import SR, AudioLibrary

from engine.audio import alignment
from engine.audio.alignment import Candidate, log_poisson_tail, resolve, significant
from engine.core import Segment
from engine.evaluation.real_audio import atempo, pitch_shift
from engine.synth import audio as synth


@pytest.mark.parametrize(
    ("edit", "factor", "item_id", "start"),
    [
        ("tempo", 1.05, 205, 2.0),
        ("tempo", 0.95, 17, 3.5),
        ("pitch", 1.05, 9001, 1.0),
        ("pitch", 0.95, 42, 4.0),
    ],
)
def test_tempo_only_and_pitch_only_copies_are_one_slice_spanning_the_copy(
    audio_library: AudioLibrary, edit: str, factor: float, item_id: int, start: float
) -> None:
    """Time stretched with the pitch kept (WSOLA), or pitch shifted with the tempo kept: neither is a resampling,
    so the resampling scan alone saw only fragments; the tempo and pitch scans align the whole copy."""
    length = 12.0
    clip = synth.excerpt(audio_library.audio[item_id], SR, start, length)
    x = atempo(clip, factor) if edit == "tempo" else pitch_shift(clip, factor)
    query = audio_library.query(f"{edit}_{factor}_{item_id}", x)
    shown = length / factor if edit == "tempo" else length  # seconds of the query the copy lasts

    [match] = audio_library.index.search(query)

    assert match.item_id == item_id
    [seg] = match.segments
    # Give or take the first and last landmarks (the shifter's last window fades out).
    assert seg.input_start == pytest.approx(0.0, abs=0.5)
    assert seg.input_end == pytest.approx(shown, abs=0.75)
    assert seg.ref_start == pytest.approx(start, abs=0.5)
    assert seg.ref_end == pytest.approx(start + length, abs=0.75)
    assert seg.similarity >= 0.8
    assert audio_library.reference.search(query) == audio_library.index.search(query)


def test_a_short_shared_passage_is_no_copy_a_longer_one_is(
    audio_library: AudioLibrary, unrelated_music: Callable[[int, float], np.ndarray]
) -> None:
    """3 s of a library item inside 20 s of other music is what a shared motif looks like: not reported.
    8 s is reported, spanning the passage."""
    host = unrelated_music(11, 20.0)
    short = synth.embed(synth.excerpt(audio_library.audio[17], SR, 5.0, 3.0), host, SR, 8.0)
    longer = synth.embed(synth.excerpt(audio_library.audio[17], SR, 5.0, 8.0), host, SR, 6.0)

    assert audio_library.index.search(audio_library.query("shared_3s", short)) == []
    [match] = audio_library.index.search(audio_library.query("shared_8s", longer))
    assert match.item_id == 17
    [seg] = match.segments
    assert seg.input_start == pytest.approx(6.0, abs=0.5) and seg.input_end == pytest.approx(14.0, abs=0.5)


def test_a_short_upload_is_judged_by_the_share_it_copies(audio_library: AudioLibrary) -> None:
    """An upload shorter than MIN_SECONDS that is all copy is still a copy (SHORT_SHARE of it must match)."""
    x = synth.excerpt(audio_library.audio[205], SR, 6.0, 4.5)
    [match] = audio_library.index.search(audio_library.query("short_upload", x))
    assert match.item_id == 205


def test_poisson_tail_bound_is_an_upper_bound_close_to_the_exact_tail() -> None:
    for n, lam in [(1, 0.01), (5, 0.3), (10, 2.0), (20, 1e-4), (40, 12.0)]:
        exact = sum(math.exp(-lam + k * math.log(lam) - math.lgamma(k + 1)) for k in range(n, n + 400))
        bound = math.exp(log_poisson_tail(n, lam))
        assert exact <= bound * (1 + 1e-9)
        assert bound <= 2.0 * exact
    assert log_poisson_tail(0, 1.0) == 0.0
    assert log_poisson_tail(3, 10.0) == 0.0  # the mean is past n: no bound below 1


def test_significance_needs_more_matches_in_a_bigger_library_and_for_common_landmarks() -> None:
    def needed(lam: float, trials: float) -> int:
        return next(n for n in range(1, 10_000) if significant(n, lam, trials))

    small, big = needed(1e-3, 1e5), needed(1e-3, 1e9)
    assert small < big
    assert needed(1e-3, 1e9) < needed(0.5, 1e9)  # common hashes: more chance hits expected
    # Matches at chance level are never enough, however many.
    assert not significant(10, 10.0, 1.0)


def _cand(item: int, matches: int, q0: float, q1: float, r0: float, sim: float = 0.9, speed: float = 1.0) -> Candidate:
    return Candidate(item, matches, Segment(q0, q1, r0, r0 + (q1 - q0) * speed, sim), speed)


def test_collinear_segments_across_a_weak_gap_are_joined_others_are_not() -> None:
    parts = [_cand(1, 40, 0.0, 6.0, 30.0), _cand(1, 20, 9.0, 20.0, 39.05, 0.7)]  # the same line, 3 s apart
    [match] = resolve(parts, 10, 20.0)
    [seg] = match.segments
    assert (seg.input_start, seg.input_end, seg.ref_start) == (0.0, 20.0, 30.0)
    assert seg.similarity == pytest.approx((0.9 * 40 + 0.7 * 20) / 60)
    # Another offset (the chorus elsewhere in the item), or a gap longer than JOIN_GAP: separate slices.
    moved = [_cand(1, 40, 0.0, 6.0, 30.0), _cand(1, 20, 9.0, 20.0, 80.0)]
    assert len(resolve(moved, 10, 20.0)[0].segments) == 2
    far = [_cand(1, 40, 0.0, 6.0, 30.0), _cand(1, 20, 6.0 + alignment.JOIN_GAP + 1, 30.0, 46.0 + alignment.JOIN_GAP)]
    assert len(resolve(far, 10, 30.0)[0].segments) == 2


def test_short_slices_are_dropped_and_items_left_empty_go() -> None:
    parts = [_cand(1, 30, 2.0, 5.5, 10.0), _cand(2, 60, 0.0, 12.0, 0.0)]
    assert [m.item_id for m in resolve(parts, 10, 20.0)] == [2]
    # Under a short upload the bar is SHORT_SHARE of it.
    assert [m.item_id for m in resolve([_cand(1, 30, 0.2, 3.9, 10.0)], 10, 4.0)] == [1]
