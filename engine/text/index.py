"""The production text index: an inverted index from fingerprint hash to (item, position), held in sorted numpy
arrays instead of a dict of lists (a few bytes per posting instead of ~100, and vectorised lookups).

Adds land in a small sorted "delta" level that is merged into the main level once it grows past an eighth of it
(an LSM tree with two levels), so a library that alternates search and store never re-sorts everything per job.
Removals are tombstones until they are worth a compaction.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from engine.core import ItemMatch, ModalityIndex
from engine.text.align import collect
from engine.text.fingerprint import TextFingerprint
from engine.text.significance import DEFAULT_SIGNIFICANCE, Significance, df_weights

# A hash posted more often than this (over the live library) is boilerplate (licence text, a chorus in every song):
# it costs time, proposes candidates that better fingerprints propose anyway, and its document-frequency weight
# would be nil. It is left out of the search altogether; the linear-scan oracle applies the same rule.
MAX_POSTINGS_PER_HASH = 4096
_MIN_DELTA_MERGE = 65536


@dataclass(slots=True)
class _Level:
    hashes: np.ndarray  # uint64, sorted
    items: np.ndarray  # int64
    slots: np.ndarray  # int32: index into that item's fingerprint arrays

    @classmethod
    def empty(cls) -> _Level:
        return cls(np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int32))

    @classmethod
    def build(cls, parts: list[_Level]) -> _Level:
        parts = [p for p in parts if len(p.hashes)]
        if not parts:
            return cls.empty()
        hashes = np.concatenate([p.hashes for p in parts])
        order = np.argsort(hashes, kind="stable")
        return cls(
            hashes[order],
            np.concatenate([p.items for p in parts])[order],
            np.concatenate([p.slots for p in parts])[order],
        )

    def without(self, dead: np.ndarray) -> _Level:
        keep = ~np.isin(self.items, dead)
        return _Level(self.hashes[keep], self.items[keep], self.slots[keep])

    def ranges(self, query_hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`[lo, hi)` of each query hash's postings."""
        return np.searchsorted(self.hashes, query_hashes, "left"), np.searchsorted(self.hashes, query_hashes, "right")

    def lookup(self, lo: np.ndarray, hi: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The postings in `[lo, hi)` of the `wanted` query hashes: (query slot, item, item slot)."""
        counts = np.where(wanted, hi - lo, 0)
        total = int(counts.sum())
        if total == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32)
        query_slot = np.repeat(np.arange(len(lo), dtype=np.int64), counts)
        starts = np.cumsum(counts) - counts
        posting = np.repeat(lo, counts) + (np.arange(total, dtype=np.int64) - np.repeat(starts, counts))
        return query_slot, self.items[posting], self.slots[posting]

    @property
    def nbytes(self) -> int:
        return self.hashes.nbytes + self.items.nbytes + self.slots.nbytes


def group_hits(
    query_slot: np.ndarray, items: np.ndarray, item_slot: np.ndarray
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Hits split per item: {item: (query slots, item slots)}."""
    if len(items) == 0:
        return {}
    order = np.argsort(items, kind="stable")
    items, query_slot, item_slot = items[order], query_slot[order], item_slot[order]
    bounds = np.flatnonzero(np.diff(items)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(items)]))
    return {int(items[s]): (query_slot[s:e], item_slot[s:e]) for s, e in zip(starts, ends, strict=True)}


def document_frequency(query_slot: np.ndarray, items: np.ndarray, n_query: int) -> np.ndarray:
    """Per query fingerprint, the number of distinct library items among its postings."""
    if len(items) == 0:
        return np.zeros(n_query, dtype=np.int64)
    distinct_items, dense = np.unique(items, return_inverse=True)
    pairs = np.unique(query_slot.astype(np.int64) * len(distinct_items) + dense)  # one key per (slot, item)
    return np.bincount(pairs // len(distinct_items), minlength=n_query)


class TextIndex(ModalityIndex[TextFingerprint]):
    def __init__(self, significance: Significance = DEFAULT_SIGNIFICANCE) -> None:
        self.significance = significance
        self._fingerprints: dict[int, TextFingerprint] = {}
        self._main = _Level.empty()
        self._delta = _Level.empty()
        self._pending: list[_Level] = []
        self._dead: set[int] = set()  # removed items still present in the arrays
        self._dead_postings = 0
        self._dead_hashes: list[np.ndarray] = []  # every hash occurrence of the dead items, for live counts
        self._dead_sorted = False  # whether `_dead_hashes` is one sorted array
        self._lock = threading.Lock()  # search mutates (merges), so even readers serialise

    def add(self, item_id: int, fingerprint: TextFingerprint) -> None:
        with self._lock:
            if item_id in self._fingerprints or item_id in self._dead:
                self._remove_locked(item_id)
                self._compact_locked()  # the id's old postings must go before new ones arrive
            self._fingerprints[item_id] = fingerprint
            n = len(fingerprint.hashes)
            self._pending.append(
                _Level(fingerprint.hashes, np.full(n, item_id, np.int64), np.arange(n, dtype=np.int32))
            )

    def remove(self, item_id: int) -> None:
        with self._lock:
            self._remove_locked(item_id)
            if self._dead_postings > (len(self._main.hashes) + len(self._delta.hashes)) // 4:
                self._compact_locked()

    def _remove_locked(self, item_id: int) -> None:
        fingerprint = self._fingerprints.pop(item_id, None)
        if fingerprint is not None:
            self._dead.add(item_id)
            self._dead_postings += len(fingerprint.hashes)
            self._dead_hashes.append(fingerprint.hashes)
            self._dead_sorted = False

    def _compact_locked(self) -> None:
        if not self._dead:
            return
        dead = np.fromiter(self._dead, dtype=np.int64)
        self._main = self._main.without(dead)
        self._delta = self._delta.without(dead)
        self._pending = [p.without(dead) for p in self._pending]
        self._dead.clear()
        self._dead_postings = 0
        self._dead_hashes = []

    def _settle_locked(self) -> None:
        if self._pending:
            self._delta = _Level.build([self._delta, *self._pending])
            self._pending = []
        if len(self._delta.hashes) > max(_MIN_DELTA_MERGE, len(self._main.hashes) // 8):
            self._main = _Level.build([self._main, self._delta])
            self._delta = _Level.empty()

    def search(self, query: TextFingerprint, *, max_items: int = 20) -> list[ItemMatch]:
        with self._lock:
            self._settle_locked()
            levels = (self._main, self._delta)
            bounds = [level.ranges(query.hashes) for level in levels]
            live = sum(hi - lo for lo, hi in bounds)
            if self._dead_hashes:  # tombstoned postings are still in the arrays: count only the live ones
                if len(self._dead_hashes) > 1 or not self._dead_sorted:
                    self._dead_hashes = [np.sort(np.concatenate(self._dead_hashes))]
                    self._dead_sorted = True
                dead = self._dead_hashes[0]
                live = live - (
                    np.searchsorted(dead, query.hashes, "right") - np.searchsorted(dead, query.hashes, "left")
                )
            wanted = live <= MAX_POSTINGS_PER_HASH
            parts = [level.lookup(lo, hi, wanted) for level, (lo, hi) in zip(levels, bounds, strict=True)]
            query_slot = np.concatenate([p[0] for p in parts])
            items = np.concatenate([p[1] for p in parts])
            item_slot = np.concatenate([p[2] for p in parts])
            if self._dead and len(items):
                alive = ~np.isin(items, np.fromiter(self._dead, dtype=np.int64))
                query_slot, items, item_slot = query_slot[alive], items[alive], item_slot[alive]
            fingerprints = dict(self._fingerprints)
        weights = df_weights(document_frequency(query_slot, items, len(query.hashes)), self.significance)
        hits = group_hits(query_slot, items, item_slot)
        return collect(query, hits, fingerprints, max_items, weights, self.significance)

    def __len__(self) -> int:
        return len(self._fingerprints)

    def memory_bytes(self) -> int:
        arrays = self._main.nbytes + self._delta.nbytes + sum(p.nbytes for p in self._pending)
        texts = sum(fp.resident_bytes() for fp in self._fingerprints.values())
        return arrays + texts
