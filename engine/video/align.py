"""Temporal alignment: scattered (query time, reference time, score) unit matches -> copied segments.

Video's aligner (audio aligns by offset histograms in `engine.audio.alignment`, text by chaining k-grams): a "unit"
is a sampled frame, all times are in seconds. The method is a temporal network (Tan et al. 2009, as in VCSL's "TN"):
matches are nodes, an edge joins two matches that could follow each other in one copy (later in both query and
reference, at a roughly constant offset, with a bounded gap), and a copied segment is the heaviest path. Paths are
found by dynamic programming, best first, removing each path's neighbourhood before looking for the next, so one
query can yield several segments, against several places of the same reference. Nearby segments at the same offset
are then merged, and short, thin or weak ones dropped.

The rate (reference seconds per query second) is bounded three times: between consecutive matches of a path,
from the path's first match to each later one (per-link slack would otherwise add up, letting a path crawl along
the query while the reference stands still: a still or plain shot of the query matching one frame of an unrelated
reference), and on each final segment's bounds.

Segment similarity = sum of the path's match scores / number of query units inside the segment: a segment whose
frames mostly failed to match scores low even if the few that matched are perfect.

Significance (`significant`): similarity says how closely, not whether the match could be chance. Different moments
of one static or repetitive scene (a webcam, a room, a street camera) match each other at 0.5-0.8 over a few
seconds. So a segment is kept only if its average frame would itself pass as a match, and its evidence clears
what chance gives by a margin (`min_excess` frames, growing with the library's size), measured in one of three ways:
- near-exact (`close_similarity`): its frames alone, each reference frame counted once;
- order: heavier than the same query frames aligned in reverse order against the same reference range, and than
  the same alignment shifted rigidly by 2-5 s within the reference (`shifted_weights`): the chance level of this
  query on this scene, measured rather than assumed (a still or repetitive scene aligns as well shifted, or
  reversed, as where it is);
- uniqueness (`unique_evidence`): how much of its frames' scores no time-shifted alternative explains. A copy of
  footage that changes matches each frame where it belongs and nowhere 2-5 s away, in the reference or in the
  query; different moments of one static scene match everywhere, so none of their frames counts. This is what
  finds a short copy (3 s, 6 frames): the reversed null of so few frames crosses the copy's own diagonal and
  inherits its static stretches, leaving less than the margin however exact the copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.core import Segment


@dataclass(frozen=True, slots=True)
class AlignParams:
    max_gap: float = 3.0  # s: the longest stretch without matches bridged inside one segment
    min_rate: float = 0.75  # reference seconds per query second, between consecutive matches: speed changes...
    max_rate: float = 1.35
    jitter: float = 0.8  # s: ...plus this much slack (sampling phase, static shots that match several frames)
    gap_penalty: float = 0.3  # score lost per second of query without a match inside a path
    drift_penalty: float = 0.2  # score lost per second of departure from the path's offset (keeps paths straight)
    min_units: int = 3  # a segment needs this many matched units (fewer if the query has fewer)
    min_duration: float = 2.0  # s on the query axis (shorter queries: their duration)
    min_similarity: float = 0.3
    merge_gap: float = 4.0  # s: segments this close, at offsets this close, are one
    max_segments: int = 32  # per item
    # Significance. A reported segment's similarity must reach `copy_similarity`: the score of a frame at the
    # match threshold (12 of 64 bits), i.e. its average frame would itself pass as a match...
    copy_similarity: float = 0.625
    # ...and its evidence (the sum of its frame scores; and that sum with each reference frame counted once) must
    # exceed by `min_excess` frames' worth what chance gives the same query frames played backwards against the
    # same reference range +- `null_margin` s (`null_weights`),
    null_margin: float = 2.0
    min_excess: float = 2.5
    # plus this much per tenfold library size beyond `library_unit` frames (more items, more chances to align).
    excess_per_decade: float = 0.5
    library_unit: int = 10_000
    # Or it is this close (0.9: its frames within about 3 of 64 bits on average) and its evidence alone reaches
    # the margin: a near-exact copy of a near-still shot, over enough distinct reference frames, is still a copy.
    close_similarity: float = 0.9
    # Or the frames' scores beyond what the best time-shifted alternative gives (`unique_evidence`) reach the
    # margin. Alternatives are the same query frame against reference frames shifted by `unique_shift` (s) from
    # its match, and the matched reference frame against query frames shifted as much. The near side excludes
    # the match's own neighbours: thumbnails average +-1 sample, sampling phases differ, and paths bend by
    # `jitter` (2 s: `min_duration`, one shortest copy away); the far side keeps the comparison local (the fast
    # index verifies only around its votes). The same shifts, applied to the whole path, give the order test its
    # second null (`shifted_weights`).
    unique_shift: tuple[float, float] = (2.0, 5.0)


@dataclass(frozen=True, slots=True)
class Background:
    """Every query unit against every reference unit of the verified range, for the uniqueness test: unit times
    on both sides and `scores(rows, cols)`, the scores of the given (broadcast) index pairs."""

    q_times: np.ndarray
    r_times: np.ndarray
    scores: Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(slots=True)
class _Path:
    q: np.ndarray
    r: np.ndarray
    score: np.ndarray

    @property
    def offset(self) -> float:
        return float(np.median(self.r - self.q))


def _best_path(q: np.ndarray, r: np.ndarray, s: np.ndarray, alive: np.ndarray, step: float, p: AlignParams,
               rated: bool = True) -> tuple[float, np.ndarray]:  # fmt: skip
    """The heaviest chain among alive matches (sorted by q): its weight and node indices. `rated`: both sides
    are timed, so a chain's overall rate must lie within the tolerance too (not for a still reference)."""
    n = len(q)
    best = np.where(alive, s, -np.inf)
    prev = np.full(n, -1)
    # The first node of the best chain ending at each node. Rates are checked against it as well as between
    # neighbours: the jitter slack of each link would otherwise add up along a chain, and query frames could
    # creep along at any rate, down to many query seconds parked on one reference frame (a collapsed reference).
    origin = np.arange(n)
    starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
    bounds = np.r_[starts, n]
    reach = p.max_gap + step
    for g in range(1, len(starts)):
        lo_g, hi_g = bounds[g], bounds[g + 1]
        first = np.searchsorted(q, q[lo_g] - reach, side="left")
        if first >= lo_g:
            continue
        pred = np.arange(first, lo_g)
        pred = pred[np.isfinite(best[pred])]
        if len(pred) == 0:
            continue
        dq = q[lo_g] - q[pred]  # same for the whole group
        dr = r[lo_g:hi_g, None] - r[None, pred]  # (group, pred)
        ok = (dr >= p.min_rate * dq - p.jitter) & (dr <= p.max_rate * dq + p.jitter)
        if rated:
            dq0 = q[lo_g] - q[origin[pred]]  # (pred,): from the chain's start
            dr0 = r[lo_g:hi_g, None] - r[None, origin[pred]]
            ok &= (dr0 >= p.min_rate * dq0 - p.jitter) & (dr0 <= p.max_rate * dq0 + p.jitter)
        cost = p.gap_penalty * np.maximum(dq - step, 0.0) + p.drift_penalty * np.abs(dr - dq)
        value = np.where(ok, best[pred][None, :] - cost, -np.inf)
        arg = value.argmax(axis=1)
        top = value[np.arange(hi_g - lo_g), arg]
        extend = (top > 0) & alive[lo_g:hi_g]
        idx = np.arange(lo_g, hi_g)[extend]
        best[idx] = s[idx] + top[extend]
        prev[idx] = pred[arg[extend]]
        origin[idx] = origin[prev[idx]]
    end = int(np.argmax(best))
    if not np.isfinite(best[end]):
        return 0.0, np.empty(0, dtype=int)
    nodes = [end]
    while prev[nodes[-1]] >= 0:
        nodes.append(int(prev[nodes[-1]]))
    return float(best[end]), np.array(nodes[::-1])


def _merge(paths: list[_Path], p: AlignParams) -> list[_Path]:
    """Join paths that continue each other at about the same offset."""
    paths = sorted(paths, key=lambda x: float(x.q[0]))
    merged: list[_Path] = []
    for path in paths:
        for i, other in enumerate(merged):
            gap_q = float(path.q[0] - other.q[-1])
            gap_r = float(path.r[0] - other.r[-1])
            if (
                -p.jitter <= gap_q <= p.merge_gap
                and -p.jitter <= gap_r <= p.merge_gap * p.max_rate
                and abs(path.offset - other.offset) <= p.jitter + 0.25 * gap_q
            ):
                keep = path.q > other.q[-1]
                merged[i] = _Path(
                    np.r_[other.q, path.q[keep]], np.r_[other.r, path.r[keep]], np.r_[other.score, path.score[keep]]
                )
                break
        else:
            merged.append(path)
    return merged


def distinct_weight(r: np.ndarray, score: np.ndarray) -> float:
    """A path's evidence: the sum of its scores with each reference frame counted once (at its best). Query frames
    parked on one reference frame (a still shot, a static scene) are one coincidence, not several."""
    if len(r) == 0:
        return 0.0
    order = np.lexsort((-score, r))
    first = np.r_[True, r[order][1:] != r[order][:-1]]
    return float(score[order][first].sum())


def null_weights(path: _Path, q: np.ndarray, r: np.ndarray, s: np.ndarray, step: float, p: AlignParams,
                 rated: bool) -> tuple[float, float]:  # fmt: skip
    """What the same alignment finds for the path's query span played backwards, against the path's reference
    range (+- `null_margin`): its weight, and its `distinct_weight`. That is what chance gives this query on this
    scene, with the order of the query frames (the one thing a copy must share with its source) destroyed: a
    static or repetitive scene aligns as well backwards as forwards; a copy of footage that changes does not."""
    q0, q1 = float(path.q[0]), float(path.q[-1])
    pick = (q >= q0 - 1e-6) & (q <= q1 + 1e-6)
    pick &= (r >= float(path.r.min()) - p.null_margin) & (r <= float(path.r.max()) + p.null_margin)
    if not pick.any():
        return 0.0, 0.0
    rq, rr, rs = q0 + q1 - q[pick], r[pick], s[pick]
    order = np.lexsort((-rs, rr, rq))
    rq, rr, rs = rq[order], rr[order], rs[order]
    _, nodes = _best_path(rq, rr, rs, np.ones(len(rq), dtype=bool), step, p, rated)
    if len(nodes) == 0:
        return 0.0, 0.0
    return float(rs[nodes].sum()), distinct_weight(rr[nodes], rs[nodes])


def required_excess(p: AlignParams, library_frames: int) -> float:
    """`min_excess`, raised by `excess_per_decade` for each tenfold of library size beyond `library_unit`."""
    return p.min_excess + p.excess_per_decade * max(0.0, float(np.log10(max(library_frames, 1) / p.library_unit)))


def _shifted(anchors: np.ndarray, times: np.ndarray, shift: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """For each anchor time, the indices of `times` (sorted) lying `shift` (min, max) seconds from it on either
    side, as a (k, width) index array and its validity mask (rows are padded to one width)."""
    lo = np.searchsorted(times, anchors - shift[1] - 1e-6, side="left")
    hi = np.searchsorted(times, anchors + shift[1] + 1e-6, side="right")
    width = max(int((hi - lo).max(initial=0)), 1)
    idx = lo[:, None] + np.arange(width)[None, :]
    valid = idx < hi[:, None]
    idx = np.minimum(idx, len(times) - 1)
    valid &= np.abs(times[idx] - anchors[:, None]) >= shift[0] - 1e-6
    return idx, valid


def unique_evidence(path: _Path, background: Background, p: AlignParams) -> float:
    """The part of a path's score that no time-shifted alternative explains: summed over its frames whose query
    frame matches no reference frame `unique_shift` away from its match, and whose reference frame matches no
    query frame that far away ("matches": scores `copy_similarity`, the frame match threshold), each frame's
    score less the best such alternative's. A frame with nothing that far on either side to compare with counts
    nothing: uniqueness unmeasured is not evidence."""
    if len(background.q_times) == 0 or len(background.r_times) == 0:
        return 0.0
    rows = np.searchsorted(background.q_times, path.q)
    cols = np.searchsorted(background.r_times, path.r)
    rows = np.minimum(rows, len(background.q_times) - 1)
    cols = np.minimum(cols, len(background.r_times) - 1)
    ref_idx, ref_ok = _shifted(path.r, background.r_times, p.unique_shift)  # same query frame, shifted reference
    qry_idx, qry_ok = _shifted(path.q, background.q_times, p.unique_shift)  # same reference frame, shifted query
    alt_ref = np.where(ref_ok, background.scores(rows[:, None], ref_idx), -np.inf).max(axis=1)
    alt_qry = np.where(qry_ok, background.scores(qry_idx, cols[:, None]), -np.inf).max(axis=1)
    best = np.maximum(alt_ref, alt_qry)
    unique = np.isfinite(best) & (best < p.copy_similarity)
    return float(np.clip(path.score - np.maximum(best, 0.0), 0.0, None)[unique].sum())


def shifted_weights(path: _Path, background: Background, step: float, p: AlignParams) -> tuple[float, float]:
    """The heaviest rigid time shift of the path within its reference (by `unique_shift`, in steps, either way):
    its weight and `distinct_weight`, counting the pairs that match (`copy_similarity` or more). Different moments
    of one still scene align with each other at any shift; a copy aligns at one."""
    rows = np.minimum(np.searchsorted(background.q_times, path.q), len(background.q_times) - 1)
    lo, hi = p.unique_shift
    shifts = np.arange(lo, hi + step / 2, step) if step > 0 else np.array([lo])
    best, best_distinct = 0.0, 0.0
    for shift in np.r_[-shifts, shifts]:
        target = path.r + shift
        cols = np.clip(np.searchsorted(background.r_times, target), 1, max(len(background.r_times) - 1, 1))
        cols = np.where(np.abs(background.r_times[cols - 1] - target) < np.abs(background.r_times[cols] - target),
                        cols - 1, cols)  # fmt: skip
        found = np.abs(background.r_times[cols] - target) <= step / 2 + 1e-6
        score = np.where(found, background.scores(rows, cols), 0.0)
        score = np.where(score >= p.copy_similarity, score, 0.0)
        best = max(best, float(score.sum()))
        best_distinct = max(best_distinct, distinct_weight(background.r_times[cols], score))
    return best, best_distinct


def significant(seg: Segment, path: _Path, q: np.ndarray, r: np.ndarray, s: np.ndarray, step: float,
                p: AlignParams, rated: bool, library_frames: int,
                background: Background | None = None) -> bool:  # fmt: skip
    """The reporting rule (see `AlignParams`): close enough on average, and evidence beyond what chance gives.

    Against the reversed-query null (and, given the dense `background`, the time-shifted one when heavier),
    evidence is counted two ways, and both must clear the margin: every matched query frame (`weight`), and each
    reference frame once (`distinct_weight`: query frames parked on one reference frame are one coincidence). Or
    the frames' evidence beyond every time-shifted alternative clears it (`unique_evidence`, given the
    `background`). A near-exact copy needs its distinct evidence alone to clear the margin. An image has no order
    to test and one frame to count: its closeness decides."""
    if seg.similarity < p.copy_similarity:
        return False
    if not rated:
        return True
    need = required_excess(p, library_frames)
    distinct = distinct_weight(path.r, path.score)
    if seg.similarity >= p.close_similarity:
        return distinct >= need
    null, null_distinct = null_weights(path, q, r, s, step, p, rated)
    if background is not None:
        shifted, shifted_distinct = shifted_weights(path, background, step, p)
        null, null_distinct = max(null, shifted), max(null_distinct, shifted_distinct)
    if float(path.score.sum()) - null >= need and distinct - null_distinct >= need:
        return True
    return background is not None and unique_evidence(path, background, p) >= need


def rate_consistent(segment: Segment, params: AlignParams) -> bool:
    """Whether a segment's final bounds keep the reference/query rate within [min_rate, max_rate], give or take
    `jitter` once (sampling: a short copy's bounds may each be off by a sample). Merging and clipping act after
    the chain rules, so the bounds themselves are checked: a copy cannot play seconds of input from an instant."""
    low = params.min_rate * segment.input_duration - params.jitter
    high = params.max_rate * segment.input_duration + params.jitter
    return low <= segment.ref_duration <= high


def _fitted(seg: Segment, path: _Path, p: AlignParams, q_step: float, q_duration: float, r_duration: float
            ) -> Segment:  # fmt: skip
    """The reported bounds of an accepted segment: its reference side from the line through its matches (least
    squares; rate 1 unless the matches depart from it by more than a step over their span, and kept within the
    rate bounds), not from its extreme matched frames. Both files are sampled on grids
    of their own, so each match's reference time is off by up to half a step, each way; the line averages that
    out (a 3 s copy 0.28 s into its reference is 0.5 or 0.0 s in at each frame, 0.28 s on the line), and it
    puts both ends on the same stretch of the copy (a query ending 0.07 s after its last sample copies 0.07 s
    more of the reference, not a whole step)."""
    q, r = path.q, path.r
    rate, span = 1.0, float(np.ptp(q))
    if span > 0:
        # A rate departs from 1 only by more than sampling alone explains: a step off at each end of the span.
        fit = float(np.clip(np.polyfit(q, r, 1)[0], p.min_rate, p.max_rate))
        rate = fit if abs(fit - 1.0) > 2 * q_step / span else 1.0
    offset = float(np.mean(r - rate * q))
    ref_start = max(offset + rate * seg.input_start, 0.0)
    ref_end = offset + rate * seg.input_end
    if r_duration > 0:
        ref_end = min(ref_end, r_duration)
    if ref_end <= ref_start:
        return seg
    return Segment(seg.input_start, seg.input_end, ref_start, ref_end, seg.similarity)


def align(
    q_times: np.ndarray,
    r_times: np.ndarray,
    scores: np.ndarray,
    *,
    query_units: np.ndarray,
    q_step: float,
    r_step: float,
    q_duration: float,
    r_duration: float,
    params: AlignParams | None = None,
    library_frames: int = 0,
    background: Background | None = None,
) -> list[Segment]:
    """Segments copied from one reference item, best first.

    `q_times`, `r_times`, `scores` (each (m,)) are candidate unit matches, score in [0, 1]. `query_units` are the
    times of every query unit that could have matched (the similarity's denominator); `q_step`/`r_step` the time
    one unit stands for (added to a segment's end); durations bound the segments. `background`, every unit pair's
    score, lets a segment show significance by uniqueness too (see `significant`).
    """
    p = params or AlignParams()
    if len(q_times) == 0:
        return []
    order = np.lexsort((-scores, r_times, q_times))
    q = np.asarray(q_times, np.float64)[order]
    r = np.asarray(r_times, np.float64)[order]
    s = np.asarray(scores, np.float64)[order]
    units = np.sort(np.asarray(query_units, np.float64))
    min_units = min(p.min_units, len(units))
    min_duration = min(p.min_duration, 0.5 * q_duration)
    unit_step = q_step if q_step > 0 else 1.0
    rated = q_step > 0 and r_step > 0  # an image has no time axis, so no rate

    alive = np.ones(len(q), dtype=bool)
    paths: list[_Path] = []
    while alive.any() and len(paths) < 4 * p.max_segments:
        weight, nodes = _best_path(q, r, s, alive, unit_step, p, rated)
        if len(nodes) == 0 or weight < p.min_similarity * min_units:
            break
        paths.append(_Path(q[nodes], r[nodes], s[nodes]))
        # Matches inside the path's span and near its reference range are explained by it (static shots match
        # several reference frames); elsewhere in the reference they may be another copy.
        pad = p.jitter + p.max_gap
        inside = (q >= q[nodes[0]]) & (q <= q[nodes[-1]])
        near = (r >= r[nodes].min() - pad) & (r <= r[nodes].max() + pad)
        alive &= ~(inside & near)
        alive[nodes] = False

    segments: list[Segment] = []
    for path in _merge(paths, p):
        q0, q1 = float(path.q[0]), float(path.q[-1])
        covered = np.count_nonzero((units >= q0 - 1e-6) & (units <= q1 + 1e-6))
        similarity = float(path.score.sum() / max(covered, len(path.q)))
        end_q = min(q1 + q_step, q_duration) if q_duration > 0 else q1 + q_step
        seg = Segment(
            input_start=q0,
            input_end=max(end_q, q0),
            ref_start=float(path.r.min()),
            ref_end=float(min(path.r.max() + r_step, r_duration) if r_duration > 0 else path.r.max() + r_step),
            similarity=min(similarity, 1.0),
        )
        if (
            len(path.q) >= min_units
            and seg.input_duration >= min_duration
            and seg.similarity >= p.min_similarity
            and (not rated or rate_consistent(seg, p))
            and significant(seg, path, q, r, s, unit_step, p, rated, library_frames, background)
        ):
            segments.append(_fitted(seg, path, p, q_step, q_duration, r_duration) if rated else seg)
    segments.sort(key=lambda x: (-x.similarity, x.input_start))
    return segments[: p.max_segments]
