"""Fast inverted audio index: hash -> postings, in sorted numpy arrays, with 4 bytes per landmark, kept on disk.

Every item gets a slot on one global timeline of analysis frames (`base` = where its frame 0 lies), so a
posting is just the global frame of a landmark: uint32 (4 bytes) while the timeline fits, which holds
~19,000 hours. The item and its local frame come back with one `searchsorted` over the slots' bases.

Postings live in immutable runs, each sorted by (hash, posting). A big run keeps a dense CSR table (offsets per
hash, 2^22 + 1 entries) so a lookup is two array reads; a small run keeps its sorted hashes and uses
`np.searchsorted`. New items wait in a pending buffer that becomes a run before the next search, and runs of
similar size are merged (log-structured, like an LSM tree), so adding one item at a time stays cheap and a
search touches O(log n) runs. Runs cover disjoint stretches of the timeline in order, so a merge interleaves
their per-hash lists in linear time, a slice of the hash range at a time (nothing is sorted, and its transient
memory stays small). Removal marks the slot dead; its postings are skipped, then dropped by the next merge or
`compact()`.

Persistence (`attach`, `save`; the library keeps it in `<data_dir>/indexes/<FpDBId>/audio/`): one directory per
run (`postings.npy` and `offsets.npy` or `hashes.npy`), one for the slot table (item, base, alive, duration and
landmark count per slot, and the removed items' postings still counted per hash), and `manifest.json` naming
them. Runs are immutable: a save writes the runs made since the last one, then the slot table, then replaces the
manifest atomically, and deletes what it no longer names. A loaded index maps the runs (`numpy.load(mmap_mode=
"r")`) and rebuilds nothing; a run just written is mapped back too, so the heap holds only pending items and the
slot table. A directory that does not load is ignored (the caller rebuilds from its fingerprint blobs).

A search gathers every posting of the query's hashes (millions at 1,000 hours), drops those that cannot reach
the vote threshold with an O(n) hashed count (`_hot`), and hands the rest to `alignment` (or, for the speed
scan, to `base`). Searching also flushes pending additions, so the index is not thread-safe: callers serialise
(the library holds a lock).

Posting counts per hash (`_counts`, the speed scan's rarity measure) are two array reads per run, minus the
postings of removed items still in the runs (`_dead_*`, tallied lazily in one pass after removals and kept
current as merges drop them), so that they count the live items' landmarks only, as the reference does: an index
rebuilt from the same items after a restart answers exactly like the live one.

Memory: 4 bytes a landmark + 16 MiB of offsets per big run. An index holds one landmark an anchor peak
(`LIBRARY_FANOUT`; a query hashes three): ~9.3 a second on real music, 155 MiB per 1,000 h (three an anchor took
~370 MiB). A compressed posting format would not have done it: a run's content is a set of (hash, frame) pairs,
and with times spread uniformly its information floor, the sum over hashes of n_h * (log2(timeline / n_h) +
log2 e) bits, was 20.4 bits a landmark for three an anchor at 1,000 h (225 MiB; Elias-Fano 21.0 bits), every
lookup then decoding.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.index_files import MANIFEST, directory_lock, publish, write_part

from .alignment import MIN_VOTES, OFFSET_TOL
from .base import _GROUP_SHIFT, DEFAULT_SPEEDS, SCAN_SPEEDS, AudioIndexBase
from .fingerprint import AudioFingerprint
from .params import DT_MAX, FORMAT_VERSION, HASH_BITS, LIBRARY_FANOUT

log = logging.getLogger(__name__)

_H = 1 << HASH_BITS
# Defaults of the tunables (tests shrink them to exercise every path on a small library):
CSR_MIN = 1 << 22  # postings from which a run keeps a dense offsets table (smaller: sorted hashes)
PENDING_MAX = 1 << 22  # postings buffered before they are turned into a run anyway
MERGE_MAX = 1 << 28  # runs above this size are not merged further (~2,900 h: bounds the rewrite a merge costs)
_MERGE_CHUNK = 1 << 22  # postings a merge handles at a time (its transient memory: ~20 bytes each)
_SLOT_GAP = DT_MAX + 1  # frames between consecutive items on the timeline
_U32_LIMIT = (1 << 32) - 1
_HOT_BITS = 22  # vote cells of the pre-filter (at most: a few hits need far fewer)
_SUPER_BITS = 6  # the pre-filter hashes blocks of 64 consecutive cells
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing


@dataclass(slots=True, eq=False)
class _Run:
    """Postings sorted by (hash, posting): dense `offsets` (CSR) or sorted `hashes`, exactly one of them set.
    Runs cover disjoint stretches of the timeline, in order (see `_merge`)."""

    postings: np.ndarray
    offsets: np.ndarray | None = None
    hashes: np.ndarray | None = None
    name: str | None = None  # its directory once persisted

    def bounds(self, h0: int, h1: int) -> tuple[int, int]:
        """[lo, hi) of the postings of hashes h0 <= h < h1."""
        if self.offsets is not None:
            return int(self.offsets[h0]), int(self.offsets[h1])
        assert self.hashes is not None
        return int(np.searchsorted(self.hashes, h0, "left")), int(np.searchsorted(self.hashes, h1, "left"))

    def hashes_between(self, h0: int, h1: int, lo: int, hi: int) -> np.ndarray:
        """The hashes of postings lo:hi, which are those of hashes h0 <= h < h1."""
        if self.hashes is not None:
            return np.asarray(self.hashes[lo:hi])
        assert self.offsets is not None
        return np.repeat(np.arange(h0, h1, dtype=np.uint32), np.diff(self.offsets[h0 : h1 + 1].astype(np.int64)))

    @property
    def size(self) -> int:
        return int(self.postings.size)

    @property
    def nbytes(self) -> int:
        extra = self.offsets if self.offsets is not None else self.hashes
        return self.postings.nbytes + (extra.nbytes if extra is not None else 0)

    def ranges(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[lo, hi) of each query hash's postings."""
        if self.offsets is not None:
            return self.offsets[q].astype(np.int64), self.offsets[q + 1].astype(np.int64)
        assert self.hashes is not None
        return np.searchsorted(self.hashes, q, "left"), np.searchsorted(self.hashes, q, "right")

    def hashes_at(self, positions: np.ndarray) -> np.ndarray:
        """The hashes of the postings at `positions` (without materialising every hash of a dense run)."""
        if self.hashes is not None:
            return self.hashes[positions]
        assert self.offsets is not None
        return (np.searchsorted(self.offsets, positions, "right") - 1).astype(np.uint32)


def _hot(offset: np.ndarray, min_votes: int = MIN_VOTES, radius: int = OFFSET_TOL) -> np.ndarray:
    """Mask of the hits that can belong to `min_votes` votes within 2 * `radius` + 1 consecutive offsets;
    drops the rest unseen.

    Most hits of a big library are chance collisions scattered over billions of offsets; sorting them all
    (what alignment does) would dominate a search. Votes are counted instead in cells of `width` >= 2 * `radius`
    offsets, so that any window lies within two neighbouring cells: a hit is kept when its cell and one of its
    neighbours hold `min_votes` together. The cells are counted in one hashed table that keeps neighbours
    neighbours: blocks of 2^_SUPER_BITS consecutive cells are hashed as one (to consecutive entries), and only a
    cell at a block's edge needs its neighbour looked up apart. Hash collisions only add votes, so a hit of any
    window that reaches `min_votes` is always kept, and the result is exactly what the brute-force reference finds.

    One counting pass and one boolean lookup a hit, into a table of 4-8 entries a hit (more below MIN_VOTES; at
    most 2^_HOT_BITS): at 1,000 hours a full search checks millions of hits, and these random accesses are what the
    pre-filter costs.
    """
    n = int(offset.size)
    if n < min_votes:
        return np.zeros(n, bool)
    shift = max(1, (2 * radius - 1).bit_length())  # cell width 2^shift >= 2 * radius
    # 4-8 entries a hit; a lower threshold is passed by chance far more often (a Poisson tail): 4x that at 4 votes.
    spare = max(0, MIN_VOTES - min_votes) // 2
    table = min(_HOT_BITS, max(_SUPER_BITS + 4, n.bit_length() + 2 + spare))
    k, last, size = _SUPER_BITS, (1 << _SUPER_BITS) - 1, 1 << table
    down = np.uint64(64 - table)
    cell = np.right_shift(offset, shift, dtype=np.int64)
    low = cell & last
    cell >>= k  # now the block (two's complement: negative offsets hash like any others)
    block = cell.view(np.uint64)

    def place(b: np.ndarray, low: np.ndarray) -> np.ndarray:
        """Table entries of cells `low` of blocks `b`: a block's cells are consecutive entries from where its hash
        puts it (anywhere, not on a multiple of 64: offsets on a regular grid do not pile up)."""
        at = b * _GOLDEN
        at >>= down
        at = at.view(np.int64)
        at += low
        at &= size - 1
        return at

    at = place(block, low)
    votes = np.bincount(at, minlength=size)
    pair = np.empty(size, bool)  # entries i and i + 1 (cyclic): neighbouring cells, or more votes
    np.greater_equal(votes[:-1] + votes[1:], min_votes, out=pair[:-1])
    pair[-1] = votes[-1] + votes[0] >= min_votes
    hot = np.empty(size, bool)
    np.logical_or(pair[1:], pair[:-1], out=hot[1:])
    hot[0] = pair[0] or pair[-1]
    keep = hot[at]
    # A cell at its block's edge: its neighbour in the next (previous) block is looked up apart.
    for step, edge in ((1, last), (-1, 0)):
        w = np.flatnonzero(low == edge)
        w = w[~keep[w]]
        if w.size:
            nb = block[w] + np.uint64(1) if step > 0 else block[w] - np.uint64(1)
            keep[w] = votes[at[w]] + votes[place(nb, np.full(w.size, last - edge))] >= min_votes
    return keep


def _bisect_left(a: np.ndarray, lo: np.ndarray, hi: np.ndarray, x: np.ndarray) -> np.ndarray:
    """For each i, the first position in a[lo[i]:hi[i]] (sorted) whose value is >= x[i] (hi[i] if none):
    binary searches over many ranges at once, one numpy pass per halving."""
    lo, hi = lo.astype(np.int64), hi.astype(np.int64)
    live = np.flatnonzero(lo < hi)
    while live.size:
        mid = (lo[live] + hi[live]) >> 1
        below = a[mid].astype(np.int64) < x[live]
        lo[live[below]] = mid[below] + 1
        hi[live[~below]] = mid[~below]
        live = live[lo[live] < hi[live]]
    return lo


def _pack(hashes: np.ndarray, postings: np.ndarray) -> np.ndarray:
    """(hash, uint32 posting) pairs as one uint64 sort key: sorting it beats an argsort, in half the memory."""
    return (hashes.astype(np.uint64) << np.uint64(32)) | postings.astype(np.uint64)


def _run_from_keys(key: np.ndarray, csr_min: int) -> _Run:
    """Sort packed keys (in place) into a run."""
    key.sort()
    if sys.byteorder == "little":  # split without a uint64 temporary
        halves = key.view(np.uint32).reshape(-1, 2)
        ps, hs = halves[:, 0].copy(), halves[:, 1].copy()
    else:
        ps, hs = (key & np.uint64(_U32_LIMIT)).astype(np.uint32), (key >> np.uint64(32)).astype(np.uint32)
    return _finish_run(hs, ps, csr_min)


def _finish_run(hs: np.ndarray, ps: np.ndarray, csr_min: int) -> _Run:
    if ps.size < csr_min:
        return _Run(postings=ps, hashes=hs)
    counts = np.bincount(hs, minlength=_H)
    offsets = np.zeros(_H + 1, np.uint32 if ps.size <= _U32_LIMIT else np.int64)
    np.cumsum(counts, out=offsets[1:])
    return _Run(postings=ps, offsets=offsets)


def _build_run(hashes: np.ndarray, postings: np.ndarray, csr_min: int) -> _Run:
    """Sort (hash, posting) pairs by hash into a run."""
    if postings.dtype == np.uint32:
        return _run_from_keys(_pack(hashes, postings), csr_min)
    order = np.lexsort((postings, hashes))  # uint64 postings: past ~19,000 hours
    return _finish_run(hashes[order].astype(np.uint32), postings[order], csr_min)


# --- persistence: <directory>/manifest.json names the runs (one directory each, one .npy per array) and the slot
# table; every array is written, fsynced and its directory renamed into place before the manifest names it.

_FORMAT = 1
_SLOT_ARRAYS = {
    "bases": np.int64,
    "items": np.int64,
    "alive": np.bool_,
    "durations": np.float64,
    "counts": np.int64,
    "dead_h": np.int64,
    "dead_n": np.int64,
}


def _write_run(directory: Path, run: _Run) -> None:
    """Write `run` as `directory/<run.name>/`, then map its arrays back from there."""
    assert run.name is not None
    extra = {"offsets": run.offsets} if run.offsets is not None else {"hashes": run.hashes}
    write_part(directory, run.name, {"postings": run.postings, **extra})  # type: ignore[dict-item]
    mapped = _read_run(directory, run.name, run.offsets is not None, run.postings.dtype)
    run.postings, run.offsets, run.hashes = mapped.postings, mapped.offsets, mapped.hashes


def _load(path: Path, dtype: type | np.dtype, *, mapped: bool) -> np.ndarray:
    array = np.load(path, mmap_mode="r" if mapped else None, allow_pickle=False)
    if array.dtype != np.dtype(dtype) or array.ndim != 1:
        raise ValueError(f"{path.name}: {array.dtype} of {array.ndim} dimensions, not 1-D {np.dtype(dtype)}")
    return array


def _read_run(directory: Path, name: str, dense: bool, pdtype: type | np.dtype) -> _Run:
    folder = directory / name
    postings = _load(folder / "postings.npy", pdtype, mapped=True)
    if dense:
        offsets = np.load(folder / "offsets.npy", mmap_mode="r", allow_pickle=False)
        if offsets.shape != (_H + 1,) or offsets.dtype not in (np.uint32, np.int64):
            raise ValueError(f"run {name}: offsets of shape {offsets.shape}, {offsets.dtype}")
        if int(offsets[0]) != 0 or int(offsets[-1]) != postings.size:
            raise ValueError(f"run {name}: offsets do not span its {postings.size} postings")
        return _Run(postings=postings, offsets=offsets, name=name)
    hashes = _load(folder / "hashes.npy", np.uint32, mapped=True)
    if hashes.size != postings.size:
        raise ValueError(f"run {name}: {hashes.size} hashes for {postings.size} postings")
    return _Run(postings=postings, hashes=hashes, name=name)


def _read_state(directory: Path) -> tuple[list[_Run], dict[str, np.ndarray], dict[str, object]]:
    """(runs, slot arrays, manifest) of a persisted index, checked for consistency (cheap checks only: shapes,
    types, totals; a run's content is trusted, as its files were complete before the manifest named it)."""
    listing = json.loads((directory / MANIFEST).read_text())
    if listing.get("format") != _FORMAT or listing.get("audio_format") != FORMAT_VERSION:
        raise ValueError(
            f"format {listing.get('format')!r}/{listing.get('audio_format')!r}, not {_FORMAT}/{FORMAT_VERSION}"
        )
    if listing.get("hash_bits") != HASH_BITS or listing["postings_dtype"] not in ("uint32", "uint64"):
        raise ValueError("another hash layout or posting type")
    if listing.get("library_fanout") != LIBRARY_FANOUT:  # it holds other landmarks than an add would now
        raise ValueError(f"landmarks of fanout {listing.get('library_fanout')!r}, not {LIBRARY_FANOUT}")
    pdtype = np.dtype(listing["postings_dtype"])
    runs = []
    for entry in listing["runs"]:
        run = _read_run(directory, str(entry["name"]), bool(entry["dense"]), pdtype)
        if run.size != int(entry["postings"]):
            raise ValueError(f"run {entry['name']}: {run.size} postings, the manifest says {entry['postings']}")
        runs.append(run)
    folder = directory / str(listing["slots"])
    slots = {field: _load(folder / f"{field}.npy", dtype, mapped=False) for field, dtype in _SLOT_ARRAYS.items()}
    n = slots["bases"].size
    if any(slots[f].size != n for f in ("items", "alive", "durations", "counts")):
        raise ValueError("slot arrays of different lengths")
    if slots["dead_h"].size != slots["dead_n"].size:
        raise ValueError("dead tallies of different lengths")
    next_base = int(listing["next_base"])
    if n and (np.any(np.diff(slots["bases"]) <= 0) or int(slots["bases"][-1]) >= next_base):
        raise ValueError("slot bases out of order")
    # The runs hold at most the postings of every slot (removed slots' are dropped by merges).
    if sum(r.size for r in runs) > int(slots["counts"].sum()):
        raise ValueError("more postings than the slots hold")
    return runs, slots, listing


class AudioIndex(AudioIndexBase):
    """The production audio index (see module doc)."""

    def __init__(
        self,
        speeds: tuple[float, ...] = DEFAULT_SPEEDS,
        *,
        scan: tuple[float, ...] = SCAN_SPEEDS,
        csr_min: int = CSR_MIN,
        pending_max: int = PENDING_MAX,
        merge_max: int = MERGE_MAX,
    ) -> None:
        super().__init__(speeds, scan)
        self._csr_min, self._pending_max, self._merge_max = csr_min, pending_max, merge_max
        self._runs: list[_Run] = []
        self._pending_h: list[np.ndarray] = []
        self._pending_p: list[np.ndarray] = []
        self._pending_n = 0
        self._pdtype: type[np.unsignedinteger] = np.uint32
        self._next_base = 0
        # Slot tables: slot = position in these arrays, in timeline order; capacity doubles as they fill.
        self._n_slots = 0
        self._base_cap = np.zeros(0, np.int64)
        self._item_cap = np.zeros(0, np.int64)
        self._alive_cap = np.zeros(0, bool)
        self._duration_cap = np.zeros(0, np.float64)
        self._count_cap = np.zeros(0, np.int64)  # postings per slot
        self._slot_of: dict[int, int] = {}
        self._dead_postings = 0
        # Removed items' postings still in the runs, per hash: sorted distinct hashes and their counts (sparse:
        # removals are rare, and a dense table would cost 16 MB for the first one). Slots removed since the last
        # tally wait in `_untallied`: one pass over the runs then counts them all.
        self._dead_h = np.zeros(0, np.int64)
        self._dead_n = np.zeros(0, np.int64)
        self._untallied: list[int] = []
        self._directory: Path | None = None  # where `save` persists the index (see `attach`)
        self._dirty = False  # changed since the last save

    # --- building ---------------------------------------------------------------------------------------

    def add(self, item_id: int, fingerprint: AudioFingerprint) -> None:
        self.add_landmarks(item_id, *fingerprint.library_landmarks(), fingerprint.duration)

    def add_landmarks(self, item_id: int, hashes: np.ndarray, times: np.ndarray, duration: float) -> None:
        """Add an item from raw landmark arrays (bulk loads and benchmarks skip the fingerprint object)."""
        if hashes.shape != times.shape or hashes.ndim != 1:
            raise ValueError("hashes and times must be 1-D arrays of the same length")
        if hashes.size and int(hashes.max()) >= _H:
            raise ValueError(f"landmark hashes must be < 2^{HASH_BITS}")
        item_id = int(item_id)
        if item_id in self._slot_of:
            self.remove(item_id)
        base = self._next_base
        length = int(times.max()) + 1 if times.size else 1
        self._next_base = base + length + _SLOT_GAP
        if self._next_base > _U32_LIMIT and self._pdtype == np.uint32:
            self._widen()
        slot = self._new_slot(base, item_id, float(duration), int(times.size))
        self._slot_of[item_id] = slot
        self._dirty = True
        if times.size:
            self._pending_h.append(np.asarray(hashes, np.uint32))
            self._pending_p.append((times.astype(np.int64) + base).astype(self._pdtype))
            self._pending_n += int(times.size)
            if self._pending_n >= self._pending_max:
                self.flush()

    def _widen(self) -> None:
        """The timeline outgrew uint32 postings: switch every run to uint64 (rare: ~19,000 hours)."""
        self._pdtype = np.uint64
        self._dirty = True
        for run in self._runs:
            run.postings = run.postings.astype(np.uint64)
            run.name = None  # rewritten at the next save
        self._pending_p = [p.astype(np.uint64) for p in self._pending_p]

    def remove(self, item_id: int) -> None:
        slot = self._slot_of.pop(int(item_id), None)
        if slot is None:
            return
        self._alive_cap[slot] = False
        self._dirty = True
        self._dead_postings += int(self._count_cap[slot])
        self._untallied.append(slot)

    def _new_slot(self, base: int, item_id: int, duration: float, count: int) -> int:
        slot = self._n_slots
        if slot == self._base_cap.size:
            cap = max(64, 2 * slot)
            self._base_cap = np.resize(self._base_cap, cap)
            self._item_cap = np.resize(self._item_cap, cap)
            self._alive_cap = np.resize(self._alive_cap, cap)
            self._duration_cap = np.resize(self._duration_cap, cap)
            self._count_cap = np.resize(self._count_cap, cap)
        self._base_cap[slot], self._item_cap[slot], self._alive_cap[slot] = base, item_id, True
        self._duration_cap[slot], self._count_cap[slot] = duration, count
        self._n_slots += 1
        return slot

    @property
    def _bases(self) -> np.ndarray:
        return self._base_cap[: self._n_slots]

    @property
    def _slot_item(self) -> np.ndarray:
        return self._item_cap[: self._n_slots]

    @property
    def _slot_alive(self) -> np.ndarray:
        return self._alive_cap[: self._n_slots]

    def _alive_mask(self, postings: np.ndarray) -> np.ndarray:
        slot = np.searchsorted(self._bases, postings.astype(np.int64), "right") - 1
        return self._slot_alive[slot]

    def flush(self) -> None:
        """Turn pending additions into a run now (a search does it anyway), merging runs of similar size."""
        self._tally()  # while every run is in place: merges below drop dead postings
        if self._pending_n:
            h = np.concatenate(self._pending_h)
            p = np.concatenate(self._pending_p)
            self._pending_h, self._pending_p, self._pending_n = [], [], 0
            if self._dead_postings:  # dead pending postings never reach a run: never counted as dead
                keep = self._alive_mask(p)
                h, p = h[keep], p[keep]
            if p.size:
                self._runs.append(_build_run(h, p, self._csr_min))
        while (
            len(self._runs) >= 2
            and 2 * self._runs[-1].size >= self._runs[-2].size
            and self._runs[-1].size + self._runs[-2].size <= self._merge_max
        ):
            b, a = self._runs.pop(), self._runs.pop()
            self._runs.append(self._merge([a, b]))
            self._dirty = True

    def _merge(self, runs: list[_Run]) -> _Run:
        """One run holding the live postings of `runs` (consecutive runs, in timeline order), in linear time.

        Runs cover disjoint, increasing stretches of the timeline (a run is made of the items added since the
        previous one, and only neighbours merge), so a hash's postings in the merged run are its postings in each
        run, one run after the other: every posting's place follows from the per-hash counts, and nothing is
        sorted. Done over slices of the hash range (about _MERGE_CHUNK postings each), so the transient memory
        stays small however big the runs are; mapped runs are read in sequence.
        """
        total = sum(r.size for r in runs)
        out = np.empty(total, self._pdtype)
        counts = np.zeros(_H, np.int64)
        dropped: list[np.ndarray] = []
        at = 0
        chunks = max(1, -(-total // _MERGE_CHUNK))
        edges = np.linspace(0, _H, chunks + 1).astype(np.int64).tolist()
        for h0, h1 in itertools.pairwise(edges):
            parts: list[tuple[np.ndarray, np.ndarray]] = []
            for run in runs:
                lo, hi = run.bounds(h0, h1)
                if lo == hi:
                    continue
                p = np.asarray(run.postings[lo:hi])
                h = run.hashes_between(h0, h1, lo, hi)
                if self._dead_postings:
                    keep = self._alive_mask(p)
                    if not keep.all():
                        dropped.append(h[~keep])
                        p, h = p[keep], h[keep]
                parts.append((p, np.bincount(h - np.uint32(h0), minlength=h1 - h0)))
            if not parts:
                continue
            chunk = np.sum([c for _, c in parts], axis=0)
            start = at + np.cumsum(chunk) - chunk  # where each hash's postings begin in `out`
            for p, c in parts:
                dest = np.repeat(start - (np.cumsum(c) - c), c) + np.arange(p.size)
                out[dest] = p
                start += c
            counts[h0:h1] = chunk
            at += int(chunk.sum())
        if dropped:
            self._forget_dead(np.concatenate(dropped))
        if at < total:
            out = out[:at].copy()
        if at < self._csr_min:
            return _Run(postings=out, hashes=np.repeat(np.arange(_H, dtype=np.uint32), counts))
        offsets = np.zeros(_H + 1, np.uint32 if at <= _U32_LIMIT else np.int64)
        np.cumsum(counts, out=offsets[1:])
        return _Run(postings=out, offsets=offsets)

    def _tally(self) -> None:
        """Count the postings that slots removed since the last tally still have in the runs into `_dead_*`.

        Called by `flush` (which every merge and `compact` go through first) and before counting, while every run
        is in place, so the table always matches the runs.
        """
        if not self._untallied:
            return
        untallied, self._untallied = sorted(set(self._untallied)), []
        # A slot's postings are one range of the timeline: a few removals cost two compares a posting each.
        ends = np.append(self._bases[1:], self._next_base)
        spans = [(int(self._bases[slot]), int(ends[slot])) for slot in untallied]
        slots = np.zeros(self._n_slots, bool)
        slots[untallied] = True
        found = []
        for run in self._runs:
            if len(spans) <= 8:
                mine = np.zeros(run.size, bool)
                for lo, hi in spans:
                    mine |= (run.postings >= lo) & (run.postings < hi)
            else:
                mine = slots[np.searchsorted(self._bases, run.postings.astype(np.int64), "right") - 1]
            where = np.flatnonzero(mine)
            if where.size:
                found.append(run.hashes_at(where).astype(np.int64))
        if found:
            self._add_dead(np.concatenate(found), 1)

    def _forget_dead(self, hashes: np.ndarray) -> None:
        """Dead postings were dropped from the runs: they no longer need subtracting."""
        self._add_dead(hashes.astype(np.int64), -1)

    def _add_dead(self, hashes: np.ndarray, sign: int) -> None:
        if hashes.size == 0:
            return
        values = np.concatenate([self._dead_h, hashes])
        weights = np.concatenate([self._dead_n, np.full(hashes.size, sign, np.int64)])
        values, inverse = np.unique(values, return_inverse=True)
        counts = np.bincount(inverse, weights, minlength=values.size).astype(np.int64)
        nonzero = counts != 0
        self._dead_h, self._dead_n = values[nonzero], counts[nonzero]

    def compact(self) -> None:
        """Drop removed items' postings and rebuild the runs (bounded by the merge size)."""
        self.flush()
        runs, self._runs = self._runs, []
        groups: list[list[_Run]] = []
        for run in runs:
            if groups and sum(r.size for r in groups[-1]) + run.size <= self._merge_max:
                groups[-1].append(run)
            else:
                groups.append([run])
        self._runs = [self._merge(g) if len(g) > 1 or self._dead_postings else g[0] for g in groups]
        self._runs = [r for r in self._runs if r.size]
        self._dead_postings = 0
        self._dirty = True
        assert not self._dead_h.size and not self._untallied  # every dead posting went

    # --- persistence ------------------------------------------------------------------------------------


    def attach(self, directory: Path | str) -> set[int]:
        """Load the index persisted in `directory` (its runs memory-mapped: nothing is rebuilt or read in whole),
        and make `save` write there. Returns the item ids loaded. Call on an empty index.

        The directory is a cache of what the caller also keeps elsewhere (the library's fingerprint blobs): one
        that does not load (damaged, another format or analysis version) is logged and ignored, and the caller
        adds what the index then lacks.
        """
        if len(self) or self._runs or self._n_slots:
            raise ValueError("attach() needs an empty index")
        directory = Path(directory)
        self._directory = directory
        with directory_lock(directory):
            if not (directory / MANIFEST).exists():
                return set()
            try:
                state = _read_state(directory)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("audio index in %s not loaded (%s): rebuilding it", directory, exc)
                return set()
        runs, slots, scalars = state
        self._runs = runs
        self._pdtype = np.uint64 if scalars["postings_dtype"] == "uint64" else np.uint32
        self._next_base = int(scalars["next_base"])
        self._dead_postings = int(scalars["dead_postings"])
        self._n_slots = slots["bases"].size
        self._base_cap, self._item_cap = slots["bases"], slots["items"]
        self._alive_cap, self._duration_cap, self._count_cap = slots["alive"], slots["durations"], slots["counts"]
        self._dead_h, self._dead_n = slots["dead_h"], slots["dead_n"]
        live = np.flatnonzero(self._alive_cap)
        self._slot_of = dict(zip(self._item_cap[live].tolist(), live.tolist(), strict=True))
        self._dirty = False
        return set(self._slot_of)

    def save(self) -> None:
        """Persist the index into the attached directory, if it changed: pending items become a run, new runs are
        written (runs are immutable: an existing one is never rewritten; a merge writes a new one), then the slot
        table (small: item, base, alive, duration per item) and the manifest naming all of them replace the old
        ones, and what the manifest no longer names is deleted. A run just written is mapped back from its files,
        so the heap does not keep a second copy."""
        if self._directory is None:
            return
        self.flush()
        if not self._dirty:
            return
        directory = self._directory
        with directory_lock(directory):
            for run in self._runs:
                # A run another process's save deleted (its manifest did not name it) may still be mapped here.
                if run.name is None or not (directory / run.name).is_dir():
                    run.name = run.name or f"run-{uuid.uuid4().hex}"
                    _write_run(directory, run)
            slots_name = f"slots-{uuid.uuid4().hex}"
            n = self._n_slots
            write_part(
                directory,
                slots_name,
                {
                    "bases": self._base_cap[:n],
                    "items": self._item_cap[:n],
                    "alive": self._alive_cap[:n],
                    "durations": self._duration_cap[:n],
                    "counts": self._count_cap[:n],
                    "dead_h": self._dead_h,
                    "dead_n": self._dead_n,
                },
            )
            listing = {
                "format": _FORMAT,
                "audio_format": FORMAT_VERSION,
                "hash_bits": HASH_BITS,
                "library_fanout": LIBRARY_FANOUT,
                "postings_dtype": np.dtype(self._pdtype).name,
                "next_base": self._next_base,
                "dead_postings": self._dead_postings,
                "slots": slots_name,
                "runs": [{"name": r.name, "postings": r.size, "dense": r.offsets is not None} for r in self._runs],
            }
            publish(directory, listing, {r.name for r in self._runs} | {slots_name})
        self._dirty = False

    def disk_bytes(self) -> int:
        """Bytes of the persisted files (0 when not attached)."""
        if self._directory is None or not self._directory.exists():
            return 0
        return sum(f.stat().st_size for f in self._directory.rglob("*.npy"))

    # --- searching --------------------------------------------------------------------------------------

    def _counts(self, hashes: np.ndarray) -> np.ndarray:
        self.flush()
        q = hashes.astype(np.intp)
        n = np.zeros(q.size, np.int64)
        for run in self._runs:
            lo, hi = run.ranges(q)
            n += hi - lo
        self._tally()
        if self._dead_h.size:
            at = np.minimum(np.searchsorted(self._dead_h, q), self._dead_h.size - 1)
            n -= np.where(self._dead_h[at] == q, self._dead_n[at], 0)
        return n

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
        self.flush()
        if items is not None:
            return self._item_hits(hashes, times, items)
        q = hashes.astype(np.intp)
        # A hit's key is its global offset (item base + reference frame - query frame: a copy piles its hits on one
        # value), each group (the speed scan's hypotheses) on its own stretch of the number line: one pass for all.
        bias = -times.astype(np.int64)
        if groups is not None:
            bias += groups.astype(np.int64) << _GROUP_SHIFT
        keys: list[np.ndarray] = []
        ends: list[np.ndarray] = []
        for run in self._runs:
            lo, hi = run.ranges(q)
            n = hi - lo
            total = int(n.sum())
            if total == 0:
                continue
            # Position of each hit: its range start + its rank within the range.
            end = np.cumsum(n)
            pos = np.repeat(lo - (end - n), n)
            pos += np.arange(total)
            key = run.postings[pos].astype(np.int64)
            key += np.repeat(bias, n)
            keys.append(key)
            ends.append(end)
        if not keys:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        key = keys[0] if len(keys) == 1 else np.concatenate(keys)
        hot = np.flatnonzero(_hot(key, min_votes, radius))
        # The query landmark of each kept hit: where its rank falls among its run's ends.
        q_idx = np.empty(hot.size, np.int64)
        first = 0
        for part, end in zip(keys, ends, strict=True):
            lo_, hi_ = np.searchsorted(hot, [first, first + part.size])
            q_idx[lo_:hi_] = np.searchsorted(end, hot[lo_:hi_] - first, "right")
            first += part.size
        g = key[hot] - bias[q_idx]
        slot = np.searchsorted(self._bases, g, "right") - 1
        alive = self._slot_alive[slot]
        if not alive.all():
            q_idx, g, slot = q_idx[alive], g[alive], slot[alive]
        return q_idx, self._slot_item[slot], g - times.astype(np.int64)[q_idx] - self._bases[slot]

    def _item_hits(
        self, hashes: np.ndarray, times: np.ndarray, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every hit in `items` only. Within a hash's range of a run, postings are sorted (runs are sorted by
        (hash, posting)), so an item's are one sub-range, found by binary search: the cost does not depend on
        how long the posting lists are."""
        slots = np.array([self._slot_of[int(i)] for i in items if int(i) in self._slot_of], np.int64)
        empty = np.zeros(0, np.int64)
        if slots.size == 0 or hashes.size == 0:
            return empty, empty, empty
        # An item's postings lie between its base and the next slot's base (or the end of the timeline).
        first = self._bases[slots]
        nxt = np.append(self._bases, self._next_base)[slots + 1]
        q = hashes.astype(np.int64)
        n_q, n_s = q.size, slots.size
        qs: list[np.ndarray] = []
        ss: list[np.ndarray] = []
        gs: list[np.ndarray] = []
        for run in self._runs:
            lo, hi = run.ranges(q)
            lo, hi = np.repeat(lo, n_s), np.repeat(hi, n_s)  # pairs (query landmark, slot), slot fastest
            a = _bisect_left(run.postings, lo, hi, np.tile(first, n_q))
            b = _bisect_left(run.postings, a, hi, np.tile(nxt, n_q))
            n = b - a
            total = int(n.sum())
            if total == 0:
                continue
            starts = np.cumsum(n) - n
            pair = np.repeat(np.arange(n.size), n)
            qs.append(pair // n_s)
            ss.append(slots[pair % n_s])
            gs.append(run.postings[np.repeat(a - starts, n) + np.arange(total)])
        if not qs:
            return empty, empty, empty
        q_idx, slot = np.concatenate(qs), np.concatenate(ss)
        rel = np.concatenate(gs).astype(np.int64) - self._bases[slot] - times.astype(np.int64)[q_idx]
        return q_idx, self._slot_item[slot], rel

    def _durations(self, item_ids: np.ndarray) -> dict[int, float]:
        return {int(i): float(self._duration_cap[self._slot_of[int(i)]]) for i in item_ids}

    def _library_seconds(self) -> float:
        return math.fsum(self._duration_cap[: self._n_slots][self._slot_alive].tolist())  # exact: any order agrees

    # --- bookkeeping ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._slot_of

    @property
    def n_postings(self) -> int:
        return sum(r.size for r in self._runs) + self._pending_n

    @property
    def n_runs(self) -> int:
        return len(self._runs)

    def memory_bytes(self) -> int:
        caps = (self._base_cap, self._item_cap, self._alive_cap, self._duration_cap, self._count_cap)
        caps += (self._dead_h, self._dead_n)
        pending = sum(a.nbytes for a in self._pending_h) + sum(a.nbytes for a in self._pending_p)
        # The item id -> slot dict: ~100 bytes an entry in CPython.
        return sum(r.nbytes for r in self._runs) + sum(a.nbytes for a in caps) + pending + 100 * len(self._slot_of)
