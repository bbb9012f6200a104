"""The fast video index: multi-index hashing over numpy arrays, then the same dense verification as the oracle.

Search runs in two stages:
1. Candidates. Every stored frame hash is split into four 16-bit chunks; each chunk has a table (frames sorted
   by chunk value + bucket offsets, i.e. a CSR inverted list). A query frame hash, for each crop window and its
   mirror, looks up its four chunks: any stored frame sharing one chunk exactly is fetched, and kept if its full
   Hamming distance is within the match threshold. Kept pairs vote for (item, time offset) bins; an item whose
   best bin gathers enough distinct query frames is a candidate. Cost grows with bucket sizes (library / 65536)
   rather than the library, and huge buckets (frequent, uninformative hashes) are skipped like stop words.
   Short queries (an image) have few frames to vote with, so they also probe chunk values one bit away. Long
   queries look each crop window up on every few frames only (a copy's crop is the same throughout).
2. Verification: `matching.match_item` on each candidate, restricted to the reference stretches its strong bins
   point at (plus margins), exactly as the brute-force index does on whole items.

Items live in immutable blocks (arrays + tables). `add` queues; the queue becomes a block at the next search
(or `flush`); small blocks are merged so a search visits few. `remove` marks an item dead in its block;
blocks are rebuilt when too much of them is dead. `add_many` builds one block for a bulk load.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from engine.core import ItemMatch, ModalityIndex
from engine.video.fingerprint import VideoFingerprint
from engine.video.matching import MATCH_BITS, RefFrames, match_item, rank

CHUNKS = 4
CHUNK_BITS = 16
_BUCKETS = 1 << CHUNK_BITS
_MASK = np.uint64(_BUCKETS - 1)
VOTE_BIN = 2.0  # s: offset bins of the vote
MIN_VOTES = 2  # distinct query frames agreeing on an (item, offset) to make it a candidate...
# ...for a query of STRIDE_FRAMES or more: its thousands of lookups (frames x crop windows) make two chance hits
# on one (item, offset) likely in a large library, while a copy in it has frames to spare.
LONG_MIN_VOTES = 3
MARGIN = 10.0  # s of reference verified around a voted stretch (room for speed change and segment growth)
_MAX_BLOCKS = 6
SHORT_QUERY = 8  # frames: queries this short are looked up with multi-probing
STRIDE_FRAMES = 24  # frames of query each crop window is looked up on, at least...
MAX_STRIDE = 2  # ...and on every other frame at least: a 3 s copy inside a long query still gets 3 looks per window
_PROBES = np.r_[0, 1 << np.arange(CHUNK_BITS)].astype(np.int64)  # XOR masks: the key itself, then 1-bit flips


@dataclass(slots=True, eq=False)  # identity semantics: blocks are compared with `is`
class _Block:
    item_ids: np.ndarray  # (k,) int64
    bounds: np.ndarray  # (k + 1,) int64: item i owns frames bounds[i]:bounds[i + 1]
    durations: np.ndarray  # (k,) float64
    steps: np.ndarray  # (k,) float32
    alive: np.ndarray  # (k,) bool
    codes: np.ndarray  # (N,) uint64
    times: np.ndarray  # (N,) float32
    owner: np.ndarray  # (N,) int32: row of the item owning each frame
    order: list[np.ndarray]  # per chunk: (N,) int32 frame numbers sorted by chunk value
    starts: list[np.ndarray]  # per chunk: (65537,) int64 bucket offsets into `order`
    # per chunk: `codes[order]`. Checking a bucket's full hashes then reads memory in sequence instead of jumping
    # around the library: 8 bytes a frame per chunk buy most of the search time back.
    sorted_codes: list[np.ndarray]

    @property
    def frames(self) -> int:
        return len(self.codes)

    @property
    def dead_frames(self) -> int:
        sizes = np.diff(self.bounds)
        return int(sizes[~self.alive].sum())

    def nbytes(self) -> int:
        arrays = [self.item_ids, self.bounds, self.durations, self.steps, self.alive, self.codes, self.times,
                  self.owner, *self.order, *self.starts, *self.sorted_codes]  # fmt: skip
        return sum(a.nbytes for a in arrays)

    def ref(self, row: int, windows: list[tuple[float, float]]) -> RefFrames:
        """The item's frames within the (sorted, disjoint) time `windows`."""
        lo, hi = int(self.bounds[row]), int(self.bounds[row + 1])
        times = self.times[lo:hi]
        parts = [
            np.arange(np.searchsorted(times, t0, "left"), np.searchsorted(times, t1, "right")) for t0, t1 in windows
        ]
        pick = np.concatenate(parts) if parts else np.empty(0, np.int64)
        return RefFrames(times[pick], self.codes[lo + pick], float(self.durations[row]), float(self.steps[row]))


def _build(item_ids: list[int], times: list[np.ndarray], codes: list[np.ndarray], durations: list[float],
           steps: list[float]) -> _Block:  # fmt: skip
    sizes = np.array([len(t) for t in times], dtype=np.int64)
    all_codes = np.concatenate(codes) if codes else np.empty(0, np.uint64)
    order, starts, sorted_codes = [], [], []
    for c in range(CHUNKS):
        keys = ((all_codes >> np.uint64(c * CHUNK_BITS)) & _MASK).astype(np.uint16)
        order.append(np.argsort(keys, kind="stable").astype(np.int32))
        starts.append(np.r_[0, np.cumsum(np.bincount(keys, minlength=_BUCKETS))].astype(np.int64))
        sorted_codes.append(all_codes[order[-1]])
    return _Block(
        item_ids=np.array(item_ids, dtype=np.int64),
        bounds=np.r_[0, np.cumsum(sizes)].astype(np.int64),
        durations=np.array(durations, dtype=np.float64),
        steps=np.array(steps, dtype=np.float32),
        alive=np.ones(len(item_ids), dtype=bool),
        codes=all_codes,
        times=np.concatenate(times).astype(np.float32) if times else np.empty(0, np.float32),
        owner=np.repeat(np.arange(len(item_ids), dtype=np.int32), sizes),
        order=order,
        starts=starts,
        sorted_codes=sorted_codes,
    )


def _ranges(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the integer ranges [starts[i], ends[i]): (positions, index i of each position)."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    which = np.repeat(np.arange(len(starts)), lengths)
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return starts[which] + offsets, which


class VideoIndex(ModalityIndex[VideoFingerprint]):
    def __init__(self, *, max_bucket: int = 8192) -> None:
        self._blocks: list[_Block] = []
        self._where: dict[int, tuple[_Block, int]] = {}  # item id -> (block, row)
        self._pending: dict[int, VideoFingerprint] = {}
        self._max_bucket = max_bucket

    # -- maintenance ------------------------------------------------------------------------------------------

    def add(self, item_id: int, fingerprint: VideoFingerprint) -> None:
        self.remove(item_id)
        self._pending[item_id] = fingerprint.reference_only()

    def add_many(self, items: Iterable[tuple[int, VideoFingerprint]]) -> None:
        """Bulk load: one block for all of `items` (ids already present are replaced)."""
        ids: list[int] = []
        times, codes, durations, steps = [], [], [], []
        for item_id, fp in items:
            self.remove(item_id)
            ids.append(item_id)
            times.append(fp.times)
            codes.append(fp.canonical.copy())
            durations.append(fp.duration)
            steps.append(fp.step)
        if ids:
            self._install(_build(ids, times, codes, durations, steps))

    def remove(self, item_id: int) -> None:
        self._pending.pop(item_id, None)
        placed = self._where.pop(item_id, None)
        if placed is not None:
            block, row = placed
            block.alive[row] = False

    def flush(self) -> None:
        """Turn queued additions into a block and keep the block count low."""
        if self._pending:
            pending, self._pending = self._pending, {}
            fps = list(pending.values())
            self._install(_build(list(pending), [f.times for f in fps], [f.canonical for f in fps],
                                 [f.duration for f in fps], [f.step for f in fps]))  # fmt: skip
        heavy = [b for b in self._blocks if b.dead_frames > b.frames // 3]
        if heavy or len(self._blocks) > _MAX_BLOCKS:
            # Size-tiered: rewrite the heavily dead blocks and, when there are too many, all but the biggest.
            biggest = max(self._blocks, key=lambda b: b.frames)
            merge = [b for b in self._blocks if b in heavy or (len(self._blocks) > _MAX_BLOCKS and b is not biggest)]
            self._merge(merge)

    def _install(self, block: _Block) -> None:
        self._blocks.append(block)
        for row, item_id in enumerate(block.item_ids.tolist()):
            self._where[item_id] = (block, row)

    def _merge(self, blocks: list[_Block]) -> None:
        ids, times, codes, durations, steps = [], [], [], [], []
        for block in blocks:
            for row in np.flatnonzero(block.alive):
                lo, hi = int(block.bounds[row]), int(block.bounds[row + 1])
                ids.append(int(block.item_ids[row]))
                times.append(block.times[lo:hi])
                codes.append(block.codes[lo:hi])
                durations.append(float(block.durations[row]))
                steps.append(float(block.steps[row]))
        self._blocks = [b for b in self._blocks if all(b is not m for m in blocks)]
        if ids:
            self._install(_build(ids, times, codes, durations, steps))

    def __len__(self) -> int:
        return len(self._where) + len(self._pending)

    def memory_bytes(self) -> int:
        pending = sum(f.times.nbytes + f.hashes.nbytes for f in self._pending.values())
        return sum(b.nbytes() for b in self._blocks) + pending + 120 * len(self._where)

    # -- search -----------------------------------------------------------------------------------------------

    def _votes(self, block: _Block, query: VideoFingerprint) -> list[tuple[int, list[float]]]:
        """Candidate rows of `block` with the offsets (s) their strong vote bins point at, best first."""
        hashes = query.query_hashes()  # (n, columns)
        n, columns = hashes.shape
        # A copy is cropped the same way throughout, so a long query need not look every window up on every frame:
        # frame i tries the windows j with (i + j) % stride == 0, each window still meets every stride-th frame.
        # Lookups then cost what a few dozen windows would, however many the query carries.
        stride = min(MAX_STRIDE, max(1, n // STRIDE_FRAMES))
        pick = np.flatnonzero(((np.arange(n)[:, None] + np.arange(columns)[None, :]) % stride == 0).ravel())
        flat = hashes.ravel()[pick]
        # A short query (an image, a few seconds) has few frames to vote: probe every chunk value one bit away
        # too, which finds every stored frame within 7 bits (pigeonhole over 4 chunks) instead of 3.
        probes = _PROBES if len(query) <= SHORT_QUERY else _PROBES[:1]
        found_l, found_f, found_d = [], [], []
        for c in range(CHUNKS):
            keys = ((flat >> np.uint64(c * CHUNK_BITS)) & _MASK).astype(np.int64)
            keys = (keys[:, None] ^ probes[None, :]).ravel()
            lo, hi = block.starts[c][keys], block.starts[c][keys + 1]
            small = np.flatnonzero((hi - lo) <= self._max_bucket)
            pos, which = _ranges(lo[small], hi[small])
            lookup = small[which] // len(probes)  # which (frame, column) hash found it
            # Exact distance from the looking-up hash; windows that share a chunk find a frame several times,
            # and the vote below counts a query frame once.
            dist = np.bitwise_count(flat[lookup] ^ block.sorted_codes[c][pos])
            near = dist <= MATCH_BITS
            found_f.append(block.order[c][pos[near]])
            found_l.append(lookup[near])
            found_d.append(dist[near])
        f_idx = np.concatenate(found_f).astype(np.int64)
        alive = block.alive[block.owner[f_idx]]
        q_idx = pick[np.concatenate(found_l)[alive]] // columns
        f_idx, dist = f_idx[alive], np.concatenate(found_d)[alive]
        if len(q_idx) == 0:
            return []
        rows = block.owner[f_idx].astype(np.int64)
        offsets = block.times[f_idx].astype(np.float64) - query.times[q_idx]
        bins = np.floor(offsets / VOTE_BIN).astype(np.int64)
        base = int(bins.min())
        width = int(bins.max()) - base + 2
        # A bin's votes: distinct query frames, and distinct reference frames (a still shot's query frames all
        # find the same stray frame: that is one coincidence, not several); it also counts its right neighbour
        # (offsets near an edge).
        cell_of = rows * width + (bins - base)
        cells, by_query = np.unique(np.unique(cell_of * len(hashes) + q_idx) // len(hashes), return_counts=True)
        frames = len(block.codes)
        _, by_ref = np.unique(np.unique(cell_of * frames + f_idx) // frames, return_counts=True)
        counts = np.minimum(by_query, by_ref)
        after = np.minimum(np.searchsorted(cells, cells + 1), len(cells) - 1)
        strength = counts + np.where(cells[after] == cells + 1, counts[after], 0)
        strong = strength >= min(MIN_VOTES if n < STRIDE_FRAMES else LONG_MIN_VOTES, n)
        if not strong.any():
            return []
        # Rank items by their best bin, then by their closest frame (what tells single-frame queries apart).
        closest = np.full(len(block.item_ids), 255, dtype=np.int64)
        np.minimum.at(closest, rows, dist.astype(np.int64))
        cell_rows = cells[strong] // width
        cell_offsets = (cells[strong] % width + base) * VOTE_BIN
        best = np.zeros(len(block.item_ids), dtype=np.int64)
        np.maximum.at(best, cell_rows, strength[strong])
        ranked = sorted(set(cell_rows.tolist()), key=lambda row: (-best[row], closest[row], row))
        offsets_of: dict[int, list[float]] = {row: [] for row in ranked}
        for row, off in zip(cell_rows.tolist(), cell_offsets.tolist(), strict=True):
            offsets_of[row].append(off)
        return [(row, offsets_of[row]) for row in ranked]

    def search(self, query: VideoFingerprint, *, max_items: int = 20) -> list[ItemMatch]:
        self.flush()
        if len(query) == 0:
            return []
        budget = max(3 * max_items, 30)  # candidates verified: enough to survive false leads
        candidates: list[tuple[_Block, int, list[float]]] = []
        for block in self._blocks:
            candidates.extend((block, row, offs) for row, offs in self._votes(block, query)[:budget])
        found: list[ItemMatch] = []
        library_frames = sum(int(np.diff(b.bounds)[b.alive].sum()) for b in self._blocks)
        span = float(query.times[-1]) + query.step
        margin = MARGIN + 0.25 * span
        for block, row, offsets in candidates:
            # Verify the union of the voted stretches of the reference (overlapping ones become one window).
            windows: list[tuple[float, float]] = []
            for off in sorted(offsets):
                lo, hi = off - margin, off + 2 * VOTE_BIN + span + margin
                if windows and lo <= windows[-1][1]:
                    windows[-1] = (windows[-1][0], hi)
                else:
                    windows.append((lo, hi))
            match = match_item(query, int(block.item_ids[row]), block.ref(row, windows), library_frames=library_frames)
            if match:
                found.append(match)
        return rank(found, max_items)
