"""Brute-force audio search: joins the query's hashes with every item's, one item at a time.

It returns every hit (no pre-filter) and counts postings from scratch: what `AudioIndex` must agree with.
`AudioModality.search_all` runs it over a `LinearScanIndex`'s items, which makes it the audio oracle.
"""

from __future__ import annotations

import math

import numpy as np

from .alignment import MIN_VOTES, OFFSET_TOL
from .base import DEFAULT_SPEEDS, SCAN_SPEEDS, AudioIndexBase
from .fingerprint import AudioFingerprint


class ReferenceAudioIndex(AudioIndexBase):
    def __init__(self, speeds: tuple[float, ...] = DEFAULT_SPEEDS, *, scan: tuple[float, ...] = SCAN_SPEEDS) -> None:
        super().__init__(speeds, scan)
        self._items: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}

    def add(self, item_id: int, fingerprint: AudioFingerprint) -> None:
        self.add_landmarks(item_id, *fingerprint.library_landmarks(), fingerprint.duration)

    def add_landmarks(self, item_id: int, hashes: np.ndarray, times: np.ndarray, duration: float) -> None:
        self.remove(item_id)
        self._items[int(item_id)] = (np.asarray(hashes), np.asarray(times), float(duration))

    def remove(self, item_id: int) -> None:
        self._items.pop(int(item_id), None)

    def __len__(self) -> int:
        return len(self._items)

    def memory_bytes(self) -> int:
        return sum(h.nbytes + t.nbytes for h, t, _ in self._items.values())

    def _durations(self, item_ids: np.ndarray) -> dict[int, float]:
        return {int(i): self._items[int(i)][2] for i in item_ids}

    def _library_seconds(self) -> float:
        return math.fsum(d for _, _, d in self._items.values())  # exact: the fast index's sum agrees

    def _counts(self, hashes: np.ndarray) -> np.ndarray:
        every = [h for h, _, _ in self._items.values()]
        if not every:
            return np.zeros(hashes.size, np.int64)
        values, counts = np.unique(np.concatenate(every).astype(np.int64), return_counts=True)
        at = np.minimum(np.searchsorted(values, hashes.astype(np.int64)), values.size - 1)
        return np.where(values[at] == hashes, counts[at], 0).astype(np.int64)

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
        qs: list[np.ndarray] = []
        its: list[np.ndarray] = []
        rels: list[np.ndarray] = []
        wanted = None if items is None else {int(i) for i in items}
        q = hashes.astype(np.int64)
        for item_id, (r_hash, r_time, _) in self._items.items():
            if wanted is not None and item_id not in wanted:
                continue
            # Every (query landmark, item landmark) pair with equal hashes: the item's sorted, then ranges.
            order = np.argsort(r_hash, kind="stable")
            sorted_h = r_hash[order].astype(np.int64)
            lo, hi = np.searchsorted(sorted_h, q, "left"), np.searchsorted(sorted_h, q, "right")
            n = hi - lo
            qi = np.repeat(np.arange(q.size), n)
            ri = order[np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))]
            qs.append(qi)
            its.append(np.full(qi.size, item_id, np.int64))
            rels.append(r_time[ri].astype(np.int64) - times[qi].astype(np.int64))
        if not qs:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(qs), np.concatenate(its), np.concatenate(rels)
