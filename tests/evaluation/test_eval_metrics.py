"""The VCSL segment metric and the other scores, on hand-made boxes with hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from engine.evaluation.metrics import (
    QueryOutcome,
    boundary_errors,
    f1,
    macro_average,
    seg_len,
    summarize,
    vcsl_precision_recall,
)


def test_seg_len_matches_vcsl_own_tests() -> None:
    # The three cases of VCSL's test/test_metric.py.
    assert seg_len(np.array([[0, 10], [2, 3], [4, 5]], dtype=np.float32)) == 10.0
    assert seg_len(np.array([[2, 3], [0, 2], [2, 4]], dtype=np.float32)) == 4.0
    assert seg_len(np.array([[2, 3], [0, 1.5], [2.5, 4]], dtype=np.float32)) == 3.5
    assert seg_len(np.array([[0, 10], [2, 3]]), union=False) == 11.0


def test_perfect_prediction() -> None:
    p, r = vcsl_precision_recall([(0, 10, 30, 40)], [(0, 10, 30, 40)])
    assert p == pytest.approx(1.0, abs=1e-6) and r == pytest.approx(1.0, abs=1e-6)


def test_partial_prediction_is_a_product_over_both_axes() -> None:
    # Half the copy along each axis: everything predicted is right, a quarter of the truth is found.
    p, r = vcsl_precision_recall([(0, 5, 0, 5)], [(0, 10, 0, 10)])
    assert p == pytest.approx(1.0, abs=1e-6) and r == pytest.approx(0.25, abs=1e-6)
    # Shifted by half on both axes: the overlap is half of each side of each box.
    p, r = vcsl_precision_recall([(5, 15, 105, 115)], [(0, 10, 100, 110)])
    assert p == pytest.approx(0.25, abs=1e-6) and r == pytest.approx(0.25, abs=1e-6)


def test_empty_cases_follow_vcsl() -> None:
    assert vcsl_precision_recall([(0, 1, 0, 1)], []) == (0.0, 1.0)
    assert vcsl_precision_recall([], [(0, 1, 0, 1)]) == (1.0, 0.0)
    assert vcsl_precision_recall([], []) == (1.0, 1.0)


def test_disjoint_prediction_scores_zero() -> None:
    p, r = vcsl_precision_recall([(50, 60, 50, 60)], [(0, 10, 0, 10)])
    assert (p, r) == (0.0, 0.0)


def test_one_prediction_spanning_two_copies() -> None:
    gt = [(0, 10, 0, 10), (20, 30, 50, 60)]
    p, r = vcsl_precision_recall([(0, 30, 0, 60)], gt)
    # Query axis: intersections cover 20 of 30; reference axis: 20 of 60. Both truths are fully covered.
    assert p == pytest.approx((20 / 30) * (20 / 60), abs=1e-6)
    assert r == pytest.approx(1.0, abs=1e-6)


def test_duplicate_predictions_are_not_penalised_as_in_vcsl() -> None:
    # VCSL divides by the summed (not unioned) sides and sums each prediction's covered length alike.
    p, r = vcsl_precision_recall([(0, 10, 0, 10), (0, 10, 0, 10)], [(0, 10, 0, 10)])
    assert p == pytest.approx(1.0, abs=1e-6) and r == pytest.approx(1.0, abs=1e-6)


def test_macro_average_groups_first() -> None:
    pairs = [("a", 1.0, 1.0), ("a", 0.0, 0.0), ("b", 1.0, 0.0)]
    p, r, f = macro_average(pairs)  # type: ignore[misc]
    assert (p, r) == (pytest.approx(0.75), pytest.approx(0.25))
    assert f == pytest.approx(2 * 0.75 * 0.25 / 1.0)
    assert macro_average([]) is None
    assert f1(0.0, 0.0) == 0.0


def test_boundary_errors_use_the_hull_of_overlapping_slices() -> None:
    gt = [(10, 20, 30, 40)]
    # The copy cut in two slices, each a second long at its outer end; a far slice does not count.
    pred = [(9, 15, 29, 35), (15, 21, 35, 41), (100, 110, 0, 10)]
    assert boundary_errors(pred, gt) == pytest.approx([1.0, 1.0, 1.0, 1.0])
    assert boundary_errors([(100, 110, 0, 10)], gt) == []
    assert boundary_errors([], gt) == []


def test_summarize_counts_detection_and_false_matches() -> None:
    outcomes = [
        QueryOutcome(positive=True, found=True, wrong=0, group="a", segment=(1.0, 1.0), boundary=(0.5, 0.5)),
        QueryOutcome(positive=True, found=False, wrong=1, group="b", segment=(1.0, 0.0)),
        QueryOutcome(positive=False, found=False, wrong=2),
        QueryOutcome(positive=False, found=False, wrong=0),
    ]
    s = summarize(outcomes)
    assert (s.positives, s.negatives, s.found, s.wrong, s.negatives_matched) == (2, 2, 1, 3, 1)
    assert s.recall == 0.5
    assert s.precision == pytest.approx(1 / 4)
    assert s.false_match_rate == 0.5
    assert s.vcsl == (pytest.approx(1.0), pytest.approx(0.5), pytest.approx(2 / 3))
    assert s.boundary_mean == 0.5
    j = s.to_json()
    assert j["vcsl"]["f1"] == pytest.approx(2 / 3) and j["boundary_error"]["count"] == 2


def test_summarize_without_localisation_has_no_segment_score() -> None:
    s = summarize([QueryOutcome(positive=True, found=True, wrong=0, group="a", segment=None)])
    assert s.vcsl is None and s.recall == 1.0
    assert summarize([]).recall is None and summarize([]).precision is None
