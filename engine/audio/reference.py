"""Brute-force audio index: compares the query's hashes with every item's, one item at a time. The oracle."""

from __future__ import annotations

import numpy as np

from .base import DEFAULT_SPEEDS, AudioIndexBase
from .fingerprint import AudioFingerprint

_CHUNK = 1 << 22  # bound the query x item comparison matrix


class ReferenceAudioIndex(AudioIndexBase):
    def __init__(self, speeds: tuple[float, ...] = DEFAULT_SPEEDS) -> None:
        super().__init__(speeds)
        self._items: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}

    def add(self, item_id: int, fingerprint: AudioFingerprint) -> None:
        self.add_landmarks(item_id, fingerprint.hashes, fingerprint.times, fingerprint.duration)

    def add_landmarks(self, item_id: int, hashes: np.ndarray, times: np.ndarray, duration: float) -> None:
        self._items[int(item_id)] = (np.asarray(hashes), np.asarray(times), float(duration))

    def remove(self, item_id: int) -> None:
        self._items.pop(int(item_id), None)

    def __len__(self) -> int:
        return len(self._items)

    def memory_bytes(self) -> int:
        return sum(h.nbytes + t.nbytes for h, t, _ in self._items.values())

    def _durations(self, item_ids: np.ndarray) -> dict[int, float]:
        return {int(i): self._items[int(i)][2] for i in item_ids}

    def _hits(self, hashes: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        qs: list[np.ndarray] = []
        its: list[np.ndarray] = []
        rels: list[np.ndarray] = []
        step = max(1, _CHUNK // max(hashes.size, 1))
        for item_id, (r_hash, r_time, _) in self._items.items():
            for j in range(0, r_hash.size, step):
                qi, ri = np.nonzero(hashes[:, None] == r_hash[None, j : j + step])
                qs.append(qi)
                its.append(np.full(qi.size, item_id, np.int64))
                rels.append(r_time[j + ri].astype(np.int64) - times[qi].astype(np.int64))
        if not qs:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(qs), np.concatenate(its), np.concatenate(rels)
