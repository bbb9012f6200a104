"""Scores: detection recall/precision, the VCSL segment metric and slice-boundary time error.

A box is `(query start, query end, ref start, ref end)` in the modality's unit (seconds; plain text: characters).

The segment metric is VCSL's (Alibaba/Ant Group, "A Large-scale Comprehensive Dataset and Benchmark for Video
Copy Segment Localization", CVPR 2022; `vcsl/metric.py`), ported line for line:

- For one (query, reference) pair with predicted boxes P and ground-truth boxes G, every predicted box is
  intersected with the G boxes it overlaps (positive area). Along each axis separately, the union length of those
  intersections is summed over the predicted boxes and divided by the summed (not unioned) side lengths of P:
  precision_q and precision_r. Precision is their product. Recall swaps the roles of P and G.
- Empty cases: predictions but no truth -> P=0, R=1; truth but no predictions -> P=1, R=0; neither -> 1, 1.
- Pairs are macro-averaged twice: first within a group (VCSL: the query pairs of one copyrighted video; here, the
  queries made from one reference), then across groups. F1 is taken from the two averages.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

Box = tuple[float, float, float, float]  # (query start, query end, ref start, ref end)
_EPS = 1e-6  # VCSL adds it to every denominator


def seg_len(segments: np.ndarray, union: bool = True) -> float:
    """Total length of (start, end) rows: of their union (overlaps once), or their plain sum."""
    if len(segments) == 0:
        return 0.0
    if not union:
        return float(np.sum(segments[:, 1] - segments[:, 0]))
    merged: list[list[float]] = []
    for start, end in sorted(segments.tolist(), key=lambda s: s[0]):
        if merged and not merged[-1][1] < start:  # VCSL merges touching segments too
            merged[-1] = [min(merged[-1][0], start), max(merged[-1][1], end)]
        else:
            merged.append([start, end])
    return float(sum(end - start for start, end in merged))


def _as_xyxy(boxes: Sequence[Box]) -> np.ndarray:
    """Our (qs, qe, rs, re) boxes as VCSL's (x1, y1, x2, y2) rows: x is query time, y reference time."""
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return arr[:, [0, 2, 1, 3]]


def _intersections(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, M, 4) intersection boxes and (N, M) their areas."""
    lt = np.maximum(pred[:, None, :2], gt[None, :, :2])
    rb = np.minimum(pred[:, None, 2:], gt[None, :, 2:])
    wh = np.maximum(rb - lt, 0.0)
    return np.concatenate((lt, rb), axis=2), wh[:, :, 0] * wh[:, :, 1]


def _covered(inter: np.ndarray, areas: np.ndarray, sides: np.ndarray) -> float:
    """One direction of VCSL's metric: `inter`/`areas` indexed [own box, other box]; `sides` the own boxes."""
    tp_w = tp_h = 0.0
    for own, row in enumerate(areas):
        hits = np.flatnonzero(row > 0)
        if len(hits):
            tp_w += seg_len(inter[own, hits][:, [0, 2]])
            tp_h += seg_len(inter[own, hits][:, [1, 3]])
    total_w = seg_len(sides[:, [0, 2]], union=False)
    total_h = seg_len(sides[:, [1, 3]], union=False)
    return (tp_w / (total_w + _EPS)) * (tp_h / (total_h + _EPS))


def vcsl_precision_recall(pred: Sequence[Box], gt: Sequence[Box]) -> tuple[float, float]:
    """VCSL segment precision and recall of one (query, reference) pair."""
    if len(pred) and not len(gt):
        return 0.0, 1.0
    if not len(pred) and len(gt):
        return 1.0, 0.0
    if not len(pred) and not len(gt):
        return 1.0, 1.0
    p, g = _as_xyxy(pred), _as_xyxy(gt)
    inter, areas = _intersections(p, g)
    precision = _covered(inter, areas, p)
    recall = _covered(inter.transpose(1, 0, 2), areas.T, g)
    return precision, recall


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def macro_average(pairs: Iterable[tuple[str, float, float]]) -> tuple[float, float, float] | None:
    """VCSL `evaluate`: (group, precision, recall) per pair -> (precision, recall, F1) macro over groups."""
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for group, p, r in pairs:
        groups[group].append((p, r))
    if not groups:
        return None
    per_group = [(sum(p for p, _ in v) / len(v), sum(r for _, r in v) / len(v)) for v in groups.values()]
    p = sum(p for p, _ in per_group) / len(per_group)
    r = sum(r for _, r in per_group) / len(per_group)
    return p, r, f1(p, r)


def boundary_errors(pred: Sequence[Box], gt: Sequence[Box]) -> list[float]:
    """|error| of the four boundaries of each ground-truth box against the hull of the predicted boxes that
    overlap it: where the system says that copy starts and ends, however many slices it cut it into.

    A ground-truth box no prediction overlaps contributes nothing (recall already counts it as missed)."""
    if not len(pred) or not len(gt):
        return []
    p, g = _as_xyxy(pred), _as_xyxy(gt)
    _, areas = _intersections(p, g)
    errors: list[float] = []
    for j in range(len(g)):
        hits = p[areas[:, j] > 0]
        if len(hits):
            hull = np.concatenate([hits[:, :2].min(axis=0), hits[:, 2:].max(axis=0)])
            errors.extend(np.abs(hull - g[j]).tolist())
    return errors


# ------------------------------------------------------------------------------------------ aggregation


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    """How one system did on one query."""

    positive: bool  # the query copies a reference (else it is a negative)
    found: bool  # the reference it copies was reported
    wrong: int  # reported references it does not copy
    group: str = ""  # VCSL macro-average group: the reference the query was made from
    segment: tuple[float, float] | None = None  # VCSL (P, R) of the true pair; None if the system cannot localise
    boundary: tuple[float, ...] = ()


@dataclass(slots=True)
class Summary:
    """A row of the report: detection, segment and boundary scores over a set of queries."""

    queries: int = 0
    positives: int = 0
    negatives: int = 0
    found: int = 0
    wrong: int = 0  # wrong references reported on positives and negatives
    negatives_matched: int = 0  # negatives with at least one reported reference
    vcsl: tuple[float, float, float] | None = None
    boundary: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.found / self.positives if self.positives else None

    @property
    def precision(self) -> float | None:
        reported = self.found + self.wrong
        return self.found / reported if reported else None

    @property
    def false_match_rate(self) -> float | None:
        return self.negatives_matched / self.negatives if self.negatives else None

    @property
    def boundary_mean(self) -> float | None:
        return float(np.mean(self.boundary)) if self.boundary else None

    @property
    def boundary_p90(self) -> float | None:
        return float(np.percentile(self.boundary, 90)) if self.boundary else None

    def to_json(self) -> dict:
        vcsl = None if self.vcsl is None else dict(zip(("precision", "recall", "f1"), self.vcsl, strict=True))
        return {
            "queries": self.queries,
            "positives": self.positives,
            "negatives": self.negatives,
            "found": self.found,
            "wrong_matches": self.wrong,
            "negatives_matched": self.negatives_matched,
            "recall": self.recall,
            "precision": self.precision,
            "false_match_rate": self.false_match_rate,
            "vcsl": vcsl,
            "boundary_error": {"mean": self.boundary_mean, "p90": self.boundary_p90, "count": len(self.boundary)},
        }


def summarize(outcomes: Iterable[QueryOutcome]) -> Summary:
    summary = Summary()
    pairs: list[tuple[str, float, float]] = []
    localises = True
    for o in outcomes:
        summary.queries += 1
        summary.wrong += o.wrong
        if o.positive:
            summary.positives += 1
            summary.found += o.found
            summary.boundary.extend(o.boundary)
            if o.segment is None:
                localises = False
            else:
                pairs.append((o.group, *o.segment))
        else:
            summary.negatives += 1
            summary.negatives_matched += o.wrong > 0
    summary.vcsl = macro_average(pairs) if localises else None
    return summary
