"""From hash hits to time-aligned segments: Hough voting over (item, time offset), then runs of matches.

Both indexes (the fast inverted one and the brute-force reference) produce the same raw material, one row per
(query landmark, reference landmark) pair with equal hashes: the query landmark's index, the item, and the
offset `rel` = reference frame - query frame. A copy shows up as many hits on one (item, rel) bin (+-1 frame
of jitter); everything else is scattered. This module turns those rows into `ItemMatch`es, so that the two
indexes share the semantics and differ only in how they find the hits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.core import ItemMatch, Segment

from .params import FRAME_SECONDS, HOP, LIBRARY_FANOUT, N_FFT

# Acceptance. Unrelated music does share landmarks: one chord struck in both pieces matches a burst of them
# within a fraction of a second. So a segment needs matches spread over MIN_SPAN, enough of them, and a
# fair fraction of the query's landmarks over that span (a copy through 0 dB SNR noise keeps > 0.15).
MIN_VOTES = 8  # hits on one (item, offset +-1) bin before it is looked at
MIN_MATCHES = 10  # matched query landmarks a segment needs
MIN_SPAN = round(1.0 / FRAME_SECONDS)  # frames between its first and last matched anchor
MIN_RATIO = 0.1  # matched / the landmarks the item holds for the query's anchors over the segment
# The same, for a speed-scan verification, which looks each landmark up with dt - 1, dt, dt + 1 (`base`): three
# times the chance matches. Resampled copies score 100-260 matches at ratios 0.2-0.55 over 20 s there; chance
# alignments between unrelated pieces ~11 at 0.13.
PROBED_MIN_MATCHES = 15
PROBED_MIN_RATIO = 0.15
OFFSET_TOL = 1  # frames of jitter accepted around a bin's offset
SUPPRESS = 4  # frames: weaker bins this close to an accepted one (same item) are the same alignment
MAX_PEAKS = 64  # alignments examined per query and speed hypothesis
MAX_GAP = round(3.0 / FRAME_SECONDS)  # a longer stretch without a match ends a segment
# Significance. A few seconds of music are no copy: a chord progression, a motif, a drum loop or a speaker's
# phrasing recurs across one composer's or one speaker's recordings, and aligns a burst of landmarks that no chance
# model of hashes explains away (such slices, 2-3.5 s long at similarity 0.5-0.86, were the only wrong-item reports
# on real albums). So a slice must span MIN_SECONDS of the upload (segments of one alignment split by a stretch
# of weak evidence are joined first, see `resolve`), or SHORT_SHARE of an upload too short for that.
MIN_SECONDS = 5.0
SHORT_SHARE = 0.8
# Chance alignments. Landmark i (hash posted c_i times in a library of L frames) hits a given (item, offset +-1)
# bin by chance with probability ~ 3 c_i / L, so the matches a segment's span collects at one offset by chance are
# Poisson with mean lam = sum of 3 c_i / L over the span's query landmarks; a search tries ~L / 3 offsets under
# each hypothesis. A segment is reported only if the expected number of such chance segments, trials * P(X >= n),
# is below ALPHA: the matches needed grow with the library and with how common the query's landmarks are.
ALPHA = 1e-3
# Segments of one item on one line (same speed, offsets agreeing within JOIN_TOL s) with at most JOIN_GAP s
# between them are one copy whose middle was masked (noise, a quiet passage, a voice over): joined.
JOIN_GAP = 10.0
JOIN_TOL = 0.25
# Extension. MIN_MATCHES and MIN_SPAN keep a chance burst from founding an alignment; once a run of an alignment
# is accepted, its offset is no longer a free parameter, so another run of that same (item, offset) bin within
# JOIN_GAP s of it is part of the copy if its matches are significant for the few runs tested there (trials = the
# alignment's runs, not the library's bins), as dense as any segment (min_ratio), and come from more than one
# anchor peak (> LIBRARY_FANOUT matches: one peak's landmarks are not independent). Speech through a room loses most
# landmarks of a phrase or two: without this, a 20 s copy was reported from 7 s on (its first 2 s: 6 matches,
# chance expectation 1e-4). It only widens accepted segments: it never reports a query or an item on its own.
EXTEND_MIN_MATCHES = LIBRARY_FANOUT + 1
# raw match ratio -> similarity = 1 - exp(-raw / CALIBRATION). Measured raw ratios on 5 s excerpts: clean or
# MP3 64k 0.55-0.87, 10 dB SNR noise + MP3 64k 0.3-0.7, 0 dB SNR + MP3 32k ~0.2-0.4. So a clean copy scores
# ~0.99, a copy through 10 dB of noise >= 0.85 (above MPS's default 0.8 threshold), one through 0 dB ~0.75,
# and the weakest segment accepted (MIN_RATIO) 0.49.
CALIBRATION = 0.15
_CENTRE = N_FFT / (2 * HOP)  # a frame's energy is centred half a window after its start


def similarity_from_ratio(raw: float) -> float:
    return float(1.0 - np.exp(-raw / CALIBRATION))


@dataclass(frozen=True, slots=True)
class QueryLandmarks:
    """The query side of a search under one playback-speed hypothesis.

    `times` are anchor frames and `ends` anchor + dt frames, both in the reference's time base (the query's
    frames multiplied by `speed`); `speed` maps them back to the query's own seconds. `min_matches` and
    `min_ratio` are what a segment needs (stricter for probed lookups).
    """

    times: np.ndarray
    ends: np.ndarray
    duration: float
    speed: float = 1.0
    min_matches: int = MIN_MATCHES
    min_ratio: float = MIN_RATIO
    chance: np.ndarray | None = None  # per landmark: chance of a hit in one (item, offset +-1) bin
    trials: float = 1.0  # (item, offset) bins and hypotheses a search tries
    weight: np.ndarray | None = None  # per landmark: its share of the ratio's denominator (None: 1 each)


def log_poisson_tail(n: int, lam: float) -> float:
    """An upper bound of log P(X >= n) for X ~ Poisson(lam): the first term of the tail over (1 - lam / (n + 1))."""
    if n <= 0:
        return 0.0
    if lam <= 0.0:
        return -math.inf
    if lam >= n + 1:
        return 0.0
    return n * math.log(lam) - lam - math.lgamma(n + 1) - math.log1p(-lam / (n + 1))


def significant(n: int, lam: float, trials: float) -> bool:
    """Would `n` matches at one offset, `lam` expected there by chance, arise by chance in fewer than ALPHA of
    searches over `trials` bins?"""
    return log_poisson_tail(n, lam) + math.log(max(trials, 1.0)) <= math.log(ALPHA)


@dataclass(frozen=True, slots=True)
class Candidate:
    item_id: int
    matches: int
    segment: Segment
    speed: float = 1.0  # reference seconds per query second
    anchors: int = 0  # distinct query frames among its matches (0: unknown, the segment is not widened)
    ref_duration: float = math.inf  # of its item, the bound a widened segment keeps to


def candidates_from_hits(
    query: QueryLandmarks,
    q_idx: np.ndarray,
    item: np.ndarray,
    rel: np.ndarray,
    durations: dict[int, float],
) -> list[Candidate]:
    """Segments supported by the hits, before overlapping ones are resolved (see `resolve`)."""
    if q_idx.size == 0:
        return []
    q_idx, item, rel = q_idx.astype(np.int64), item.astype(np.int64), rel.astype(np.int64)
    order = np.lexsort((q_idx, rel, item))
    q_idx, item, rel = q_idx[order], item[order], rel[order]
    dup = np.zeros(q_idx.size, bool)
    dup[1:] = (q_idx[1:] == q_idx[:-1]) & (rel[1:] == rel[:-1]) & (item[1:] == item[:-1])
    q_idx, item, rel = q_idx[~dup], item[~dup], rel[~dup]

    # Bins: runs of equal (item, rel); score = own count + the two neighbouring offsets' counts.
    new_bin = np.ones(item.size, bool)
    new_bin[1:] = (item[1:] != item[:-1]) | (rel[1:] != rel[:-1])
    starts = np.flatnonzero(new_bin)
    ends = np.append(starts[1:], item.size)
    b_item, b_rel, b_count = item[starts], rel[starts], ends - starts
    score = b_count.copy()
    nxt = (b_item[1:] == b_item[:-1]) & (b_rel[1:] == b_rel[:-1] + 1)
    score[:-1] += np.where(nxt, b_count[1:], 0)
    score[1:] += np.where(nxt, b_count[:-1], 0)
    cand = np.flatnonzero(score >= MIN_VOTES)
    if cand.size == 0:
        return []
    cand = cand[np.lexsort((b_rel[cand], b_item[cand], -score[cand]))]

    peaks: list[tuple[int, int]] = []
    for b in cand.tolist():
        it, r = int(b_item[b]), int(b_rel[b])
        if any(pi == it and abs(pr - r) <= SUPPRESS for pi, pr in peaks):
            continue
        peaks.append((it, r))
        if len(peaks) >= MAX_PEAKS:
            break

    by_time = np.argsort(query.times, kind="stable")
    q_sorted = query.times[by_time]
    chance = np.zeros(q_sorted.size + 1)  # cumulative chance hits along query time
    if query.chance is not None:
        np.cumsum(query.chance[by_time], out=chance[1:])
    weight = np.arange(q_sorted.size + 1, dtype=np.float64)  # cumulative denominator along query time
    if query.weight is not None:
        weight[0] = 0.0
        np.cumsum(query.weight[by_time], out=weight[1:])
    out: list[Candidate] = []
    for it, r in peaks:
        i_lo, i_hi = np.searchsorted(b_item, it, "left"), np.searchsorted(b_item, it, "right")
        lo_b = i_lo + np.searchsorted(b_rel[i_lo:i_hi], r - OFFSET_TOL, "left")
        hi_b = i_lo + np.searchsorted(b_rel[i_lo:i_hi], r + OFFSET_TOL, "right")
        sel = slice(int(starts[lo_b]), int(ends[hi_b - 1]))
        out.extend(_runs(query, q_sorted, chance, weight, q_idx[sel], rel[sel], it, durations.get(it, np.inf)))
    return out


def _runs(
    query: QueryLandmarks,
    q_sorted: np.ndarray,
    chance: np.ndarray,
    weight: np.ndarray,
    q_idx: np.ndarray,
    rel: np.ndarray,
    item_id: int,
    ref_duration: float,
) -> list[Candidate]:
    """Split one alignment's matches into runs without long gaps; each good run is a segment, widened over the
    weaker runs next to it (`_extend_runs`)."""
    idx, first = np.unique(q_idx, return_index=True)  # a landmark may hit at two adjacent offsets: count once
    rel = rel[first]
    t = query.times[idx].astype(np.int64)
    order = np.argsort(t, kind="stable")
    idx, t, rel = idx[order], t[order], rel[order]
    cuts = np.flatnonzero(np.diff(t) > MAX_GAP) + 1
    runs = np.split(np.arange(t.size), cuts)
    strong: list[Candidate | None] = []  # per run: its segment if it stands on its own
    weak: list[Candidate | None] = []  # per run: its segment if it may only extend a neighbour
    for run in runs:
        n = run.size
        t0, t1 = int(t[run[0]]), int(t[run[-1]])
        lo, hi = int(np.searchsorted(q_sorted, t0, side="left")), int(np.searchsorted(q_sorted, t1, side="right"))
        raw = min(1.0, n / max(float(weight[hi] - weight[lo]), 1.0))
        lam = float(chance[hi] - chance[lo])
        dense = raw >= query.min_ratio
        alone = dense and n >= query.min_matches and t1 - t0 >= MIN_SPAN
        alone = alone and (query.chance is None or significant(n, lam, query.trials))
        extends = dense and not alone and query.chance is not None and n >= EXTEND_MIN_MATCHES
        extends = extends and significant(n, lam, len(runs))
        seg = _segment(query, idx[run], rel[run], t0, raw, item_id, ref_duration) if alone or extends else None
        strong.append(seg if alone else None)
        weak.append(seg if extends else None)
    return _extend_runs(strong, weak)


def _segment(
    query: QueryLandmarks, idx: np.ndarray, rel: np.ndarray, t0: int, raw: float, item_id: int, ref_duration: float
) -> Candidate | None:
    """One run's matches (query landmark indices `idx`, offsets `rel`; first anchor `t0`) as a segment."""
    r = float(np.median(rel))
    end = float(query.ends[idx].max())
    s = query.speed
    # Seconds; the end is the last matched landmark's target peak. Frames are centred half a window in.
    in_start, ref_start = (t0 + _CENTRE) * FRAME_SECONDS / s, (t0 + _CENTRE + r) * FRAME_SECONDS
    in_end, ref_end = (end + _CENTRE) * FRAME_SECONDS / s, (end + _CENTRE + r) * FRAME_SECONDS
    # Pull the end back inside both files, by the same amount of (reference) time on both sides.
    cut = max(0.0, (in_end - query.duration) * s, ref_end - ref_duration)
    in_end, ref_end = in_end - cut / s, ref_end - cut
    if in_end <= in_start or ref_end <= ref_start:
        return None
    seg = Segment(
        round(in_start, 3), round(in_end, 3), round(ref_start, 3), round(ref_end, 3), similarity_from_ratio(raw)
    )
    return Candidate(item_id, idx.size, seg, s, int(np.unique(query.times[idx]).size), ref_duration)


def _extend_runs(strong: list[Candidate | None], weak: list[Candidate | None]) -> list[Candidate]:
    """The accepted runs of one alignment (in time order), widened over the weak runs near them (see
    EXTEND_MIN_MATCHES): runs chained by gaps of at most JOIN_GAP s form a cluster; in a cluster holding accepted
    runs, each weak run joins the accepted run before it (the first accepted run, for those before it); clusters
    of weak runs alone are dropped."""
    clusters: list[list[tuple[bool, Candidate]]] = []
    for s, w in zip(strong, weak, strict=True):
        c = s or w
        if c is None:
            continue
        if clusters and c.segment.input_start - clusters[-1][-1][1].segment.input_end <= JOIN_GAP:
            clusters[-1].append((s is not None, c))
        else:
            clusters.append([(s is not None, c)])
    out: list[Candidate] = []
    for cluster in clusters:
        accepted = [k for k, (is_strong, _) in enumerate(cluster) if is_strong]
        if not accepted:
            continue
        grown: Candidate | None = None
        for k, (is_strong, c) in enumerate(cluster):
            if k < accepted[0]:
                continue  # folded in below
            if is_strong:
                if grown is not None:
                    out.append(grown)
                grown = c
                if k == accepted[0]:
                    for _, before in reversed(cluster[:k]):
                        grown = _union(before, grown)
            elif grown is not None:
                grown = _union(grown, c)
        if grown is not None:
            out.append(grown)
    return out


def resolve(candidates: list[Candidate], max_items: int, query_duration: float = np.inf) -> list[ItemMatch]:
    """Keep the best of overlapping segments of one item (e.g. a repeated chorus, or two speed hypotheses), join
    the collinear ones, drop those too short to be a copy (`MIN_SECONDS`), then group by item, best items first."""
    ranked = sorted(candidates, key=lambda c: (-c.matches, c.item_id, c.segment.input_start, c.segment.ref_start))
    kept: dict[int, list[Candidate]] = {}
    for c in ranked:
        same = kept.setdefault(c.item_id, [])
        over = [j for j, k in enumerate(same) if _overlap(c.segment, k.segment) > 0.5]
        if not over:
            same.append(c)
        elif len(over) == 1 and _on_line(same[over[0]], c):
            # Another view of the same alignment (another hypothesis, plain or probed lookups) that reaches further:
            # the copy spans both.
            same[over[0]] = _extend(same[over[0]], c)
    shortest = min(MIN_SECONDS, SHORT_SHARE * query_duration)
    for item_id, cs in kept.items():
        kept[item_id] = [c for c in join(cs) if c.segment.input_duration >= shortest]
    items = sorted(((i, cs) for i, cs in kept.items() if cs), key=lambda kv: (-sum(c.matches for c in kv[1]), kv[0]))
    out: list[ItemMatch] = []
    for item_id, cs in items[:max_items]:
        segs = sorted((widen(c, query_duration) for c in cs), key=lambda s: (-s.similarity, s.input_start))
        out.append(ItemMatch(item_id=item_id, segments=segs))
    return out


def widen(c: Candidate, query_duration: float = math.inf) -> Segment:
    """The segment with each end moved out by its matches' mean spacing, input_duration / anchors (kept inside
    both files, by the same reference time on both sides).

    A segment runs from its first matched anchor to its last matched target peak, and the copy starts before the
    first match and ends after the last: always inside the truth, by 0.16 s per end on real music and 0.3-0.4 s on
    speech (`scripts/eval --real`). For n points spread uniformly over [a, b], min - (max - min) / (n - 1) is the
    unbiased estimate of a (and symmetrically of b); the mean spacing is that correction. Applied only once a
    segment is accepted (after MIN_SECONDS), so it changes where a copy is placed, never whether one is reported.
    """
    seg = c.segment
    if c.anchors < 2:
        return seg
    pad = seg.input_duration / c.anchors
    left = max(0.0, min(pad, seg.input_start, seg.ref_start / c.speed))
    right = max(0.0, min(pad, query_duration - seg.input_end, (c.ref_duration - seg.ref_end) / c.speed))
    return Segment(
        max(0.0, round(seg.input_start - left, 3)),
        min(query_duration, round(seg.input_end + right, 3)),
        max(0.0, round(seg.ref_start - left * c.speed, 3)),
        min(c.ref_duration, round(seg.ref_end + right * c.speed, 3)),
        seg.similarity,
    )


def join(cs: list[Candidate]) -> list[Candidate]:
    """Join consecutive segments of one item that lie on one line, across gaps of up to JOIN_GAP seconds (`cs`: one
    item's, none overlapping another by more than half)."""
    out: list[Candidate] = []
    for c in sorted(cs, key=lambda c: (c.segment.input_start, c.segment.ref_start)):
        if out and _collinear(out[-1], c):
            out[-1] = _union(out[-1], c)
        else:
            out.append(c)
    return out


def join_alignments(cs: list[Candidate]) -> list[Candidate]:
    """`join` per item over one hypothesis's segments: a copy cut by a stretch of weak evidence, or shifted a
    little by a few dropped packets, is one candidate (with all its matches) before candidates compete."""
    by_item: dict[int, list[Candidate]] = {}
    for c in cs:
        by_item.setdefault(c.item_id, []).append(c)
    return [j for item_cs in by_item.values() for j in join(item_cs)]


def _collinear(a: Candidate, b: Candidate) -> bool:
    sa, sb = a.segment, b.segment
    if abs(a.speed - b.speed) > 0.003 or sb.input_start - sa.input_end > JOIN_GAP:
        return False
    if sb.input_start < sa.input_end - 0.5 * min(sa.input_duration, sb.input_duration):
        return False  # another view of the same passage (e.g. the neighbouring offset), not its continuation
    expected = sa.ref_start + (sb.input_start - sa.input_start) * a.speed
    return abs(sb.ref_start - expected) <= JOIN_TOL


def _on_line(a: Candidate, b: Candidate) -> bool:
    expected = a.segment.ref_start + (b.segment.input_start - a.segment.input_start) * a.speed
    return abs(a.speed - b.speed) <= 0.003 and abs(b.segment.ref_start - expected) <= JOIN_TOL


def _extend(a: Candidate, b: Candidate) -> Candidate:
    """`a` (the stronger) over the union of both spans; its own matches and similarity."""
    sa, sb = a.segment, b.segment
    if sb.input_start >= sa.input_start and sb.input_end <= sa.input_end:
        return a
    seg = Segment(
        min(sa.input_start, sb.input_start),
        max(sa.input_end, sb.input_end),
        min(sa.ref_start, sb.ref_start),
        max(sa.ref_end, sb.ref_end),
        sa.similarity,
    )
    return Candidate(a.item_id, a.matches, seg, a.speed, a.anchors, a.ref_duration)


def _union(a: Candidate, b: Candidate) -> Candidate:
    """One segment over both; its similarity the mean of theirs weighted by their matches."""
    sa, sb = a.segment, b.segment
    sim = (sa.similarity * a.matches + sb.similarity * b.matches) / max(a.matches + b.matches, 1)
    seg = Segment(sa.input_start, max(sa.input_end, sb.input_end), sa.ref_start, max(sa.ref_end, sb.ref_end), sim)
    best = a if a.matches >= b.matches else b
    return Candidate(a.item_id, a.matches + b.matches, seg, best.speed, a.anchors + b.anchors, a.ref_duration)


def _overlap(a: Segment, b: Segment) -> float:
    """Overlap of two segments' query ranges, as a fraction of the shorter one."""
    inter = min(a.input_end, b.input_end) - max(a.input_start, b.input_start)
    shorter = min(a.input_duration, b.input_duration)
    return inter / shorter if shorter > 0 else 0.0
