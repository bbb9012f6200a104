"""Meta's vPDQ (ThreatExchange; PyPI `vpdq`) as a video peer, matched by its documented rule.

vPDQ hashes one frame per second (the binding's default `seconds_per_hash=1.0`) with PDQ (256 bits + a quality
score). Its README's comparison, which treats both videos as unordered bags of unique frame hashes:

- frames of quality < F = 50 are dropped; a frame is matched if some frame of the other video lies within
  Hamming distance D = 31 (the README's pseudocode says `<= D`);
- q% / c% = share of the query's / the comparison (library) video's frames that are matched;
- match if c% >= P_c = 80 and q% >= P_q = 0 (the README's example thresholds).

That rule asks that 80% of the *library* video be present in the query, so it misses excerpts by design. The
`query80` variant (q% >= 80, c% >= 0) is the same comparison with the thresholds swapped: "80% of the upload is
found in one library video", which is what excerpt detection needs; both are reported. vPDQ gives no time
alignment, so it has no segment metric.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.evaluation.corpus import Reference
from engine.evaluation.peers import Availability, Prediction

DISTANCE = 31
QUALITY = 50
SECONDS_PER_HASH = 1.0
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    library_pct: float  # P_c
    query_pct: float  # P_q


DOCUMENTED = Rule("vpdq", library_pct=80.0, query_pct=0.0)
QUERY80 = Rule("vpdq-query80", library_pct=0.0, query_pct=80.0)


def availability() -> Availability:
    try:
        import vpdq  # noqa: F401
    except ImportError as exc:
        return Availability(False, f"not installed ({exc.msg}); run scripts/install_peers.sh")
    return Availability(True, f"vpdq {importlib.metadata.version('vpdq')}")


def frame_hashes(path: Path) -> np.ndarray:
    """(n, 32) uint8: the unique frame hashes of quality >= QUALITY (the README's `set(Q)`, then the filter)."""
    import vpdq

    features = vpdq.computeHash(str(path), seconds_per_hash=SECONDS_PER_HASH, thread_count=1)
    unique = sorted({f.hex for f in features if f.quality >= QUALITY})
    if not unique:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.frombuffer(b"".join(bytes.fromhex(h) for h in unique), dtype=np.uint8).reshape(-1, 32)


def match_percentages(query: np.ndarray, library: np.ndarray) -> tuple[float, float]:
    """(q%, c%): shares of each side's frames that have a frame of the other within DISTANCE."""
    if len(query) == 0 or len(library) == 0:
        return 0.0, 0.0
    distances = _POPCOUNT[query[:, None, :] ^ library[None, :, :]].sum(axis=2, dtype=np.int32)
    close = distances <= DISTANCE
    return 100.0 * close.any(axis=1).mean(), 100.0 * close.any(axis=0).mean()


class VpdqPeer:
    """One rule's view of vPDQ; the hashes are computed once and shared by the rules (`shared`)."""

    modality = "video"
    localises = False

    def __init__(self, rule: Rule, shared: dict[str, np.ndarray] | None = None) -> None:
        self.rule = rule
        self.name = rule.name
        self._cache = shared if shared is not None else {}
        self._library: dict[str, np.ndarray] = {}

    def _hashes(self, path: Path) -> np.ndarray:
        key = str(path)
        if key not in self._cache:
            self._cache[key] = frame_hashes(path)
        return self._cache[key]

    def index(self, refs: list[Reference]) -> None:
        self._library = {ref.id: self._hashes(ref.path) for ref in refs}

    def predict(self, path: Path) -> list[Prediction]:
        query = self._hashes(path)
        found = []
        for ref_id, library in self._library.items():
            q_pct, c_pct = match_percentages(query, library)
            if c_pct >= self.rule.library_pct and q_pct >= self.rule.query_pct and (q_pct > 0 or c_pct > 0):
                found.append(Prediction(ref_id, score=round(c_pct if self.rule.library_pct else q_pct, 1), boxes=None))
        return sorted(found, key=lambda p: -p.score)
