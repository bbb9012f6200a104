"""The fast inverted index against its brute-force oracle, and its bookkeeping (runs, removal, growth)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from audio_testlib import SR, AudioLibrary

from engine.audio import AudioFingerprint, AudioIndex, ReferenceAudioIndex
from engine.audio import base as audio_base
from engine.audio.alignment import MIN_VOTES
from engine.audio.base import SCAN_MIN_VOTES, SCAN_RADIUS, _dt_probes, _rarest, _refine
from engine.audio.index import _bisect_left, _hot
from engine.audio.landmarks import SUB, join_hash
from engine.audio.params import DT_MAX, HASH_BITS
from engine.core import ItemMatch
from engine.synth import audio as synth


def _answer(matches: list[ItemMatch]) -> list[tuple[int, list[tuple[float, float, float, float, float]]]]:
    return [
        (m.item_id, [(s.input_start, s.input_end, s.ref_start, s.ref_end, round(s.similarity, 9)) for s in m.segments])
        for m in matches
    ]


def test_fast_and_reference_indexes_agree_on_real_queries(
    audio_library: AudioLibrary, unrelated_music: Callable[[int, float], np.ndarray]
) -> None:
    lib = audio_library.audio
    queries = {
        "agree_noisy": synth.add_noise(synth.excerpt(lib[205], SR, 6.0, 5.0), 10.0, seed=1),
        "agree_two": synth.concat(synth.excerpt(lib[42], SR, 1.0, 6.0), synth.excerpt(lib[17], SR, 12.0, 6.0)),
        "agree_bp": synth.band_pass(synth.excerpt(lib[9001], SR, 14.0, 5.0), SR),
        "agree_unrelated": unrelated_music(3, 8.0),
    }
    found = 0
    for name, x in queries.items():
        query = audio_library.query(name, x)
        fast, slow = audio_library.index.search(query), audio_library.reference.search(query)
        assert _answer(fast) == _answer(slow), name
        found += len(fast)
    assert found == 4  # 1 + 2 + 1 + 0: the agreement is not the trivial "both empty"


# --- synthetic landmarks: exercise runs, merges, the dense table and removal on many items ----------------


def _random_item(rng: np.random.Generator, seconds: float = 30.0) -> tuple[np.ndarray, np.ndarray, float]:
    frames = int(seconds * 62.5)
    n = int(seconds * 25)
    return (
        rng.integers(0, 1 << HASH_BITS, n).astype(np.uint32),
        np.sort(rng.integers(0, frames, n)).astype(np.uint32),
        seconds,
    )


def _query_from(
    hashes: np.ndarray, times: np.ndarray, t0: int, t1: int, keep: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks of frames [t0, t1) of an item (a `keep` fraction of them), re-timed from 0, plus as many
    random ones: what a degraded excerpt looks like to the index."""
    sel = (times >= t0) & (times < t1) & (rng.random(times.size) < keep)
    qh = np.concatenate([hashes[sel], rng.integers(0, 1 << HASH_BITS, sel.sum()).astype(np.uint32)])
    qt = np.concatenate([times[sel] - t0, rng.integers(0, t1 - t0, sel.sum())]).astype(np.uint32)
    order = np.argsort(qt, kind="stable")
    return qh[order], qt[order]


class _RawQuery(AudioFingerprint):
    """A query given directly as landmarks (bypasses peak extraction)."""

    def __init__(self, hashes: np.ndarray, times: np.ndarray, duration: float) -> None:
        super().__init__(duration=duration, peak_t=np.zeros(0, np.uint32), peak_f=np.zeros(0, np.uint16))
        self._hashes = (hashes, times)


@pytest.fixture(scope="module")
def synthetic_library() -> dict[int, tuple[np.ndarray, np.ndarray, float]]:
    rng = np.random.default_rng(7)
    return {1000 + 3 * k: _random_item(rng) for k in range(120)}


def _build(items: dict[int, tuple[np.ndarray, np.ndarray, float]]) -> tuple[AudioIndex, ReferenceAudioIndex]:
    # Tiny thresholds: many runs, merges, and dense (CSR) runs as soon as they hold 20k postings.
    fast = AudioIndex(csr_min=20_000, pending_max=3_000, merge_max=60_000)
    slow = ReferenceAudioIndex()
    for item_id, (h, t, d) in items.items():
        fast.add_landmarks(item_id, h, t, d)
        slow.add_landmarks(item_id, h, t, d)
    return fast, slow


def test_agree_on_synthetic_library_through_runs_and_merges(
    synthetic_library: dict[int, tuple[np.ndarray, np.ndarray, float]],
) -> None:
    fast, slow = _build(synthetic_library)
    fast.flush()
    rng = np.random.default_rng(3)
    ids = list(synthetic_library)

    assert fast.n_runs > 1
    assert any(r.offsets is not None for r in fast._runs) and any(r.hashes is not None for r in fast._runs)
    assert len(fast) == len(slow) == 120
    for trial in range(6):
        item_id = ids[int(rng.integers(len(ids)))]
        h, t, _ = synthetic_library[item_id]
        t0 = int(rng.integers(0, 1000))
        qh, qt = _query_from(h, t, t0, t0 + 400, keep=0.5, rng=rng)
        query = _RawQuery(qh, qt, 400 * 0.016)

        fast_answer = fast.search(query)
        assert _answer(fast_answer) == _answer(slow.search(query)), trial
        assert fast_answer[0].item_id == item_id
        seg = fast_answer[0].segments[0]
        assert seg.ref_start - seg.input_start == pytest.approx(t0 * 0.016, abs=0.05)

    # Weak copies, whose votes hover around the acceptance thresholds: where a pre-filter would show.
    outcomes = set()
    for trial in range(30):
        item_id = ids[trial]
        h, t, _ = synthetic_library[item_id]
        qh, qt = _query_from(h, t, 300, 500, keep=0.04 + 0.004 * trial, rng=rng)
        query = _RawQuery(qh, qt, 200 * 0.016)
        fast_answer = fast.search(query)
        assert _answer(fast_answer) == _answer(slow.search(query)), trial
        outcomes.add(bool(fast_answer))
    assert outcomes == {True, False}  # some found, some not: the thresholds were really exercised


@pytest.mark.parametrize("residue", range(4))
def test_prefilter_keeps_every_alignment_with_enough_votes(residue: int) -> None:
    """Votes spread over 3 neighbouring offsets (the jitter alignment accepts) survive wherever the offsets
    fall on the pre-filter's buckets; lone chance hits do not."""
    rng = np.random.default_rng(residue)
    v = 4 * 1_000_003 + residue
    cluster = np.repeat([v - 1, v, v + 1], [MIN_VOTES // 3, MIN_VOTES // 3, MIN_VOTES - 2 * (MIN_VOTES // 3)])
    scattered = rng.choice(1 << 40, 5000, replace=False).astype(np.int64) * 16
    offsets = np.concatenate([scattered[:2500], cluster, scattered[2500:]])

    keep = _hot(offsets)

    assert keep[2500 : 2500 + cluster.size].all()
    assert keep.sum() < cluster.size + 10


@pytest.mark.parametrize(("min_votes", "radius"), [(MIN_VOTES, 1), (SCAN_MIN_VOTES, SCAN_RADIUS)])
def test_prefilter_keeps_windows_across_block_edges_and_below_zero(min_votes: int, radius: int) -> None:
    """The pre-filter counts cells in hashed blocks of 64: a window split by a block's edge (or lying below zero,
    where offsets of a library's first item fall) must survive as well as any, among a crowd of chance hits."""
    rng = np.random.default_rng(radius)
    width = 1 << max(1, (2 * radius - 1).bit_length())
    edge = 64 * width  # offsets per block of cells
    # Each window alone in its blocks (overlapping ones would pool their votes), straddling an edge in every way.
    windows = [(1000 * k + j) * edge + d for k in (-3, -1, 0, 5, 1 << 20) for j, d in enumerate(range(-2 * radius, 1))]
    clusters = [a + np.arange(min_votes) % (2 * radius + 1) for a in windows]
    crowd = rng.integers(-(1 << 40), 1 << 40, 25_000 * min_votes)  # as crowded as a search's table at that threshold
    offsets = np.concatenate([crowd, *clusters])
    rng_order = rng.permutation(offsets.size)
    keep = _hot(offsets[rng_order], min_votes, radius)[np.argsort(rng_order)]
    assert keep[crowd.size :].all()
    assert keep[: crowd.size].sum() < 0.01 * crowd.size


def test_remove_readd_and_compact(synthetic_library: dict[int, tuple[np.ndarray, np.ndarray, float]]) -> None:
    fast, slow = _build(synthetic_library)
    rng = np.random.default_rng(11)
    victim = 1000 + 3 * 17
    h, t, _ = synthetic_library[victim]
    query = _RawQuery(*_query_from(h, t, 200, 700, keep=0.6, rng=rng), 8.0)
    assert [m.item_id for m in fast.search(query)] == [victim]
    memory_before = fast.memory_bytes()

    fast.remove(victim)
    slow.remove(victim)
    fast.remove(victim)  # twice is harmless

    assert fast.search(query) == [] and slow.search(query) == []
    assert victim not in fast and len(fast) == 119
    fast.compact()
    assert fast.search(query) == []
    assert fast.memory_bytes() < memory_before
    assert fast.n_postings == sum(x[0].size for k, x in synthetic_library.items() if k != victim)

    # The same id, now holding other audio: the old landmarks must not come back.
    h2, t2, d2 = _random_item(rng)
    fast.add_landmarks(victim, h2, t2, d2)
    slow.add_landmarks(victim, h2, t2, d2)
    assert fast.search(query) == []
    query2 = _RawQuery(*_query_from(h2, t2, 100, 600, keep=0.6, rng=rng), 8.0)
    assert [m.item_id for m in fast.search(query2)] == [victim]
    assert _answer(fast.search(query2)) == _answer(slow.search(query2))


def test_adding_an_item_again_replaces_it(audio_library: AudioLibrary) -> None:
    index = AudioIndex()
    index.add_many(list(audio_library.fingerprints.items()))
    query = audio_library.query("replace", synth.excerpt(audio_library.audio[17], SR, 3.0, 5.0))
    assert [m.item_id for m in index.search(query)] == [17]

    index.add(17, audio_library.fingerprints[205])  # item 17 now holds 205's audio

    assert len(index) == len(audio_library.fingerprints)
    assert index.search(query) == []


def test_timeline_beyond_uint32_switches_postings_to_uint64() -> None:
    rng = np.random.default_rng(5)
    fast, slow = AudioIndex(), ReferenceAudioIndex()
    near = _random_item(rng)
    fast.add_landmarks(1, *near)
    slow.add_landmarks(1, *near)
    # An item so long (2^32 frames = 2.2 years) that the timeline outgrows 32-bit postings.
    h, t, _ = _random_item(rng)
    far_t = t.astype(np.int64) + (1 << 32)
    fast.add_landmarks(2, h, far_t, float(far_t.max() * 0.016 + 1))
    slow.add_landmarks(2, h, far_t, float(far_t.max() * 0.016 + 1))
    fast.add_landmarks(3, *_random_item(rng))
    fast.flush()

    assert all(r.postings.dtype == np.uint64 for r in fast._runs)
    for item_id, (qh, qt) in {
        1: _query_from(near[0], near[1], 300, 800, 0.6, rng),
        2: _query_from(h, far_t, (1 << 32) + 300, (1 << 32) + 800, 0.6, rng),
    }.items():
        query = _RawQuery(qh, qt, 8.0)
        answer = fast.search(query)
        assert [m.item_id for m in answer] == [item_id]
        assert _answer(answer) == _answer(slow.search(query))


def test_memory_is_about_four_bytes_a_landmark(
    synthetic_library: dict[int, tuple[np.ndarray, np.ndarray, float]],
) -> None:
    index = AudioIndex()  # default thresholds: one small run of sorted hashes
    for item_id, item in synthetic_library.items():
        index.add_landmarks(item_id, *item)
    index.flush()
    postings = index.n_postings
    assert postings == sum(x[0].size for x in synthetic_library.values())
    # 4 bytes of posting + 4 of sorted hash while runs are small; the dense table makes big runs ~4.
    assert 4 * postings < index.memory_bytes() < 12 * postings


# --- the speed scan: the same answers from both indexes, through runs, merges, removal ----------------------

_NOTES = np.geomspace(40, 400, 12)  # peak frequencies (hash bins) cluster on notes: skewed posting lists


def _peak_item(rng: np.random.Generator, seconds: float = 30.0) -> AudioFingerprint:
    """Peaks of a synthetic piece: 10 a second, on a few notes, sub-bin jitter (1/16 frame, 1/16 bin units)."""
    n = int(seconds * 10)
    t = np.sort(rng.integers(0, int(seconds * 62.5) * SUB, n))
    f = np.rint(rng.choice(_NOTES, n) * SUB) + rng.integers(-3, 4, n)
    return AudioFingerprint(duration=seconds, peak_t=t, peak_f=f)


def _resampled(
    fp: AudioFingerprint, t0: int, t1: int, speed: float, rng: np.random.Generator, keep: float = 0.8
) -> AudioFingerprint:
    """Frames [t0, t1) of `fp` played `speed` times faster (times / speed, frequencies * speed), with a fifth of
    the peaks lost and as many spurious ones: what a resampled, degraded excerpt looks like to the index."""
    t = fp.peak_t.astype(np.int64)
    sel = (t >= t0 * SUB) & (t < t1 * SUB) & (rng.random(t.size) < keep)
    qt = (t[sel] - t0 * SUB) / speed
    qf = fp.peak_f[sel] * speed
    extra = int(sel.sum() * (1 - keep))
    qt = np.concatenate([qt, rng.uniform(0, qt.max(), extra)])
    qf = np.concatenate([qf, rng.choice(_NOTES, extra) * SUB * speed])
    order = np.argsort(qt, kind="stable")
    return AudioFingerprint(duration=(t1 - t0) * 0.016 / speed, peak_t=np.rint(qt[order]), peak_f=np.rint(qf[order]))


def _live_counts(items: dict[int, AudioFingerprint], hashes: np.ndarray) -> np.ndarray:
    """Postings per hash among `items`, counted the obvious way."""
    values, counts = np.unique(np.concatenate([fp.library_landmarks()[0] for fp in items.values()]), return_counts=True)
    at = np.minimum(np.searchsorted(values, hashes), values.size - 1)
    return np.where(values[at] == hashes, counts[at], 0).astype(np.int64)


def test_speed_scan_agrees_through_runs_merges_and_removal(monkeypatch: pytest.MonkeyPatch) -> None:
    # A small budget, so that the scan really leaves the commonest landmarks out (the default takes them all here).
    monkeypatch.setattr(audio_base, "SCAN_BUDGET", 1)
    rng = np.random.default_rng(21)
    items = {500 + 7 * k: _peak_item(rng) for k in range(60)}
    fast = AudioIndex(csr_min=7_000, pending_max=1_000, merge_max=20_000)  # several runs, one dense
    slow = ReferenceAudioIndex()
    for item_id, fp in items.items():
        fast.add(item_id, fp)
        slow.add(item_id, fp)
    fast.flush()
    assert fast.n_runs > 1 and any(r.offsets is not None for r in fast._runs)

    def check(item_id: int, speed: float, t0: int) -> None:
        query = _resampled(items[item_id], t0, t0 + 500, speed, rng)
        hashes = query.landmarks_at_speed(speed)[0]
        assert not _rarest(fast._counts(hashes), np.zeros(hashes.size, np.int64), np.array([hashes.size])).all()
        answer = fast.search(query)
        assert _answer(answer) == _answer(slow.search(query)), (item_id, speed)
        assert [m.item_id for m in answer] == [item_id]
        seg = answer[0].segments[0]
        # Query time t is reference time t0 + speed * t, and both spans are in their own file's seconds.
        assert seg.ref_start == pytest.approx(t0 * 0.016 + speed * seg.input_start, abs=0.05)
        assert seg.ref_duration == pytest.approx(speed * seg.input_duration, rel=0.01)

    ids = list(items)
    for k, speed in enumerate((1.05, 0.93, 1.0712, 0.9577, 1.0)):
        check(ids[3 * k], speed, 100 + 150 * k)

    # Remove, replace and compact: postings change places, rarity counts must not.
    removed = items[ids[0]]
    fast.remove(ids[0])
    slow.remove(ids[0])
    replacement = _peak_item(rng)
    fast.add(ids[1], replacement)
    slow.add(ids[1], replacement)
    items[ids[1]] = replacement
    del items[ids[0]]
    probe = np.concatenate([fp.hashes for fp in items.values()] + [removed.hashes])
    # Rarity counts only the items held, so an index rebuilt from them after a restart counts the same.
    live_counts = _live_counts(items, probe)
    rebuilt = AudioIndex(csr_min=7_000, pending_max=1_000, merge_max=20_000)
    for item_id in sorted(items):
        rebuilt.add(item_id, items[item_id])
    assert np.array_equal(fast._counts(probe), live_counts)
    assert np.array_equal(rebuilt._counts(probe), live_counts)
    assert np.array_equal(slow._counts(probe), live_counts)
    check(ids[1], 1.06, 300)
    fast.compact()
    assert np.array_equal(fast._counts(probe), live_counts)
    check(ids[1], 0.94, 200)
    check(ids[9], 1.075, 50)
    gone = _resampled(removed, 100, 600, 1.05, rng)
    assert fast.search(gone) == [] and slow.search(gone) == []


@pytest.mark.parametrize("residue", range(16))
def test_scan_prefilter_keeps_every_window_with_enough_votes(residue: int) -> None:
    """Votes spread over 9 neighbouring offsets (a speed-scan window) survive wherever they fall on the buckets."""
    rng = np.random.default_rng(residue)
    v = 16 * 1_000_003 + residue
    cluster = v + np.arange(-4, 5)[np.arange(SCAN_MIN_VOTES) % 9]
    scattered = rng.choice(1 << 40, 5000, replace=False).astype(np.int64) * 64
    offsets = np.concatenate([scattered[:2500], cluster, scattered[2500:]])

    keep = _hot(offsets, SCAN_MIN_VOTES, SCAN_RADIUS)

    assert keep[2500 : 2500 + cluster.size].all()
    assert keep.sum() < cluster.size + 10


def test_bisect_left_finds_every_range_boundary() -> None:
    rng = np.random.default_rng(2)
    a = np.concatenate([np.sort(rng.integers(0, 1000, n)) for n in rng.integers(0, 40, 50)]).astype(np.uint32)
    lo = rng.integers(0, a.size, 400)
    hi = lo + rng.integers(0, 30, 400)
    hi = np.minimum(hi, a.size)
    # Only sorted stretches are valid ranges: make them so.
    ranges = [(int(x), int(y)) for x, y in zip(lo, hi, strict=True) if np.all(np.diff(a[x:y].astype(int)) >= 0)]
    lo = np.array([r[0] for r in ranges])
    hi = np.array([r[1] for r in ranges])
    x = rng.integers(-5, 1005, lo.size)

    got = _bisect_left(a, lo, hi, x)

    want = [lo_ + int(np.searchsorted(a[lo_:hi_], v, "left")) for lo_, hi_, v in zip(lo, hi, x, strict=True)]
    assert got.tolist() == want


def test_rarest_landmarks_fill_each_speed_budget() -> None:
    counts = np.array([5, 0, 9, 1, 3, 7, 0, 2, 8, 4])
    groups = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    keep = _rarest(counts, groups, np.array([4, 9]))
    # Group 0: 0 + 1 + 3 = 4 fits, 5 would not; group 1: 0 + 2 + 4 = 6 fits, + 7 would not.
    assert np.flatnonzero(keep).tolist() == [1, 3, 4, 6, 7, 9]


def test_refine_recovers_the_speed_from_a_slope() -> None:
    rng = np.random.default_rng(4)
    t = np.sort(rng.uniform(0, 3000, 80))
    true = 1.0512
    rel = 900 + (true / 1.05 - 1) * t + rng.normal(0, 0.4, t.size)  # hits seen under hypothesis 1.05
    rel[::10] += 40  # a few strays from elsewhere
    assert _refine(1.05, np.rint(t), np.rint(rel)) == pytest.approx(true, abs=2e-4)
    assert _refine(1.05, np.rint(t[:5]), np.rint(rel[:5])) == 1.05  # too few hits: left as is


def test_dt_probes_stay_within_the_hash_layout() -> None:
    h = join_hash(np.array([10, 10, 10]), np.array([63, 63, 63]), np.array([1, 30, DT_MAX]))
    probes, owner = _dt_probes(h.astype(np.uint32))
    got = sorted(zip(owner.tolist(), (probes & 63).tolist(), strict=True))
    assert got == [(0, 1), (0, 2), (1, 29), (1, 30), (1, 31), (2, 62), (2, 63)]
    assert np.all(probes >> 6 == h[0] >> 6)


def test_rarity_counts_equal_a_rebuilt_index_through_removals_and_merges(
    synthetic_library: dict[int, tuple[np.ndarray, np.ndarray, float]],
) -> None:
    """The bug this pins: removed items used to keep counting, so a restart (a rebuild) changed the speed scan."""
    items = dict(synthetic_library)
    fast, _ = _build(items)
    probe = np.concatenate([h for h, _, _ in items.values()])
    rng = np.random.default_rng(5)
    for round_no, victims in enumerate((list(items)[:2], list(items)[10:22], list(items)[40:43])):
        for victim in victims:  # a few removals, then many (the tally's two ways of finding postings)
            fast.remove(victim)
            del items[victim]
        if round_no == 1:
            for k in range(6):  # more additions: runs merge and drop the dead postings in between
                h, t, d = _random_item(rng)
                fast.add_landmarks(5000 + k, h, t, d)
                items[5000 + k] = (h, t, d)
        rebuilt, _ = _build(items)
        assert np.array_equal(fast._counts(probe), rebuilt._counts(probe)), round_no
    fast.compact()
    assert np.array_equal(fast._counts(probe), rebuilt._counts(probe))


def test_a_full_search_over_its_posting_budget_looks_up_the_rarest_landmarks_and_indexes_still_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every item carries the same 40 "stock" hashes many times over (what a big library's common hashes are);
    # a query copying one item holds them too. Under a binding budget they are not looked up, the copy's own
    # landmarks are, and both indexes cut the same landmarks.
    rng = np.random.default_rng(11)
    stock = rng.integers(0, 1 << HASH_BITS, 40).astype(np.uint32)
    items: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
    for k in range(40):
        h, t, d = _random_item(rng)
        common = rng.random(h.size) < 0.3
        h = np.where(common, stock[rng.integers(0, stock.size, h.size)], h).astype(np.uint32)
        items[500 + k] = (h, t, d)
    fast, slow = _build(items)
    h, t, _ = items[517]
    qh, qt = _query_from(h, t, 200, 700, keep=0.6, rng=rng)
    query = _RawQuery(qh, qt, 500 * 0.016)
    counts = slow._counts(qh).astype(np.float64)
    assert counts.sum() > 8 * qh.size  # the stock hashes dominate the postings

    looked_up: list[np.ndarray] = []
    hits = AudioIndex._hits

    def spy(self: AudioIndex, hashes: np.ndarray, *args: object, **kwargs: object) -> object:
        if kwargs.get("items") is None and len(args) < 2:  # a full search (not the scan, not a verification)
            looked_up.append(hashes.copy())
        return hits(self, hashes, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(AudioIndex, "_hits", spy)
    monkeypatch.setattr(audio_base, "FULL_BUDGET", 8)
    fast_answer = fast.search(query)
    assert _answer(fast_answer) == _answer(slow.search(query))
    assert fast_answer and fast_answer[0].item_id == 517
    cut = looked_up[0]
    assert 0 < cut.size < qh.size
    assert slow._counts(cut).sum() <= 8 * qh.size
    dropped = np.setdiff1d(qh, cut)
    assert dropped.size and slow._counts(dropped).min() >= slow._counts(cut).max()  # the rarest were kept
