"""What the fast and the reference audio indexes share: the search driver over playback-speed hypotheses.

A copy played faster or slower (resampled: pitch and tempo move together, as in "nightcore" or "slowed"
uploads) hashes differently, and one hypothesis tolerates only about +-0.3 % (a hash bin is 7.8 Hz: 0.3 % of
2 kHz is 6 Hz). A search therefore runs in three stages:

1. Full search at each of `speeds` (default: 1.0, the query as is): every query landmark, every hit.
2. Speed scan over `scan` (default 0.92-1.08 in 0.5 % steps, those already searched in full left out), and over
   tempo-only and pitch-only factors (`TEMPO_SCAN`, `PITCH_SCAN`). At each
   scan speed the query's peaks are re-hashed, and only its *rarest* landmarks are looked up, within a budget of
   SCAN_BUDGET postings per landmark: posting lists are very skewed (music piles its energy on a few notes and
   intervals), so the rarest ~80 % of the landmarks cost about 1 % of the hits. Hits vote per (scan speed, item,
   window of 2 * SCAN_RADIUS + 1 offsets): a window absorbs the drift of a speed up to half a step off. The best
   windows give candidate (item, speed) pairs, the speed refined by a least-squares fit of offset against query
   time over the window's hits (a residual speed error is a slope).
3. Verification of up to SCAN_MAX_ITEMS candidates, each on its own: every query landmark, looked up in the
   candidate item only (cheap: a binary search in each posting list), each also with dt +-1, at the refined
   speed and its neighbours VERIFY_STEP apart; the speed whose segments hold the most matches wins (a hash bin
   at 3 kHz is 0.25 %: a speed 0.1 % off already loses many high anchors). A resampled copy's peaks come back
   slightly off in time (+-0.7 frames), which flips the rounded dt of many landmarks; the neighbouring dt values
   win back about twice the matches (hence steadier boundaries and similarity). The scan only proposes: every
   reported segment passes the acceptance rules of `alignment` (stricter for probed hits) on these hits.

Every stage sees the index only through `_hits` and `_counts`, whose answers the fast index and the brute-force
reference give identically (the fast index's pre-filter keeps every hit of a window that can reach the vote
threshold), so the two indexes agree on speed-changed queries too.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from engine.core import ItemMatch, ModalityIndex

from .alignment import (
    MIN_MATCHES,
    MIN_RATIO,
    MIN_SECONDS,
    MIN_VOTES,
    OFFSET_TOL,
    PROBED_MIN_MATCHES,
    PROBED_MIN_RATIO,
    SHORT_SHARE,
    Candidate,
    QueryLandmarks,
    candidates_from_hits,
    join_alignments,
    resolve,
)
from .fingerprint import AudioFingerprint
from .landmarks import landmarks_many
from .params import DF_BITS, DT_BITS, DT_MAX, F1_BITS, FRAME_SECONDS, LIBRARY_FANOUT

# Speeds searched in full. 1.0 alone keeps the cost of the common case (an unmodified copy) unchanged.
DEFAULT_SPEEDS: tuple[float, ...] = (1.0,)
# The old brute-force alternative: 13 full searches over +-3 % (13x the cost; the scan does better, cheaper).
SPEED_GRID: tuple[float, ...] = tuple(round(1.0 + 0.005 * k, 3) for k in range(-6, 7))
# A hypothesis maps the query's peaks onto the reference: (time scale, frequency scale). Three families:
# resampling ("speed", pitch and tempo together: (s, 1/s)), tempo alone (time stretched, pitch kept: (s, 1)) and
# pitch alone (frequencies shifted, time kept: (1, 1/s)). s is how many times faster the copy plays.
Scale = tuple[float, float]
SPEED, TEMPO, PITCH = "speed", "tempo", "pitch"


def scale_of(family: str, s: float) -> Scale:
    if family == SPEED:
        return (s, 1.0 / s)
    if family == TEMPO:
        return (s, 1.0)
    return (1.0, 1.0 / s)


# Speed scan: +-8 % in 0.5 % steps. A quarter step (0.125 %) off still keeps about half a copy's matching hashes,
# half a step (0.25 %) the landmarks below ~1.5 kHz: enough to propose, and verification searches 0.1 % steps.
# (0.25 % steps proposed a little more surely, at twice the cost: the budget went to the tempo and pitch scans.)
SCAN_STEP = 0.005
SCAN_SPEEDS: tuple[float, ...] = tuple(round(1.0 + SCAN_STEP * k, 4) for k in range(-16, 17))
# Tempo alone (time stretching, e.g. WSOLA/atempo) and pitch alone (a pitch shifter) over +-6 %. A time error
# only drifts the offsets (0.5 % over 10 s: 3 frames, inside a vote window) and bends dt by a fraction of a
# frame: 1 % steps. A frequency error moves every hash bin (one bin is 0.25 % at 3 kHz), but the landmarks below
# ~1.5 kHz survive 0.25 %: 0.5 % steps, then verification in 0.1 % steps. (The scan only proposes.)
TEMPO_STEP = 0.01
PITCH_STEP = SCAN_STEP
TEMPO_SCAN: tuple[float, ...] = tuple(round(1.0 + TEMPO_STEP * k, 4) for k in range(-6, 7) if k)
PITCH_SCAN: tuple[float, ...] = tuple(round(1.0 + PITCH_STEP * k, 4) for k in range(-12, 13) if k)
STEPS = {SPEED: SCAN_STEP, TEMPO: TEMPO_STEP, PITCH: PITCH_STEP}
# The scan hashes each anchor's first SCAN_FANOUT targets, not FANOUT: its budget goes to the rarest landmarks, and a
# query's third landmark of an anchor rarely has a counterpart in an index holding one (LIBRARY_FANOUT).
SCAN_FANOUT = LIBRARY_FANOUT + 1
SCAN_BUDGET = 16  # postings per query landmark looked up at each scan speed, rarest landmarks first
TEMPO_BUDGET = 4  # the same at each tempo-only factor (see `_scan`)
# Postings a full search looks up per query landmark, on average: at most that many in all, rarest landmarks first.
# A landmark's evidence falls as its hash's postings grow (its chance rate is postings / library) while its cost
# grows with them, and a query's landmarks hit the common hashes most (size-biased). Measured on a 60 s query
# (~1,500 landmarks, 3.0 M postings at 1,000 h, 30 M at 10,000 h): the budget keeps 88 % of its landmarks at
# 1,000 h and 52 % at 10,000 h, and 99 % of its evidence (sum of 1 / postings) at both; looking up all 30 M took
# 20 s, the pre-filter's table (2^22 cells) passing nearly every chance hit on to alignment.
FULL_BUDGET = 640
SCAN_RADIUS = 4  # frames each side of a vote window: 0.25 % (half a step) of drift over 30 s of query is 4.7 frames
SCAN_MIN_VOTES = 4  # hits a window needs to propose its speed (scaled with the index's one landmark an anchor)
# Tempo-only hypotheses near 1 share most short-dt landmarks with the plain search, and both warps see the
# recurring chords of real albums: they propose far more chance windows, each costing a verification. Their windows
# need more votes. (Both thresholds were 6 and 12 when the index held three landmarks an anchor: at a third of the
# postings, a 20 s tempo-changed copy in a 1,000 h library fell below them 6 times in 60.)
WARP_MIN_VOTES = 6
SCAN_CANDIDATES = 64  # best windows (one per scan speed and item) examined ...
SCAN_MAX_ITEMS = 8  # ... for the (item, refined speed) candidates verified
VERIFY_STEP = 0.001  # speeds verified around a refined one, this far apart (twice that for tempo) ...
VERIFY_REACH = 3  # ... this many each side: +-0.3 %, what a window left unrefined can be off by
# A full search tolerates about +-0.3 %: an item it found within that of its speed is not verified again (an
# unmodified copy is reported as the plain search sees it).
FULL_REACH = 0.003
# An item's windows within SAME_COPY of a picked hypothesis (both scales), or with under 1/ECHO of its votes, are
# the same copy seen under another hypothesis (landmarks at low frequencies and short dt tolerate a few % of error).
SAME_COPY = 0.02
ECHO = 4
# A scan window whose hits lie (this share of them) within segments a full search found of the same item is that
# find seen under a neighbouring hypothesis (a tempo 3 % off still shares every short-dt landmark): not verified.
EXPLAINED = 0.8
_FIT_MIN = 12  # hits below which a window's speed is not refined
_FIT_SE = 0.0004  # standard error of the fitted slope above which the scan speed is kept as is
_GROUP_SHIFT = 46  # scan speed index << this, added to offsets: one pre-filter pass for every scan speed
_DT_MASK = (1 << DT_BITS) - 1
_REL_BIAS = 1 << 39  # offsets fit in 40 bits (+-270 years of frames) in the packed vote keys


class AudioIndexBase(ModalityIndex[AudioFingerprint]):
    """Searches by looking up hits for each speed hypothesis and aligning them (`alignment`)."""

    def __init__(
        self,
        speeds: tuple[float, ...] = DEFAULT_SPEEDS,
        scan: tuple[float, ...] = SCAN_SPEEDS,
        *,
        tempo: tuple[float, ...] | None = None,
        pitch: tuple[float, ...] | None = None,
    ) -> None:
        """`speeds`: resampling speeds searched in full; `scan`: resampling speeds the scan tries; `tempo`, `pitch`:
        tempo-only and pitch-only factors it tries too (None: TEMPO_SCAN, PITCH_SCAN, or none when `scan` is empty,
        so that `scan=()` still turns every scan off)."""
        self.speeds = speeds
        self.scan = scan
        self.tempo = (TEMPO_SCAN if scan else ()) if tempo is None else tempo
        self.pitch = (PITCH_SCAN if scan else ()) if pitch is None else pitch

    def _hypotheses(self) -> list[tuple[str, float]]:
        """(family, factor) of every scan hypothesis, the full searches' own left out."""
        full = {scale_of(SPEED, s) for s in self.speeds}
        out = [(SPEED, s) for s in self.scan if s not in self.speeds]
        out += [(TEMPO, s) for s in self.tempo] + [(PITCH, s) for s in self.pitch]
        return [(f, s) for f, s in out if scale_of(f, s) not in full]

    @abstractmethod
    def _hits(
        self,
        hashes: np.ndarray,
        times: np.ndarray,
        groups: np.ndarray | None = None,
        *,
        min_votes: int = MIN_VOTES,
        radius: int = OFFSET_TOL,
        items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query landmark index, item id, reference frame - query frame) for every equal-hash pair.

        May leave out hits that cannot take part in `min_votes` hits of one `groups` value and item within a
        window of 2 * `radius` + 1 consecutive offsets (a pre-filter; the reference returns every hit). With
        `items`: every hit in those (live) items, and only those.
        """

    @abstractmethod
    def _counts(self, hashes: np.ndarray) -> np.ndarray:
        """Postings per hash among the items held (removed items no longer count, so a live index and one rebuilt
        from the same items agree). A rarity measure: it decides which query landmarks the speed scan looks up."""

    @abstractmethod
    def _durations(self, item_ids: np.ndarray) -> dict[int, float]: ...

    @abstractmethod
    def _library_seconds(self) -> float:
        """Total duration of the items held: the number of offsets a chance alignment could fall on."""

    def add_many(self, items: list[tuple[int, AudioFingerprint]]) -> None:
        for item_id, fp in items:
            self.add(item_id, fp)

    def search(self, query: AudioFingerprint, *, max_items: int = 20) -> list[ItemMatch]:
        candidates: list[Candidate] = []
        found: list[tuple[int, Scale]] = []  # (item, scale) the full searches found
        for speed in self.speeds:
            full = self._search_at(query, scale_of(SPEED, speed))
            candidates += full
            found += [(c.item_id, scale_of(SPEED, speed)) for c in full]
        shortest = min(MIN_SECONDS, SHORT_SHARE * query.duration)
        for item_id, family, factor, seconds in self._scan(query):
            scale = scale_of(family, factor)
            spans = [
                (c.segment.input_start, c.segment.input_end)
                for c in candidates
                if c.item_id == item_id and c.segment.input_duration >= shortest  # a find, not a fragment
            ]
            inside = sum(int(((seconds >= a) & (seconds <= b)).sum()) for a, b in spans)
            if inside >= EXPLAINED * seconds.size:
                continue  # the window's hits lie in what a full search already aligned: a neighbouring hypothesis
            if not any(it == item_id and _near(scale, s, FULL_REACH) for it, s in found):
                # A full search's find nearby competes too, on equal terms (probed lookups find more matches: a
                # few % off, they can outnumber a plain search's at the right scale).
                rivals = [s for it, s in found if it == item_id and _near(scale, s, SAME_COPY)]
                candidates += self._verify(query, item_id, family, factor, rivals)
        return resolve(candidates, max_items, query.duration)

    def _verify(
        self, query: AudioFingerprint, item_id: int, family: str, factor: float, rivals: list[Scale] | None = None
    ) -> list[Candidate]:
        """Segments of `item_id` under the hypothesis near (`family`, `factor`), or one of `rivals`, that aligns
        the most matches."""
        items = np.array([item_id], np.int64)
        step = VERIFY_STEP * STEPS[family] / SCAN_STEP
        best: list[Candidate] = []
        most = 0
        near = sorted(range(-VERIFY_REACH, VERIFY_REACH + 1), key=abs)  # ties: the nearest to `factor`
        steps = [round(factor * (1.0 + k * step), 5) for k in near]
        best_factor = None
        for k, scale in enumerate([*(rivals or []), *(scale_of(family, f) for f in steps)]):
            segments = self._search_at(query, scale, items)
            matches = sum(c.matches for c in segments)
            if matches > most:
                best, most = segments, matches
                best_factor = steps[k - len(rivals or [])] if k >= len(rivals or []) else None
        if best_factor is not None:  # then half a step each side of the best
            for f in (best_factor * (1.0 - step / 2), best_factor * (1.0 + step / 2)):
                segments = self._search_at(query, scale_of(family, round(f, 5)), items)
                matches = sum(c.matches for c in segments)
                if matches > most:
                    best, most = segments, matches
        return best

    def _search_at(self, query: AudioFingerprint, scale: Scale, items: np.ndarray | None = None) -> list[Candidate]:
        """Search under one (time, frequency) scale hypothesis: in full, or (verification) in `items` with dt
        probes."""
        hashes, times = query.landmarks_at(*scale)
        if hashes.size == 0:
            return []
        weight = _library_share(hashes, times)
        if items is None:
            counts = self._counts(hashes).astype(np.float64)
            budget = FULL_BUDGET * counts.size
            if counts.sum() > budget:  # the rarest landmarks, in query order (see FULL_BUDGET)
                keep = _rarest(counts, np.zeros(counts.size, np.int64), np.array([budget], np.int64))
                hashes, times, counts, weight = hashes[keep], times[keep], counts[keep], weight[keep]
            q_idx, item, rel = self._hits(hashes, times)
            if q_idx.size == 0:
                return []
        else:
            probes, owner = _dt_probes(hashes)
            q_idx, item, rel = self._hits(probes, times[owner], items=items)
            q_idx = owner[q_idx]
            if q_idx.size == 0:
                return []
        # Chance hits of each landmark in one (item, offset +-OFFSET_TOL) bin, and the bins a search tries: every
        # offset of the library under every hypothesis (the full ones, the scan's, a verification's).
        library = max(self._library_seconds() / FRAME_SECONDS, 1.0)
        bins = library / (2 * OFFSET_TOL + 1)
        hypotheses = len(self.speeds) + len(self._hypotheses()) + 2 * VERIFY_REACH + 1
        if items is not None:
            # A verification sees every hit in its item: how often each landmark's probes occur there, over the
            # item's own offsets, is the item's chance rate (no library-wide count needed).
            counts = np.bincount(q_idx, minlength=hashes.size).astype(np.float64)
            own = max(sum(self._durations(items).values()) / FRAME_SECONDS, 1.0)
            counts *= library / own
        ends = times.astype(np.int64) + (hashes & _DT_MASK)
        strict = items is not None  # probes triple the chance matches
        ql = QueryLandmarks(
            times=times,
            ends=ends,
            duration=query.duration,
            speed=scale[0],
            min_matches=PROBED_MIN_MATCHES if strict else MIN_MATCHES,
            min_ratio=PROBED_MIN_RATIO if strict else MIN_RATIO,
            chance=counts / bins,
            trials=bins * hypotheses,
            weight=weight,
        )
        found = candidates_from_hits(ql, q_idx, item, rel, self._durations(np.unique(item)))
        # A full search's segments of one line are joined before they compete (a copy cut in two by a few dropped
        # packets is one candidate); a verification's are not: its probed lookups would inflate a slightly wrong
        # speed's joined total past the right one's.
        return found if strict else join_alignments(found)

    # --- speed scan -------------------------------------------------------------------------------------

    def _scan(self, query: AudioFingerprint) -> list[tuple[int, str, float, np.ndarray]]:
        """(item, family, refined factor, query seconds of the window's hits) the cheap scan sees copied, best
        first."""
        grid = self._hypotheses()
        if not grid:
            return []
        per_scale = landmarks_many(query.peak_t, query.peak_f, [scale_of(f, s) for f, s in grid], SCAN_FANOUT)
        sizes = np.array([h.size for h, _ in per_scale], np.int64)
        if not sizes.any():
            return []
        hashes = np.concatenate([h for h, _ in per_scale])
        times = np.concatenate([t for _, t in per_scale]).astype(np.int64)
        groups = np.repeat(np.arange(len(grid), dtype=np.int64), sizes)
        # Tempo hypotheses keep the frequencies, so their landmarks are as common as the plain ones (a resampling's or
        # a pitch shift's move to other hash values, most of them rarer): a smaller budget buys them as many votes.
        budget = np.array([TEMPO_BUDGET if f == TEMPO else SCAN_BUDGET for f, _ in grid], np.int64)
        keep = _rarest(self._counts(hashes), groups, budget * sizes)
        hashes, times, groups = hashes[keep], times[keep], groups[keep]
        q_idx, item, rel = self._hits(hashes, times, groups, min_votes=SCAN_MIN_VOTES, radius=SCAN_RADIUS)
        if q_idx.size < SCAN_MIN_VOTES:
            return []

        # Canonical order (the indexes return hits in different orders), then each hit's window score: the
        # hits of its scan hypothesis and item within +-SCAN_RADIUS of its offset.
        q_idx, item, rel = q_idx.astype(np.int64), item.astype(np.int64), rel.astype(np.int64)
        group = groups[q_idx]
        order = np.lexsort((q_idx, rel, item, group))
        q_idx, item, rel, group = q_idx[order], item[order], rel[order], group[order]
        new_run = np.ones(item.size, bool)
        new_run[1:] = (group[1:] != group[:-1]) | (item[1:] != item[:-1])
        run = np.cumsum(new_run) - 1
        key = (run << 40) + rel + _REL_BIAS
        lo = np.searchsorted(key, key - SCAN_RADIUS, "left")
        hi = np.searchsorted(key, key + SCAN_RADIUS, "right")
        score = hi - lo

        # The best window of each (scan hypothesis, item), then the best of those first.
        best = np.lexsort((np.arange(score.size), -score, run))
        best = best[np.r_[True, run[best][1:] != run[best][:-1]]]
        best = best[score[best] >= SCAN_MIN_VOTES]
        best = best[np.lexsort((item[best], group[best], -score[best]))][:SCAN_CANDIDATES]

        picked: list[tuple[int, str, float, int, np.ndarray]] = []  # (item, family, refined factor, votes, seconds)
        for b in best.tolist():
            it, votes = int(item[b]), int(score[b])
            family, s = grid[int(group[b])]
            if family != SPEED and votes < WARP_MIN_VOTES:
                continue
            scale = scale_of(family, s)
            if any(
                pi == it and (_near(scale, scale_of(pf, ps), SAME_COPY) or votes * ECHO < pv)
                for pi, pf, ps, pv, _ in picked
            ):
                continue
            window = slice(int(lo[b]), int(hi[b]))
            if family != PITCH:  # a time-scale error is a slope of offsets; a pitch error is not
                s = _refine(s, times[q_idx[window]], rel[window], STEPS[family])
            seconds = times[q_idx[window]] * FRAME_SECONDS / scale[0]
            picked.append((it, family, s, votes, seconds))
            if len(picked) == SCAN_MAX_ITEMS:
                break
        return [(it, family, s, seconds) for it, family, s, _, seconds in picked]


def _near(a: Scale, b: Scale, reach: float) -> bool:
    return abs(a[0] - b[0]) < reach and abs(a[1] - b[1]) < reach


def _library_share(hashes: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Per query landmark, its share of the landmarks an item holds for its anchor peak: an anchor with m landmarks
    here has min(m, LIBRARY_FANOUT) there, spread evenly over its m, so that a segment's ratio is matches /
    landmarks an identical copy would match. An anchor is its (frame, frequency bin): peaks of one frame lie at
    least PEAK_DF bins apart."""
    anchor = (times.astype(np.int64) << F1_BITS) | (hashes.astype(np.int64) >> (DF_BITS + DT_BITS))
    _, inverse, per_anchor = np.unique(anchor, return_inverse=True, return_counts=True)
    return (np.minimum(per_anchor, LIBRARY_FANOUT) / per_anchor)[inverse].astype(np.float64)


def _dt_probes(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each landmark's hash, then the same with dt - 1 and dt + 1 (where still in 1..DT_MAX), and the index of
    the landmark each probe stands for."""
    h = hashes.astype(np.int64)
    dt = h & _DT_MASK
    index = np.arange(h.size)
    parts, owners = [h], [index]
    for step in (-1, 1):
        ok = (dt + step >= 1) & (dt + step <= DT_MAX)
        parts.append(h[ok] + step)
        owners.append(index[ok])
    return np.concatenate(parts).astype(np.uint32), np.concatenate(owners)


def _rarest(counts: np.ndarray, groups: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    """Mask of each group's rarest landmarks whose postings add up to at most the group's budget."""
    order = np.lexsort((np.arange(counts.size), counts, groups))
    c, g = counts[order].astype(np.int64), groups[order]
    cum = np.cumsum(c)
    first = np.r_[True, g[1:] != g[:-1]]
    before = np.repeat(cum[first] - c[first], np.diff(np.r_[np.flatnonzero(first), c.size]))
    keep = np.zeros(counts.size, bool)
    keep[order] = cum - before <= budgets[g]
    return keep


def _refine(speed: float, t: np.ndarray, rel: np.ndarray, step: float = SCAN_STEP) -> float:
    """`speed` corrected by the slope of offset against query time among one window's hits.

    Under hypothesis s a copy at speed s' puts its hits on rel = a + (s'/s - 1) t (t: query frames at s). Least
    squares, refitted twice without the hits far off the line (chance hits in the window); kept only when the
    slope is well determined.
    """
    x, y = t.astype(np.float64), rel.astype(np.float64)
    slope = 0.0
    for _ in range(3):
        if x.size < _FIT_MIN:
            return speed
        xm, ym = x.mean(), y.mean()
        sxx = float(((x - xm) ** 2).sum())
        if sxx <= 0.0:
            return speed
        slope = float(((x - xm) * (y - ym)).sum()) / sxx
        resid = y - ym - slope * (x - xm)
        spread = 1.4826 * float(np.median(np.abs(resid)))  # robust sigma: strays do not widen it
        near = np.abs(resid) <= max(1.5, 3.0 * spread)
        if near.all():
            break
        x, y = x[near], y[near]
    se = float(np.sqrt((resid**2).sum() / max(resid.size - 2, 1) / sxx))
    if se > _FIT_SE or abs(slope) > 1.5 * step:  # a window sees a copy up to about a step away
        return speed
    return round(speed * (1.0 + slope), 4)
