"""The brute-force text index: compares the query against every item's fingerprints directly. The oracle the
inverted index is tested against; it shares the alignment, so any disagreement is a retrieval bug."""

from __future__ import annotations

import numpy as np

from engine.core import ItemMatch, ModalityIndex
from engine.text.align import collect
from engine.text.fingerprint import TextFingerprint


def pair_hits(query: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) with `query[i] == ref[j]`, by comparing all pairs in blocks."""
    q_parts: list[np.ndarray] = []
    r_parts: list[np.ndarray] = []
    block = max(1, 4_000_000 // max(1, len(ref)))
    for start in range(0, len(query), block):
        equal = query[start : start + block, None] == ref[None, :]
        qi, ri = np.nonzero(equal)
        q_parts.append(qi + start)
        r_parts.append(ri)
    if not q_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(q_parts).astype(np.int64), np.concatenate(r_parts).astype(np.int64)


class ReferenceTextIndex(ModalityIndex[TextFingerprint]):
    def __init__(self) -> None:
        self._fingerprints: dict[int, TextFingerprint] = {}

    def add(self, item_id: int, fingerprint: TextFingerprint) -> None:
        self._fingerprints[item_id] = fingerprint

    def remove(self, item_id: int) -> None:
        self._fingerprints.pop(item_id, None)

    def search(self, query: TextFingerprint, *, max_items: int = 20) -> list[ItemMatch]:
        hits = {}
        for item_id, fingerprint in self._fingerprints.items():
            qi, ri = pair_hits(query.hashes, fingerprint.hashes)
            if len(qi):
                hits[item_id] = (qi, ri)
        return collect(query, hits, self._fingerprints, max_items)

    def __len__(self) -> int:
        return len(self._fingerprints)

    def memory_bytes(self) -> int:
        return sum(fp.resident_bytes() for fp in self._fingerprints.values())
