"""`engine.video.align` on hand-made match lists: it needs no frames, so no video is needed to pin its behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core import Segment
from engine.video.align import AlignParams, Background, _Path, align, rate_consistent, unique_evidence

STEP = 0.5


def run(q: np.ndarray, r: np.ndarray, s: np.ndarray | float = 0.9, *, units: np.ndarray | None = None,
        q_duration: float = 60.0, r_duration: float = 600.0, params: AlignParams | None = None) -> list:  # fmt: skip
    scores = np.full(len(q), s) if np.isscalar(s) else np.asarray(s)
    units = np.arange(0, q_duration, STEP) if units is None else units
    return align(np.asarray(q, float), np.asarray(r, float), scores, query_units=units, q_step=STEP, r_step=STEP,
                 q_duration=q_duration, r_duration=r_duration, params=params)  # fmt: skip


def diagonal(q0: float, q1: float, offset: float, rate: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    q = np.arange(q0, q1, STEP)
    return q, q0 + offset + (q - q0) * rate


def test_one_diagonal_gives_one_segment_with_its_bounds() -> None:
    q, r = diagonal(10, 30, offset=100)
    (seg,) = run(q, r)
    assert (seg.input_start, seg.input_end, seg.ref_start, seg.ref_end) == pytest.approx((10, 30, 110, 130))
    assert seg.similarity == pytest.approx(0.9)


def test_similarity_counts_unmatched_query_frames_inside_the_segment() -> None:
    q, r = diagonal(0, 20, offset=50)
    keep = np.arange(len(q)) % 4 != 1  # a quarter of the frames did not match
    (seg,) = run(q[keep], r[keep], 1.0)
    assert seg.input_start == 0 and seg.input_end == pytest.approx(20)
    assert seg.similarity == pytest.approx(keep.sum() / len(q))


def test_two_copies_give_two_segments_best_first() -> None:
    q1, r1 = diagonal(0, 15, offset=200)
    q2, r2 = diagonal(30, 50, offset=-20)
    segs = run(np.r_[q1, q2], np.r_[r1, r2], np.r_[np.full(len(q1), 0.7), np.full(len(q2), 0.95)])
    assert len(segs) == 2
    assert segs[0].similarity > segs[1].similarity
    assert (segs[0].input_start, segs[0].ref_start) == pytest.approx((30, 10))
    assert (segs[1].input_start, segs[1].ref_start) == pytest.approx((0, 200))


def test_the_same_query_moment_can_copy_two_places_of_the_reference() -> None:
    q, r = diagonal(0, 10, offset=20)
    segs = run(np.r_[q, q], np.r_[r, r + 300], 0.9, q_duration=10.0)
    assert sorted(round(s.ref_start) for s in segs) == [20, 320]


def test_random_scattered_matches_give_nothing() -> None:
    rng = np.random.default_rng(0)
    q = rng.uniform(0, 60, 120)
    r = rng.uniform(0, 600, 120)
    assert run(q, r, rng.uniform(0.6, 1.0, 120)) == []


def test_diagonal_survives_noise_and_missing_frames() -> None:
    rng = np.random.default_rng(1)
    q, r = diagonal(5, 25, offset=40)
    keep = rng.random(len(q)) > 0.3
    noise_q, noise_r = rng.uniform(0, 60, 200), rng.uniform(0, 600, 200)
    segs = run(np.r_[q[keep], noise_q], np.r_[r[keep], noise_r], np.r_[np.full(keep.sum(), 0.9), np.full(200, 0.6)])
    assert len(segs) >= 1
    best = segs[0]
    assert abs(best.input_start - 5) <= 1 and abs(best.input_end - 25) <= 1
    assert abs(best.ref_start - 45) <= 1 and abs(best.ref_end - 65) <= 1


@pytest.mark.parametrize("rate", [0.85, 1.15])
def test_speed_change_is_one_segment(rate: float) -> None:
    q, r = diagonal(0, 30, offset=10, rate=rate)
    (seg,) = run(q, np.round(r / STEP) * STEP)  # reference samples sit on their own grid
    assert seg.input_start == 0 and seg.input_end == pytest.approx(30)
    assert seg.ref_start == pytest.approx(10, abs=STEP / 2) and seg.ref_end == pytest.approx(10 + 30 * rate, abs=1.0)


def test_short_gap_is_bridged_long_gap_splits() -> None:
    q, r = diagonal(0, 40, offset=5)
    short = (q < 10) | (q >= 12)  # 2 s without matches
    assert len(run(q[short], r[short])) == 1
    long_gap = (q < 10) | (q >= 25)  # 15 s without matches: two copies
    assert len(run(q[long_gap], r[long_gap])) == 2


def test_tiny_and_weak_segments_are_dropped() -> None:
    q, r = diagonal(0, 1.0, offset=5)  # two frames: below min_units and min_duration
    assert run(q, r, 1.0) == []
    q, r = diagonal(0, 20, offset=5)
    assert run(q, r, 0.2) == []  # below min_similarity
    assert run(q, r, 0.2, params=AlignParams(min_similarity=0.1, copy_similarity=0.1)) != []


def test_single_unit_query_matches_alone() -> None:
    """An image: one query unit of no duration can still match one reference instant."""
    segs = align(np.array([0.0]), np.array([12.5]), np.array([0.9]), query_units=np.array([0.0]), q_step=0.0,
                 r_step=STEP, q_duration=0.0, r_duration=30.0)  # fmt: skip
    (seg,) = segs
    assert (seg.input_start, seg.input_end, seg.ref_start, seg.ref_end) == (0.0, 0.0, 12.5, 13.0)


def test_bounds_are_clipped_to_durations() -> None:
    q, r = diagonal(0, 10, offset=20)
    (seg,) = run(q, r, q_duration=9.8, r_duration=29.7)
    assert seg.input_end == pytest.approx(9.8) and seg.ref_end == pytest.approx(29.7)


def test_empty_input() -> None:
    assert run(np.array([]), np.array([]), np.array([])) == []


def test_query_frames_parked_on_one_reference_frame_are_no_copy() -> None:
    """The product-demo false positive: 3 s of a still query shot all matched one frame of an unrelated video.
    Each link (0.5 s of query, no reference time) fits the per-link rate slack; the chain as a whole does not."""
    q = np.arange(0.5, 3.5, STEP)
    r = np.full(len(q), 5.5)
    assert run(q, r, 0.55, q_duration=30.0, r_duration=30.0) == []


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.5, 2.0, 3.0])
def test_chains_outside_the_rate_bounds_give_no_long_segment(rate: float) -> None:
    q, r = diagonal(0, 20, offset=40, rate=rate)
    p = AlignParams()
    segs = run(q, np.round(r / STEP) * STEP, params=p)
    for seg in segs:
        assert seg.input_duration < 10
        assert (
            p.min_rate * seg.input_duration - p.jitter <= seg.ref_duration <= p.max_rate * seg.input_duration + p.jitter
        )


def test_rate_bounds_hold_on_the_final_bounds() -> None:
    """A path that is fine link by link but whose reference span collapses is dropped, not reported."""
    p = AlignParams()
    assert not rate_consistent(Segment(0.5, 3.5, 5.5, 6.0, 0.55), p)  # the demo's 3 s -> 0.5 s
    assert rate_consistent(Segment(0.0, 10.0, 20.0, 30.0, 0.9), p)
    assert rate_consistent(Segment(0.0, 3.0, 17.5, 19.5, 0.8), p)  # a short copy, each bound a sample off


def dense_run(scores: np.ndarray, *, with_background: bool = True) -> list[Segment]:
    """Align a dense (query frames x reference frames) score grid as `match_item` does: the pairs at the frame
    match threshold or better are the matches, and the grid itself is the background."""
    q_times, r_times = np.arange(scores.shape[0]) * STEP, np.arange(scores.shape[1]) * STEP
    rows, cols = np.nonzero(scores >= AlignParams().copy_similarity)
    background = Background(q_times, r_times, lambda i, j: scores[i, j]) if with_background else None
    return align(q_times[rows], r_times[cols], scores[rows, cols], query_units=q_times, q_step=STEP, r_step=STEP,
                 q_duration=len(q_times) * STEP, r_duration=len(r_times) * STEP, background=background)  # fmt: skip


def short_copy(static_head: int, elsewhere: float) -> np.ndarray:
    """6 query frames (3 s) copying reference frames 1-6 of 10 at 0.8; the first `static_head` frames of the copy
    show a still stretch (each matches every reference frame of it at 0.8); every other pair scores `elsewhere`."""
    scores = np.full((6, 10), elsewhere)
    scores[np.arange(6), np.arange(6) + 1] = 0.8
    scores[:static_head, 1 : 1 + static_head] = 0.8
    return scores


def test_a_short_copy_of_changing_footage_is_found_by_its_uniqueness() -> None:
    """3 s copied, the first 1.5 s of it a still stretch: reversed, the still frames align as well as forwards, so
    the reversed-order null leaves less than the margin; but no frame matches anything 2-5 s away from its match,
    in the reference or in the query, so the alignment is unique."""
    scores = short_copy(static_head=3, elsewhere=0.1)
    assert dense_run(scores, with_background=False) == []
    (seg,) = dense_run(scores)
    assert (seg.input_start, seg.ref_start) == (0.0, 0.5)
    assert seg.input_end == pytest.approx(3.0) and seg.ref_end == pytest.approx(3.5)


def test_a_short_alignment_within_one_static_scene_is_not_unique() -> None:
    """The same alignment where every frame also matches frames 2-5 s away (different moments of a still scene
    resemble each other just as much): no frame is unique, nothing is reported."""
    assert dense_run(short_copy(static_head=3, elsewhere=0.7)) == []


def test_frames_with_nothing_far_enough_to_compare_give_no_uniqueness() -> None:
    """A copy inside a reference and a query too short to hold any shifted alternative: uniqueness is unmeasured,
    which is not evidence (a still scene's two short moments would otherwise look unique)."""
    p = AlignParams()
    q = np.arange(0.0, 1.5 + STEP / 2, STEP)  # 4 frames, 1.5 s: every shift is < 2 s
    path = _Path(q, q.copy(), np.full(len(q), 0.8))
    background = Background(q, q.copy(), lambda i, j: np.full(np.broadcast(i, j).shape, 0.1))
    assert unique_evidence(path, background, p) == 0.0
    far = np.arange(0.0, 6.0, STEP)  # the reference goes on: each frame has shifted alternatives, all unlike it
    background = Background(q, far, lambda i, j: np.full(np.broadcast(i, j).shape, 0.1))
    assert unique_evidence(path, background, p) == pytest.approx(4 * 0.7)


def test_reported_reference_bounds_follow_the_line_through_the_matches() -> None:
    """A copy 10.25 s into its reference, both sampled every 0.5 s: each query frame's best reference frame is
    10 or 10.5 s on, by turns. The reported reference side lies on the line through them, and it ends where the
    query does (0.07 s after its last sample), not a whole step after the last matched reference frame."""
    q = np.arange(0.0, 6.0, STEP)
    r = q + np.where(np.arange(len(q)) % 2 == 0, 10.0, 10.5)
    (seg,) = run(q, r, q_duration=5.57, r_duration=60.0)
    assert (seg.input_start, seg.input_end) == pytest.approx((0.0, 5.57))
    assert seg.ref_start == pytest.approx(10.25) and seg.ref_end == pytest.approx(15.82)


def test_an_alignment_as_good_shifted_by_a_few_seconds_is_chance() -> None:
    """A scene that repeats every 2.5 s (waves, a turning sign): 6 s of query align with the reference in order,
    so reversed they do not, and the reversed-order null alone lets it pass; but the same alignment shifted by
    2.5 s is just as good, so nothing singles this one out."""
    i, j = np.mgrid[0:12, 0:40]
    scores = np.where((j - i - 10) % 5 == 0, 0.8, 0.1)
    assert dense_run(scores, with_background=False) != []
    assert dense_run(scores) == []
