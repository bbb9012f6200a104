"""The fast video index: multi-index hashing over numpy arrays, then the same dense verification as the oracle.

Search runs in two stages:
1. Candidates. Each stored frame hash has four keys, one per table: key c is the `key_bits` bits that start at
   bit 16c (wrapping round), so 16-bit keys are the four disjoint chunks and longer ones overlap the next chunk.
   A table is the frames sorted by key + bucket offsets (a CSR inverted list). A query frame hash, for each crop
   window and its mirror, looks up its four keys: any stored frame sharing one key exactly is fetched, and kept
   if its full Hamming distance is within the match threshold. Kept pairs vote for (item, time offset) bins; an
   item whose best bin gathers enough distinct query frames is a candidate. Huge buckets (frequent, uninformative
   hashes) are skipped like stop words. Short queries (an image) have few frames to vote with, so they also probe
   key values one bit away. Long queries look each crop window up on every few frames only (a copy's crop is the
   same throughout).

   Key length grows with the block (`key_bits_for`): 16 bits up to 2^16 x BUCKET_FRAMES = 524,288 frames (~70 h
   at 2 frames/s), then one more bit each time the block doubles (17 at 100 h, 20 at 1,000 h, at most
   MAX_KEY_BITS), so a bucket holds 4-8 frames (17 at 10,000 h, at the cap) and a lookup costs about the same at
   any size: each frame it finds is one random read of its hash, which is why no bucket "screen" is kept (it cost
   16 B a frame). The rule trades recall per frame pair for that: a pair d bits apart shares a given b-bit key
   with probability C(64 - b, d) / C(64, d), against C(48, d) / C(64, d) at 16 bits: x0.58 at d = 6 and x0.38 at
   d = 10 for 20 bits (1,000 h), x0.43 and x0.22 for 22 bits (10,000 h). The many frames of a long copy absorb
   it (and verification decides the report, with the evidence it needs growing with the library anyway);
   libraries under ~70 h (every block under the threshold) keep 16-bit keys and exactly the earlier answers.
2. Verification: `matching.match_item` on each candidate, restricted to the reference stretches its strong bins
   point at (plus margins), exactly as the brute-force index does on whole items.

Items live in immutable blocks (arrays + tables). `add` queues; the queue becomes a block at the next search
(or `flush`); small blocks are merged so a search visits few. `remove` marks an item dead in its block;
blocks are rebuilt when too much of them is dead. `add_many` builds one block for a bulk load.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.core import ItemMatch, ModalityIndex
from engine.index_files import MANIFEST, directory_lock, publish, write_part
from engine.video.fingerprint import VideoFingerprint
from engine.video.matching import MATCH_BITS, RefFrames, match_item, rank

log = logging.getLogger(__name__)

CHUNKS = 4
CHUNK_BITS = 16  # keys start every 16 bits, and are at least this long
MAX_KEY_BITS = 22  # 4 x 2^22 bucket offsets = 64 MiB (from ~2,300 h on): 3% of a 10,000 h block
BUCKET_FRAMES = 8  # frames a bucket holds at most on average: what a block's key length aims at (`key_bits_for`)
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


def key_bits_for(frames: int) -> int:
    """Key length of a block of `frames` frames: the shortest that leaves at most BUCKET_FRAMES frames a bucket
    on average (more than half that), within CHUNK_BITS..MAX_KEY_BITS bits."""
    wanted = int(np.ceil(np.log2(max(frames, 1) / BUCKET_FRAMES)))
    return int(np.clip(wanted, CHUNK_BITS, MAX_KEY_BITS))


def _keys(codes: np.ndarray, chunk: int, bits: int) -> np.ndarray:
    """Key `chunk` of each hash: its `bits` bits from bit 16 * chunk on, wrapping round (int64)."""
    shift = np.uint64(CHUNK_BITS * chunk)
    rotated = (codes >> shift) | (codes << (np.uint64(64) - shift)) if chunk else codes
    return (rotated & np.uint64((1 << bits) - 1)).astype(np.int64)


def _probes(bits: int) -> np.ndarray:
    """XOR masks of a multi-probe lookup: the key itself, then its 1-bit flips."""
    return np.r_[0, 1 << np.arange(bits)].astype(np.int64)


@dataclass(slots=True, eq=False)  # identity semantics: blocks are compared with `is`
class _Block:
    item_ids: np.ndarray  # (k,) int64
    bounds: np.ndarray  # (k + 1,) int64: item i owns frames bounds[i]:bounds[i + 1]
    durations: np.ndarray  # (k,) float64
    steps: np.ndarray  # (k,) float32
    alive: np.ndarray  # (k,) bool, always in memory (a persisted block keeps its dead ids in the manifest)
    codes: np.ndarray  # (N,) uint64
    times: np.ndarray  # (N,) float32
    # (CHUNKS, N) each: per table, frame numbers sorted by key, as their low 16 bits (uint16) and the rest (uint8
    # while a block holds under 2^24 frames, ~2,300 h; uint16 beyond). 24 bytes a frame in all (hash, time, 4 x 3
    # table bytes): what a library holds, in memory or mapped from disk.
    order_lo: np.ndarray
    order_hi: np.ndarray
    starts: np.ndarray  # (CHUNKS, 2^key_bits + 1) int32: bucket offsets into the order arrays
    name: str | None = None  # its directory once persisted

    @property
    def key_bits(self) -> int:
        return (self.starts.shape[1] - 1).bit_length() - 1

    @property
    def frames(self) -> int:
        return len(self.codes)

    @property
    def dead_frames(self) -> int:
        sizes = np.diff(self.bounds)
        return int(sizes[~self.alive].sum())

    def nbytes(self) -> int:
        arrays = [self.item_ids, self.bounds, self.durations, self.steps, self.alive, self.codes, self.times,
                  self.order_lo, self.order_hi, self.starts]  # fmt: skip
        return sum(a.nbytes for a in arrays)

    def frames_at(self, chunk: int, positions: np.ndarray) -> np.ndarray:
        """Frame numbers (int64) at `positions` of table `chunk`."""
        high = self.order_hi[chunk][positions].astype(np.int64) << 16
        return high | self.order_lo[chunk][positions]

    def owner(self, frames: np.ndarray) -> np.ndarray:
        """Row of the item owning each frame number (frames of one item are contiguous)."""
        return np.searchsorted(self.bounds, frames, "right") - 1

    def ref(self, row: int, windows: list[tuple[float, float]]) -> RefFrames:
        """The item's frames within the (sorted, disjoint) time `windows`."""
        lo, hi = int(self.bounds[row]), int(self.bounds[row + 1])
        times = self.times[lo:hi]
        parts = [
            np.arange(np.searchsorted(times, t0, "left"), np.searchsorted(times, t1, "right")) for t0, t1 in windows
        ]
        pick = np.concatenate(parts) if parts else np.empty(0, np.int64)
        return RefFrames(np.asarray(times[pick]), np.asarray(self.codes[lo + pick]), float(self.durations[row]),
                         float(self.steps[row]))  # fmt: skip


SMALL_BLOCK_FRAMES = 1 << 24  # frame numbers of a block this small fit in 3 bytes (uint16 + uint8)


def _high_dtype(frames: int) -> type[np.unsignedinteger]:
    """The dtype of the high part of a block's frame numbers."""
    return np.uint8 if frames <= SMALL_BLOCK_FRAMES else np.uint16


# Mapped from disk, never read in whole (bucket offsets too: 16 MiB at 1,000 h, 64 MiB from ~2,300 h on).
_BIG = ("codes", "times", "order_lo", "order_hi", "starts")
_SMALL = ("item_ids", "bounds", "durations", "steps")


def _stable_order(keys: np.ndarray, bits: int) -> np.ndarray:
    """`np.argsort(keys, kind="stable")`, as radix passes over 16 bits (NumPy's stable sort of 16-bit integers is a
    radix sort; of wider ones a merge sort, ~2x slower on a large block)."""
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    if bits > 16:
        order = order[np.argsort((keys[order] >> 16).astype(np.uint16), kind="stable")]
    return order


def _build(item_ids: list[int], times: list[np.ndarray], codes: list[np.ndarray], durations: list[float],
           steps: list[float], key_bits: int | None = None) -> _Block:  # fmt: skip
    sizes = np.array([len(t) for t in times], dtype=np.int64)
    all_codes = np.concatenate(codes) if codes else np.empty(0, np.uint64)
    bits = key_bits or key_bits_for(len(all_codes))
    if len(all_codes) >= 1 << 31:
        raise ValueError("a video index block holds fewer than 2^31 frames")  # int32 bucket offsets
    order_lo = np.empty((CHUNKS, len(all_codes)), dtype=np.uint16)
    order_hi = np.empty((CHUNKS, len(all_codes)), dtype=_high_dtype(len(all_codes)))
    starts = np.empty((CHUNKS, (1 << bits) + 1), dtype=np.int32)
    for c in range(CHUNKS):
        keys = _keys(all_codes, c, bits).astype(np.uint32)
        order = _stable_order(keys, bits)
        order_lo[c], order_hi[c] = order & 0xFFFF, order >> 16
        starts[c] = np.r_[0, np.cumsum(np.bincount(keys, minlength=1 << bits))]
    return _Block(
        item_ids=np.array(item_ids, dtype=np.int64),
        bounds=np.r_[0, np.cumsum(sizes)].astype(np.int64),
        durations=np.array(durations, dtype=np.float64),
        steps=np.array(steps, dtype=np.float32),
        alive=np.ones(len(item_ids), dtype=bool),
        codes=all_codes,
        times=np.concatenate(times).astype(np.float32) if times else np.empty(0, np.float32),
        order_lo=order_lo,
        order_hi=order_hi,
        starts=starts,
    )


_FORMAT = 2  # 1: 16-bit keys, int32 table entries and a 32-bit bucket screen (20 B a frame more)


def _write_block(directory: Path, block: _Block) -> None:
    """Write `block` as `directory/<name>/` (one .npy per array), atomically by renaming a finished directory."""
    assert block.name is not None
    write_part(directory, block.name, {field: getattr(block, field) for field in (*_BIG, *_SMALL)})


def _read_block(directory: Path, name: str, dead: list[int]) -> _Block:
    arrays = {f: np.load(directory / name / f"{f}.npy", mmap_mode="r", allow_pickle=False) for f in _BIG}
    arrays |= {f: np.load(directory / name / f"{f}.npy", allow_pickle=False) for f in _SMALL}
    frames = len(arrays["codes"])
    buckets = arrays["starts"].shape[-1] - 1
    shapes_ok = (
        arrays["order_lo"].shape == arrays["order_hi"].shape == (CHUNKS, frames)
        and arrays["order_lo"].dtype == np.uint16
        and arrays["order_hi"].dtype == _high_dtype(frames)
        and len(arrays["times"]) == frames
        and arrays["starts"].shape == (CHUNKS, buckets + 1)
        and buckets.bit_count() == 1
        and CHUNK_BITS <= buckets.bit_length() - 1 <= MAX_KEY_BITS
        and len(arrays["bounds"]) == len(arrays["item_ids"]) + 1
        and int(arrays["bounds"][-1]) == frames
    )
    if not shapes_ok:
        raise ValueError(f"block {name}: inconsistent array shapes")
    alive = ~np.isin(arrays["item_ids"], np.array(dead, dtype=np.int64))
    return _Block(alive=alive, name=name, **arrays)


def _ranges(starts: np.ndarray, ends: np.ndarray, tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the integer ranges [starts[i], ends[i]): (positions, tags[i] of each position). Positions are
    intp: they index two table arrays, and NumPy converts other index types for every gather."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, np.intp), np.empty(0, tags.dtype)
    # position = k + (starts[i] - first k of range i), k running over all positions
    shift = starts - (np.cumsum(lengths) - lengths)
    return np.arange(total, dtype=np.intp) + np.repeat(shift, lengths), np.repeat(tags, lengths)


class VideoIndex(ModalityIndex[VideoFingerprint]):
    def __init__(self, *, max_bucket: int = 8192, key_bits: int | None = None) -> None:
        """`key_bits`: the key length of every block built here (tests), instead of `key_bits_for` its size."""
        if key_bits is not None and not CHUNK_BITS <= key_bits <= MAX_KEY_BITS:
            raise ValueError(f"key_bits must be within {CHUNK_BITS}..{MAX_KEY_BITS}")
        self._key_bits = key_bits
        self._blocks: list[_Block] = []
        self._where: dict[int, tuple[_Block, int]] = {}  # item id -> (block, row)
        self._pending: dict[int, VideoFingerprint] = {}
        self._max_bucket = max_bucket
        self._directory: Path | None = None  # where `save` persists the blocks (see `attach`)
        self._dirty = False  # blocks or dead items changed since the last save

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
            self._install(_build(ids, times, codes, durations, steps, self._key_bits))

    def remove(self, item_id: int) -> None:
        self._pending.pop(item_id, None)
        placed = self._where.pop(item_id, None)
        if placed is not None:
            block, row = placed
            block.alive[row] = False
            self._dirty = True

    def flush(self) -> None:
        """Turn queued additions into a block and keep the block count low."""
        if self._pending:
            pending, self._pending = self._pending, {}
            fps = list(pending.values())
            self._install(_build(list(pending), [f.times for f in fps], [f.canonical for f in fps],
                                 [f.duration for f in fps], [f.step for f in fps], self._key_bits))  # fmt: skip
        heavy = [b for b in self._blocks if b.dead_frames > b.frames // 3]
        if heavy or len(self._blocks) > _MAX_BLOCKS:
            # Size-tiered: rewrite the heavily dead blocks and, when there are too many, all but the biggest.
            biggest = max(self._blocks, key=lambda b: b.frames)
            merge = [b for b in self._blocks if b in heavy or (len(self._blocks) > _MAX_BLOCKS and b is not biggest)]
            self._merge(merge)

    def _install(self, block: _Block) -> None:
        self._dirty = True
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
        self._dirty = True
        if ids:
            self._install(_build(ids, times, codes, durations, steps, self._key_bits))

    # -- persistence ------------------------------------------------------------------------------------------


    def attach(self, directory: Path | str) -> set[int]:
        """Load the blocks persisted in `directory` (memory-mapped: nothing is rebuilt or read in whole), and make
        `save` write there. Returns the item ids loaded. Call on an empty index.

        The directory is a cache of what the caller also keeps elsewhere (the library's fingerprint blobs): one
        that does not load is logged and ignored, and the caller adds what the index then lacks.
        """
        if len(self):
            raise ValueError("attach() needs an empty index")
        directory = Path(directory)
        self._directory = directory
        with directory_lock(directory):
            manifest = directory / MANIFEST
            if not manifest.exists():
                return set()
            try:
                listing = json.loads(manifest.read_text())
                if listing.get("format") != _FORMAT:
                    raise ValueError(f"format {listing.get('format')!r}, not {_FORMAT}")
                blocks = [_read_block(directory, entry["name"], entry["dead"]) for entry in listing["blocks"]]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("video index in %s not loaded (%s): rebuilding it", directory, exc)
                return set()
        self._blocks = blocks
        for block in blocks:  # an id dead in one block may live in another (re-added): only live rows count
            for row in np.flatnonzero(block.alive):
                self._where[int(block.item_ids[row])] = (block, int(row))
        self._dirty = False
        return set(self._where)

    def save(self) -> None:
        """Persist the index into the attached directory, if it changed: queued items become a block, new blocks
        are written (blocks are immutable: an existing one is never rewritten), then the manifest naming the
        blocks and their dead items replaces the old one, and blocks it no longer names are deleted."""
        if self._directory is None:
            return
        self.flush()
        if not self._dirty:
            return
        directory = self._directory
        with directory_lock(directory):
            for block in self._blocks:
                # A block another process's save deleted (its manifest did not name it) is still mapped here.
                if block.name is None or not (directory / block.name).is_dir():
                    block.name = block.name or uuid.uuid4().hex
                    _write_block(directory, block)
            listing = {
                "format": _FORMAT,
                "blocks": [
                    {"name": b.name, "dead": b.item_ids[~b.alive].tolist(), "frames": b.frames} for b in self._blocks
                ],
            }
            publish(directory, listing, {b.name for b in self._blocks})
        self._dirty = False

    def disk_bytes(self) -> int:
        """Bytes of the persisted blocks (0 when not attached)."""
        if self._directory is None or not self._directory.exists():
            return 0
        return sum(f.stat().st_size for f in self._directory.rglob("*.npy"))

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
        # A short query (an image, a few seconds) has few frames to vote: probe every key value one bit away too,
        # which (16-bit keys, pigeonhole over 4 disjoint chunks) finds every stored frame within 7 bits instead of 3.
        bits = block.key_bits
        probes = _probes(bits) if len(query) <= SHORT_QUERY else _probes(bits)[:1]
        found_l, found_f, found_d = [], [], []
        for c in range(CHUNKS):
            keys = (_keys(flat, c, bits)[:, None] ^ probes[None, :]).ravel()
            lo, hi = block.starts[c][keys].astype(np.int64), block.starts[c][keys + 1].astype(np.int64)
            small = np.flatnonzero((hi - lo) <= self._max_bucket)
            # which (frame, column) hash found each position
            pos, lookup = _ranges(lo[small], hi[small], small // len(probes))
            # Exact distance from the looking-up hash; windows that share a key find a frame several times, and
            # the vote below counts a query frame once. Buckets hold ~BUCKET_FRAMES frames: few random reads.
            frames = block.frames_at(c, pos)
            dist = np.bitwise_count(flat[lookup] ^ block.codes[frames])
            near = dist <= MATCH_BITS
            found_f.append(frames[near])
            found_l.append(lookup[near])
            found_d.append(dist[near])
        f_idx = np.concatenate(found_f).astype(np.int64)
        owners = block.owner(f_idx)
        alive = block.alive[owners]
        q_idx = pick[np.concatenate(found_l)[alive]] // columns
        f_idx, dist = f_idx[alive], np.concatenate(found_d)[alive]
        if len(q_idx) == 0:
            return []
        rows = owners[alive].astype(np.int64)
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
