"""What the fast and the reference audio indexes share: the search driver over speed hypotheses."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from engine.core import ItemMatch, ModalityIndex

from .alignment import Candidate, QueryLandmarks, candidates_from_hits, resolve
from .fingerprint import AudioFingerprint
from .params import DT_BITS

# Playback-speed hypotheses tried for every query (1.0 = as is). Pitch and tempo change together, as when a
# file is resampled or a tape runs fast; each hypothesis re-hashes the query's peaks at that speed. One
# hypothesis tolerates about +-0.3 % (a hash bin is 7.8 Hz: 0.3 % of 2 kHz is 6 Hz), so SPEED_GRID covers
# +-3 % in 0.5 % steps, at 13x the search cost: an option, not the default.
DEFAULT_SPEEDS: tuple[float, ...] = (1.0,)
SPEED_GRID: tuple[float, ...] = tuple(round(1.0 + 0.005 * k, 3) for k in range(-6, 7))
_DT_MASK = (1 << DT_BITS) - 1


class AudioIndexBase(ModalityIndex[AudioFingerprint]):
    """Searches by looking up hits for each speed hypothesis and aligning them (`alignment`)."""

    def __init__(self, speeds: tuple[float, ...] = DEFAULT_SPEEDS) -> None:
        self.speeds = speeds

    @abstractmethod
    def _hits(self, hashes: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query landmark index, item id, reference frame - query frame) for every equal-hash pair."""

    @abstractmethod
    def _durations(self, item_ids: np.ndarray) -> dict[int, float]: ...

    def add_many(self, items: list[tuple[int, AudioFingerprint]]) -> None:
        for item_id, fp in items:
            self.add(item_id, fp)

    def search(self, query: AudioFingerprint, *, max_items: int = 20) -> list[ItemMatch]:
        candidates: list[Candidate] = []
        for speed in self.speeds:
            hashes, times = query.landmarks_at_speed(speed)
            if hashes.size == 0:
                continue
            q_idx, item, rel = self._hits(hashes, times)
            if q_idx.size == 0:
                continue
            ends = times.astype(np.int64) + (hashes & _DT_MASK)
            ql = QueryLandmarks(times=times, ends=ends, duration=query.duration, speed=speed)
            candidates += candidates_from_hits(ql, q_idx, item, rel, self._durations(np.unique(item)))
        return resolve(candidates, max_items)
