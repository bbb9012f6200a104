"""An accepted alignment grows over the weak runs on its own offset, and an accepted segment's ends are moved out
by its matches' mean spacing; neither ever reports anything that would not be reported without it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.audio import alignment
from engine.audio.alignment import (
    EXTEND_MIN_MATCHES,
    FRAME_SECONDS,
    JOIN_GAP,
    Candidate,
    QueryLandmarks,
    candidates_from_hits,
    resolve,
    widen,
)
from engine.core import Segment

OFFSET = 500  # frames: where the query sits in the item
TRIALS = 1e7  # (item, offset) bins x hypotheses: a big library's


def _alignment(runs: list[tuple[float, float, int]], rare: float = 1e-5) -> list[Candidate]:
    """The candidates of one query whose landmarks all sit at OFFSET in item 0: `runs` of (start s, end s,
    matched landmarks), one landmark per frame at other times (unmatched); every landmark's chance rate `rare`."""
    seconds = max(end for _, end, _ in runs) + 2.0
    times = np.arange(round(seconds / FRAME_SECONDS), dtype=np.int64)
    matched: list[int] = []
    for start, end, n in runs:
        frames = np.linspace(start / FRAME_SECONDS, end / FRAME_SECONDS, n).round().astype(np.int64)
        matched += frames.tolist()
    q_idx = np.array(sorted(set(matched)), np.int64)
    query = QueryLandmarks(
        times=times,
        ends=times + 10,
        duration=seconds,
        chance=np.full(times.size, rare),
        trials=TRIALS,
    )
    # A few hits per frame would be more like it; the ratio rule is what matters here, so keep runs dense.
    item = np.zeros(q_idx.size, np.int64)
    rel = np.full(q_idx.size, OFFSET, np.int64)
    return candidates_from_hits(query, q_idx, item, rel, {0: 600.0})


# A weak run over 0.2-1.0 s: too few matches to found an alignment (MIN_MATCHES), too short (MIN_SPAN), but as dense
# as a segment must be (MIN_RATIO of its ~50 landmarks) and more than one peak's (EXTEND_MIN_MATCHES).
WEAK = max(EXTEND_MIN_MATCHES + 2, 8)


def _dense(start: float, end: float) -> tuple[float, float, int]:
    return start, end, round((end - start) / FRAME_SECONDS * 0.5) + 1  # half the frames matched


def test_a_weak_run_next_to_an_accepted_one_widens_it() -> None:
    weak = (0.2, 1.0, WEAK)
    [c] = _alignment([weak, _dense(5.0, 19.0)])
    assert c.segment.input_start == pytest.approx(0.2 + alignment._CENTRE * FRAME_SECONDS, abs=0.02)
    assert c.segment.input_end >= 19.0


def test_a_weak_run_alone_or_out_of_reach_is_dropped() -> None:
    weak = (0.2, 1.0, WEAK)
    assert _alignment([weak]) == []
    [c] = _alignment([weak, _dense(1.0 + JOIN_GAP + 1.0, 25.0)])  # farther than JOIN_GAP from the accepted run
    assert c.segment.input_start > JOIN_GAP


def test_a_weak_run_needs_more_than_one_peaks_landmarks_and_significance() -> None:
    few = (0.2, 1.0, EXTEND_MIN_MATCHES - 1)
    [c] = _alignment([few, _dense(5.0, 19.0)])
    assert c.segment.input_start > 4.5
    common = (0.2, 1.0, WEAK)  # as many matches as chance gives at that rate: no evidence
    [c] = _alignment([common, _dense(5.0, 19.0)], rare=0.2)
    assert c.segment.input_start > 4.5


def test_widening_moves_each_end_out_by_the_mean_spacing_inside_both_files() -> None:
    seg = Segment(2.0, 12.0, 30.0, 40.0, 0.9)
    c = Candidate(0, 40, seg, 1.0, anchors=20, ref_duration=100.0)
    out = widen(c, query_duration=20.0)
    assert (out.input_start, out.input_end, out.ref_start, out.ref_end) == (1.5, 12.5, 29.5, 40.5)
    # at a file's edge it stops there, by the same reference time on both sides
    edge = widen(Candidate(0, 40, Segment(0.2, 12.0, 30.0, 39.8, 0.9), 1.0, 20, 40.0), query_duration=20.0)
    assert (edge.input_start, edge.ref_start, edge.ref_end, edge.input_end) == (0.0, 29.8, 40.0, 12.2)
    # a faster copy: query seconds out, speed x reference seconds out
    fast = widen(Candidate(0, 40, Segment(2.0, 12.0, 30.0, 41.0, 0.9), 1.1, 20, 100.0), 20.0)
    assert fast.ref_start == pytest.approx(30.0 - 0.5 * 1.1) and fast.input_start == pytest.approx(1.5)
    assert widen(Candidate(0, 40, seg), 20.0) == seg  # anchors unknown: as it was


def test_widening_comes_after_the_length_rule() -> None:
    """A slice just short of MIN_SECONDS stays unreported although widening would make it long enough."""
    short = alignment.MIN_SECONDS - 0.1
    c = Candidate(0, 40, Segment(5.0, 5.0 + short, 30.0, 30.0 + short, 0.9), 1.0, anchors=4, ref_duration=100.0)
    assert widen(c, 60.0).input_duration > alignment.MIN_SECONDS
    assert resolve([c], 5, query_duration=60.0) == []
    long = Candidate(0, 40, Segment(5.0, 11.0, 30.0, 36.0, 0.9), 1.0, anchors=12, ref_duration=100.0)
    [match] = resolve([long], 5, query_duration=60.0)
    assert match.segments[0].input_start == pytest.approx(4.5) and not math.isinf(match.segments[0].ref_end)
