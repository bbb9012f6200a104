"""From matched fingerprints to copied passages: chain hits along a drifting diagonal, then measure each chain.

A hit is a query fingerprint whose hash also occurs in the reference. A copied passage shows up as hits whose
offset `ref_pos - query_pos` stays nearly constant (typos keep it, inserted or deleted characters move it by one);
a reordered sentence is another run at another offset. Both indexes (inverted and brute force) produce hits
differently and then share everything here, so they agree by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.core import ItemMatch, Segment
from engine.text.fingerprint import TextFingerprint
from engine.text.normalize import NormalizedText
from engine.text.significance import DEFAULT_SIGNIFICANCE, Significance, word_units

# Chaining. A verbatim copy shares a fingerprint at least every w + k - 1 = 15 characters, and typos (5%) leave
# gaps of a few dozen; a longer silence means the copied passage is over. Typos move the offset by about the
# square root of the edits in a gap (a couple of characters per 60), so a larger jump is another passage: a
# moved sentence (short ones, in Chinese, sit at nearly the same offset as their neighbours).
MAX_GAP = 60  # normalised characters without a hit before a passage is considered over
BASE_DRIFT = 4  # offset change tolerated between neighbouring hits, plus one per DRIFT_PER characters of gap
DRIFT_PER = 16
# Chance is ruled out by the significance rule (`engine.text.significance`, in words and fingerprint rarity);
# these only keep out what cannot be a passage at all: a lone fingerprint, or a span shorter than a short word run.
MIN_HITS = 2
MIN_LENGTH = 12  # normalised characters
MIN_DENSITY = 0.15  # share of the span's fingerprints that match; below it a chain is a string of coincidences
EXTEND_LIMIT = 64  # characters a passage may grow past its first/last hit
X_DROP = 6  # extension gives up once it is this far below its best score: ~3 mismatches more than matches
# Winnowing keeps a fingerprint only if about this many characters around it are intact in both texts (measured
# with engine.synth.text.char_edits); turns the matched share into an estimate of character identity.
EFFECTIVE_SPAN = 10.0
CANDIDATE_LIMIT = 200  # items aligned per query, most-hit first


_Kept = tuple[int, int, int, int, float, float]  # a slice: q_lo, q_hi, r_lo, r_hi, similarity, weighted words
_BUCKET_SHIFT = 5  # open chains are filed by diagonal // 32: wider than any drift a single step allows


@dataclass(slots=True)
class _Chain:
    q: list[int]
    r: list[int]
    bucket: int

    @property
    def diagonal(self) -> int:
        return self.r[-1] - self.q[-1]


def _chains(qpos: np.ndarray, rpos: np.ndarray) -> list[_Chain]:
    """Greedy chaining in query order. Open chains are looked up by diagonal, so repeated phrases (hundreds of
    stray hits at unrelated offsets) cost a dictionary probe each instead of a scan of every open chain."""
    order = np.lexsort((rpos, qpos))
    buckets: dict[int, list[_Chain]] = {}
    chains: list[_Chain] = []
    for q, r in zip(qpos[order].tolist(), rpos[order].tolist(), strict=True):
        diagonal = r - q
        home = diagonal >> _BUCKET_SHIFT
        best: _Chain | None = None
        best_drift = 0
        for b in (home - 1, home, home + 1):
            filed = buckets.get(b)
            if not filed:
                continue
            live = [c for c in filed if q - c.q[-1] <= MAX_GAP]  # chains that went quiet are finished
            if len(live) != len(filed):
                buckets[b] = live
            for chain in live:
                if not (0 <= r - chain.r[-1] <= MAX_GAP + BASE_DRIFT):
                    continue
                drift = abs(diagonal - chain.diagonal)
                if drift <= BASE_DRIFT + (q - chain.q[-1]) // DRIFT_PER and (best is None or drift < best_drift):
                    best, best_drift = chain, drift
        if best is None:
            chain = _Chain([q], [r], home)
            chains.append(chain)
            buckets.setdefault(home, []).append(chain)
        elif best.q[-1] != q and best.r[-1] != r:  # a repeated hash at the same spot adds no evidence
            best.q.append(q)
            best.r.append(r)
            if home != best.bucket:  # follow the drift
                buckets[best.bucket].remove(best)
                buckets.setdefault(home, []).append(best)
                best.bucket = home
    return chains


def _supported(qpos: np.ndarray, rpos: np.ndarray) -> np.ndarray:
    """Mask of hits with another hit nearby (within the gap along the query, about the drift across diagonals).

    A hit without one can only ever be a chain of one, so dropping it first changes no result; repeated phrases
    make most stray hits isolated, and this vectorised test is far cheaper than walking them in Python.
    """
    width = BASE_DRIFT + MAX_GAP // DRIFT_PER + 1
    band = (rpos - qpos) // width
    keys = band * (1 << 32) + qpos
    sorted_keys = np.sort(keys)
    nearby = np.zeros(len(keys), dtype=np.int64)
    for offset in (-1, 0, 1):
        probe = keys + offset * (1 << 32)
        nearby += np.searchsorted(sorted_keys, probe + MAX_GAP, "right")
        nearby -= np.searchsorted(sorted_keys, probe - MAX_GAP, "left")
    return nearby > 1  # the hit itself is always counted once


def _agreement(a: str, b: str, i: int, j: int, span: int = 6) -> int:
    return sum(x == y for x, y in zip(a[i : i + span], b[j : j + span], strict=False))


def _grow(a: str, b: str) -> tuple[int, int]:
    """How far a copy runs into `a` and `b` from their starts, tolerating typos (X-drop extension).

    Matching characters score +1, a substitution, insertion or deletion costs 2; the walk stops once the score has
    fallen `X_DROP` below its best and returns the lengths consumed at the best point. At a mismatch the edit
    that makes the next few characters agree is taken.
    """
    i = j = score = best = best_i = best_j = 0
    while i < len(a) and j < len(b) and score > best - X_DROP:
        if a[i] == b[j]:
            i, j, score = i + 1, j + 1, score + 1
            if score > best:
                best, best_i, best_j = score, i, j
            continue
        i, j = max(((i + 1, j + 1), (i + 1, j), (i, j + 1)), key=lambda o: _agreement(a, b, o[0], o[1]))
        score -= 2
    return best_i, best_j


def _extend(a: str, b: str, a_lo: int, a_hi: int, b_lo: int, b_hi: int) -> tuple[int, int, int, int]:
    """Grow the passage on both sides: winnowing only pins its ends to within w + k characters, and typos near an
    end leave the last stretch without shared fingerprints."""
    back_a, back_b = _grow(a[max(0, a_lo - EXTEND_LIMIT) : a_lo][::-1], b[max(0, b_lo - EXTEND_LIMIT) : b_lo][::-1])
    ahead_a, ahead_b = _grow(a[a_hi : a_hi + EXTEND_LIMIT], b[b_hi : b_hi + EXTEND_LIMIT])
    return a_lo - back_a, a_hi + ahead_a, b_lo - back_b, b_hi + ahead_b


def _count_in(positions: np.ndarray, lo: int, hi: int) -> int:
    return int(np.searchsorted(positions, hi, "right") - np.searchsorted(positions, lo, "left"))


class TextItemMatch(ItemMatch):
    """A text item's match. Its similarity is the slices' similarity weighted by their length: how closely the
    upload copies the item over what it copies, which a mean over slices misstates when a short slice sits next to
    a long one."""

    __slots__ = ()

    @property
    def similarity(self) -> float:
        if not self.segments:
            return 0.0
        lengths = [max(s.input_duration, 1e-9) for s in self.segments]
        return sum(s.similarity * n for s, n in zip(self.segments, lengths, strict=True)) / sum(lengths)


@dataclass(frozen=True, slots=True)
class QueryContext:
    """What every candidate's alignment reads of the query, computed once per search."""

    normalized: NormalizedText
    units: np.ndarray  # cumulative words along the normalised query (`significance.word_units`)
    weights: np.ndarray  # per query fingerprint: its document-frequency weight in the library
    weight_at: np.ndarray  # the same by normalised query position (0 where no fingerprint is)

    @classmethod
    def of(
        cls, query: TextFingerprint, weights: np.ndarray | None = None, rule: Significance = DEFAULT_SIGNIFICANCE
    ) -> QueryContext:
        normalized = query.normalized
        if weights is None:  # one document, nothing to compare rarity with: every fingerprint counts fully
            weights = np.ones(len(query.hashes), dtype=np.float64)
        weights = np.asarray(weights, dtype=np.float64)
        weight_at = np.zeros(len(normalized) + 1, dtype=np.float64)
        weight_at[query.positions] = weights
        return cls(normalized, word_units(normalized, rule), weights, weight_at)


def _passages(
    query: TextFingerprint,
    ref: TextFingerprint,
    q_idx: np.ndarray,
    r_idx: np.ndarray,
    context: QueryContext,
    rule: Significance,
) -> list[tuple[Segment, float]]:
    """Copied passages of `ref` in `query` with their weighted length in words, given hits as indexes into each
    fingerprint's arrays: none unless the item is significant (`Significance`); then every passage of at least
    `rule.min_context_words` weighted words."""
    if len(q_idx) < MIN_HITS:
        return []
    k = query.k
    kept: list[_Kept] = []
    qpos, rpos = query.positions[q_idx].astype(np.int64), ref.positions[r_idx].astype(np.int64)
    keep = _supported(qpos, rpos)
    chains = sorted(_chains(qpos[keep], rpos[keep]), key=lambda c: -len(c.q))
    for chain in chains:
        if len(chain.q) < MIN_HITS:
            break
        q_lo, q_hi, r_lo, r_hi = chain.q[0], chain.q[-1] + k, min(chain.r), max(chain.r) + k
        if q_hi - q_lo < MIN_LENGTH:
            continue
        # Significance: the passage's length in words, weighted by how rare its shared fingerprints are (the cheap
        # upper bound first: most chains are a stray pair of hits).
        words = float(context.units[min(q_hi, len(context.units) - 1)] - context.units[q_lo])
        if words < rule.min_context_words:
            continue
        weighted = words * float(context.weight_at[chain.q].mean())  # a chain's query positions are distinct
        if weighted < rule.min_context_words:
            continue
        # One query passage copies one place; a weaker chain over mostly the same input is a repeat in ref.
        if any(min(q_hi, hi) - max(q_lo, lo) > 0.5 * (q_hi - q_lo) for lo, hi, *_ in kept):
            continue
        fingerprints_in_span = _count_in(query.positions, q_lo, q_hi - k) + _count_in(ref.positions, r_lo, r_hi - k)
        density = (len(set(chain.q)) + len(set(chain.r))) / max(1, fingerprints_in_span)
        if density < MIN_DENSITY:
            continue
        similarity = min(1.0, math.exp(math.log(min(1.0, density)) / EFFECTIVE_SPAN))
        kept.append((q_lo, q_hi, r_lo, r_hi, similarity, weighted))

    # The item's normalised length, to within the last window (its text is only normalised for what is reported).
    ref_length = int(ref.positions[-1]) + ref.k if len(ref.positions) else 0
    if not _significant(kept, ref_length, rule):
        return []
    out: list[tuple[Segment, float]] = []
    qn, rn = context.normalized, ref.normalized
    q_chars, r_chars = qn.text, rn.text
    for q_lo, q_hi, r_lo, r_hi, similarity, weighted in kept:
        q_lo, q_hi, r_lo, r_hi = _extend(q_chars, r_chars, q_lo, q_hi, r_lo, r_hi)
        in_start, in_end, in_text = query.span(qn, q_lo, q_hi)
        ref_start, ref_end, ref_text = ref.span(rn, r_lo, r_hi)
        out.append((Segment(in_start, in_end, ref_start, ref_end, similarity, in_text, ref_text), weighted))
    out.sort(key=lambda p: p[0].input_start)
    return out


def _covered(spans: list[tuple[int, int]]) -> tuple[int, int]:
    """(characters covered by the union of `spans`, length of their hull)."""
    covered = 0
    end = None
    for lo, hi in sorted(spans):
        if end is None or lo >= end:
            covered += hi - lo
            end = hi
        elif hi > end:
            covered += hi - end
            end = hi
    hull = max(hi for _, hi in spans) - min(lo for lo, _ in spans)
    return covered, hull


def _together(group: list[_Kept], cover: float) -> bool:
    """Whether the slices cover at least `cover` of the stretch they span, in the query and in the item alike."""
    for spans in ([(p[0], p[1]) for p in group], [(p[2], p[3]) for p in group]):
        covered, hull = _covered(spans)
        if covered < cover * hull:
            return False
    return True


def passages_of(kept: list[_Kept], rule: Significance) -> list[list[_Kept]]:
    """Slices of one item grouped into copied passages: each place of the item counted once (a query repeating one
    copied sentence copies no more), and slices that lie together in both texts, covering at least
    `rule.min_cover` of the stretch they span in each, form one passage however they are ordered. A copy with
    sentences deleted, inserted or moved is one passage cut into sentence-length slices; stock phrases that two
    texts of a genre share are scattered over both, so they stay apart."""
    counted: list[tuple[int, int]] = []
    groups: list[list[_Kept]] = []
    for piece in sorted(kept, key=lambda p: (-p[5], p[0])):
        r_lo, r_hi = piece[2], piece[3]
        if any(min(r_hi, hi) - max(r_lo, lo) > 0.5 * (r_hi - r_lo) for lo, hi in counted):
            continue
        counted.append((r_lo, r_hi))
        home = next((g for g in groups if _together([*g, piece], rule.min_cover)), None)
        if home is None:
            groups.append([piece])
        else:
            home.append(piece)
    return groups


def _significant(kept: list[_Kept], ref_length: int, rule: Significance) -> bool:
    """The item rule: passages (`passages_of`) of at least `min_slice_words` weighted words amount to
    `min_item_words` or `min_item_share` of the item."""
    words = 0.0
    spans: list[tuple[int, int]] = []
    for group in passages_of(kept, rule):
        weighted = sum(p[5] for p in group)
        if weighted >= rule.min_slice_words:
            words += weighted
            spans += [(p[2], p[3]) for p in group]
    if not spans:
        return False
    share = _covered(spans)[0] / max(1, ref_length)
    return words >= rule.min_item_words or share >= rule.min_item_share


def align(
    query: TextFingerprint,
    ref: TextFingerprint,
    q_idx: np.ndarray,
    r_idx: np.ndarray,
    context: QueryContext | None = None,
    rule: Significance = DEFAULT_SIGNIFICANCE,
) -> list[Segment]:
    """Segments of `query` copied from `ref` (significant ones only), given hits as indexes into each
    fingerprint's arrays. `context` carries the query's library weights and saves renormalising it per item."""
    context = context if context is not None else QueryContext.of(query, rule=rule)
    return [segment for segment, _ in _passages(query, ref, q_idx, r_idx, context, rule)]


def _weight(match: ItemMatch) -> float:
    return sum(s.similarity * max(s.input_duration, 1e-9) for s in match.segments)


def collect(
    query: TextFingerprint,
    hits: dict[int, tuple[np.ndarray, np.ndarray]],
    fingerprints: dict[int, TextFingerprint],
    max_items: int,
    weights: np.ndarray | None = None,
    rule: Significance = DEFAULT_SIGNIFICANCE,
) -> list[ItemMatch]:
    """Align every candidate item and rank: most copied (similarity × length) first, then by item id.

    `weights` are the query fingerprints' document-frequency weights in the library searched (None: all 1).
    """
    candidates = [(item, np.unique(qi), qi, ri) for item, (qi, ri) in hits.items()]
    candidates = [c for c in candidates if len(c[1]) >= MIN_HITS]
    matches: list[ItemMatch] = []
    context = QueryContext.of(query, weights, rule) if candidates else None
    if context is not None:  # rare shared fingerprints first: boilerplate hits must not crowd out the copy
        candidates.sort(key=lambda c: (-float(context.weights[c[1]].sum()), c[0]))
    for item, _, qi, ri in candidates[:CANDIDATE_LIMIT]:
        assert context is not None
        segments = align(query, fingerprints[item], qi, ri, context, rule)
        if segments:
            matches.append(TextItemMatch(item, segments))
    return rank(matches, max_items)


def rank(matches: list[ItemMatch], max_items: int) -> list[ItemMatch]:
    """Most copied (similarity × length) first, then by item id."""
    matches.sort(key=lambda m: (-_weight(m), m.item_id))
    return matches[:max_items]
