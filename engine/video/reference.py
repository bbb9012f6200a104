"""The brute-force video index: every query is verified against every item in full. The oracle for tests."""

from __future__ import annotations

from engine.core import ItemMatch, ModalityIndex
from engine.video.fingerprint import VideoFingerprint
from engine.video.matching import RefFrames, match_item, rank


class ReferenceVideoIndex(ModalityIndex[VideoFingerprint]):
    def __init__(self) -> None:
        self._items: dict[int, RefFrames] = {}

    def add(self, item_id: int, fingerprint: VideoFingerprint) -> None:
        self._items[item_id] = RefFrames(
            fingerprint.times.copy(), fingerprint.canonical.copy(), fingerprint.duration, fingerprint.step
        )

    def remove(self, item_id: int) -> None:
        self._items.pop(item_id, None)

    def search(self, query: VideoFingerprint, *, max_items: int = 20) -> list[ItemMatch]:
        found = [m for item_id, ref in self._items.items() if (m := match_item(query, item_id, ref))]
        return rank(found, max_items)

    def __len__(self) -> int:
        return len(self._items)

    def memory_bytes(self) -> int:
        return sum(r.times.nbytes + r.codes.nbytes + 64 for r in self._items.values()) + 64 * len(self._items)
