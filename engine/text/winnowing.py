"""Winnowing (Schleimer, Wilkerson & Aiken, SIGMOD 2003) over character k-grams, vectorised with numpy.

Every k-gram of the normalised text is hashed; in each window of `w` consecutive hashes the minimum (rightmost on
ties) is selected. Any shared run of at least `w + k - 1` normalised characters is then guaranteed to share a
selected fingerprint, while only about `2 / (w + 1)` of the positions are kept.
"""

from __future__ import annotations

import numpy as np

# k = 10 characters: long enough that unrelated texts rarely share a k-gram (common English phrases are short
# once spaces are gone), short enough that 5% character edits leave ~60% of k-grams intact.
DEFAULT_K = 10
# w = 6: guarantee threshold w + k - 1 = 15 characters, density ~0.29 fingerprints per character.
DEFAULT_W = 6

_BASE = np.uint64(0x100000001B3)  # FNV prime: odd, spreads code points over the 64-bit ring


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: the polynomial hash is linear, and winnowing needs minima that look random."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def kgram_hashes(codes: np.ndarray, k: int = DEFAULT_K) -> np.ndarray:
    """uint64 hash of each k-gram `codes[i:i+k]` (length `len(codes) - k + 1`, empty when shorter than k)."""
    n = len(codes) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    values = codes.astype(np.uint64)
    acc = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        for j in range(k):
            acc = acc * _BASE + values[j : j + n]
        return _mix64(acc + np.uint64(k))


def winnow(hashes: np.ndarray, w: int = DEFAULT_W) -> tuple[np.ndarray, np.ndarray]:
    """Selected `(hashes, positions)`: the rightmost minimum of every window of `w` hashes, each once."""
    if len(hashes) == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    if len(hashes) <= w:
        # A text shorter than one window still gets its minimum, so short texts can be found at all.
        pos = np.array([len(hashes) - 1 - int(np.argmin(hashes[::-1]))], dtype=np.int64)
        return hashes[pos], pos
    n = len(hashes) - w + 1
    # Window minima by w shifted element-wise minimums (much faster than argmin over a strided view)...
    minima = hashes[:n].copy()
    for offset in range(1, w):
        np.minimum(minima, hashes[offset : offset + n], out=minima)
    # ...then the offset holding it, scanning left to right so the rightmost tie wins.
    offsets = np.zeros(n, dtype=np.int64)
    for offset in range(1, w):
        np.copyto(offsets, offset, where=hashes[offset : offset + n] == minima)
    positions = np.arange(n, dtype=np.int64) + offsets
    # Consecutive windows usually pick the same position; positions are non-decreasing so dedup is a diff.
    keep = np.ones(len(positions), dtype=bool)
    keep[1:] = positions[1:] != positions[:-1]
    positions = positions[keep]
    return hashes[positions], positions
