"""Chromaprint (AcoustID) as an audio peer: `fpcalc -raw` fingerprints, matched by a port of the library's own
`FingerprintMatcher::Match` (chromaprint `src/fingerprint_matcher.cpp`, 1.5), which finds aligned segments.

The matcher, as written there:
1. Histogram of offsets between the two fingerprints over all item pairs whose top 12 bits agree; its local peaks
   with a count > 1 are alignments, best first, and only the best one is examined.
2. At that offset, the bit errors of each aligned item pair are smoothed (Gaussian, sigma 8 items, 3 box passes,
   reflected edges); peaks of |gradient| > 0.15 cut the overlap into pieces; a piece whose mean bit error is
   < 10 (`kDefaultMatchThreshold`) is a matched segment, merged into the previous one when their scores differ
   by < 0.7.
The one departure: the C++ adds up to 0.001 of `rand()` jitter to each bit count to break ties; it is left out so
that runs are reproducible. A query matches a reference when at least one segment is found.

Times: item i of the default algorithm starts at i x 1365.33 / 11025 s (a 4096-sample frame every 1/3 frame) and
depends on 20 frames (5 for the chroma filter, 16 for the widest classifier, sharing one): [t_i, t_i + 2.72 s).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np

from engine.evaluation.corpus import Reference
from engine.evaluation.peers import Availability, Prediction

ITEM_SECONDS = (4096 / 3) / 11025
ITEM_SPAN = (19 * 4096 / 3 + 4096) / 11025
MATCH_THRESHOLD = 10.0
ALIGN_BITS = 12
_POPCOUNT16 = np.array([bin(i).count("1") for i in range(1 << 16)], dtype=np.uint8)


def availability() -> Availability:
    fpcalc = shutil.which("fpcalc")
    if fpcalc is None:
        return Availability(False, "not installed (no fpcalc on PATH); run scripts/install_peers.sh")
    out = subprocess.run([fpcalc, "-version"], capture_output=True, text=True, check=False)
    return Availability(True, (out.stdout or out.stderr).strip().splitlines()[0] if out.stdout or out.stderr else "")


def fingerprint(path: Path) -> np.ndarray:
    """The raw (uint32) Chromaprint fingerprint of the whole file (`-length 0`: no 120 s cap)."""
    out = subprocess.run(
        ["fpcalc", "-raw", "-json", "-length", "0", str(path)], capture_output=True, text=True, check=False
    )
    # fpcalc exits non-zero on a harmless "End of file" decoder message while still printing the result.
    try:
        values = json.loads(out.stdout)["fingerprint"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise RuntimeError(f"fpcalc failed on {path}: {out.stderr.strip()}") from exc
    return np.asarray(values, dtype=np.int64).astype(np.uint32)


def _popcount(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint32)
    return (_POPCOUNT16[x & 0xFFFF] + _POPCOUNT16[x >> 16]).astype(np.float64)


def _c_round(x: float) -> int:
    """C's round(): halves away from zero (Python rounds them to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def _reflect(index: np.ndarray, size: int) -> np.ndarray:
    """chromaprint's ReflectIterator: ... 1 0 | 0 1 ... n-1 | n-1 n-2 ... (edge samples repeated)."""
    m = np.mod(index, 2 * size)
    return np.where(m < size, m, 2 * size - 1 - m)


def box_filter(x: np.ndarray, w: int) -> np.ndarray:
    """chromaprint's BoxFilter: mean over [i - w//2, i - w//2 + w) with reflected edges."""
    if w == 0 or len(x) == 0:
        return x.copy()
    wl = w // 2
    padded = x[_reflect(np.arange(-wl, len(x) - wl + w - 1), len(x))]
    sums = np.concatenate([[0.0], np.cumsum(padded)])
    return (sums[w : w + len(x)] - sums[: len(x)]) / w


def gaussian_filter(x: np.ndarray, sigma: float = 8.0, n: int = 3) -> np.ndarray:
    """chromaprint's GaussianFilter: n box passes of widths wl, then wl + 2, approximating a Gaussian."""
    w = math.floor(math.sqrt(12 * sigma * sigma / n + 1))
    wl = w - (1 if w % 2 == 0 else 0)
    wu = wl + 2
    m = _c_round((12 * sigma * sigma - n * wl * wl - 4 * n * wl - 3 * n) / (-4 * wl - 4))
    out = x.astype(np.float64)
    for i in range(n):
        out = box_filter(out, wl if i < m else wu)
    return out


def _gradient(x: np.ndarray) -> np.ndarray:
    if len(x) < 2:
        return np.zeros(len(x))
    return np.gradient(x)  # one-sided at the ends, central inside: chromaprint's Gradient


def match_segments(fp1: np.ndarray, fp2: np.ndarray) -> list[tuple[int, int, int, float]]:
    """`FingerprintMatcher::Match(fp1, fp2)`: segments (pos1, pos2, duration in items, mean bit errors)."""
    n1, n2 = len(fp1), len(fp2)
    if n1 == 0 or n2 == 0:
        return []
    top1, top2 = fp1 >> (32 - ALIGN_BITS), fp2 >> (32 - ALIGN_BITS)
    i, j = np.nonzero(top1[:, None] == top2[None, :])
    histogram = np.bincount(i + n2 - j, minlength=n1 + n2)
    left = np.concatenate([[-1], histogram[:-1]])
    right = np.concatenate([histogram[1:], [-1]])
    peaks = np.flatnonzero((histogram > 1) & (left <= histogram) & (right <= histogram))
    if len(peaks) == 0:
        return []
    best = max(peaks.tolist(), key=lambda k: (histogram[k], k))  # C++: pairs (count, offset) sorted descending
    diff = best - n2
    off1, off2 = max(diff, 0), max(-diff, 0)
    size = min(n1 - off1, n2 - off2)
    bits = _popcount(fp1[off1 : off1 + size] ^ fp2[off2 : off2 + size])
    gradient = np.abs(_gradient(gaussian_filter(bits)))
    cuts: list[int] = []
    for k in range(1, size - 1):
        g = gradient[k]
        if g > 0.15 and g >= gradient[k - 1] and g >= gradient[k + 1] and (not cuts or cuts[-1] + 1 < k):
            cuts.append(k)
    cuts.append(size)
    segments: list[tuple[int, int, int, float]] = []
    begin = 0
    for end in cuts:
        duration = end - begin
        score = float(bits[begin:end].mean())
        if score < MATCH_THRESHOLD:
            if segments and abs(segments[-1][3] - score) < 0.7:
                p1, p2, d, s = segments[-1]
                segments[-1] = (p1, p2, d + duration, (s * d + score * duration) / (d + duration))
            else:
                segments.append((off1 + begin, off2 + begin, duration, score))
        begin = end
    return segments


def segment_box(pos1: int, pos2: int, duration: int) -> tuple[float, float, float, float]:
    """Items [pos, pos + duration) of query (1) and reference (2) as a (qs, qe, rs, re) box in seconds."""
    span = (duration - 1) * ITEM_SECONDS + ITEM_SPAN
    return (pos1 * ITEM_SECONDS, pos1 * ITEM_SECONDS + span, pos2 * ITEM_SECONDS, pos2 * ITEM_SECONDS + span)


class ChromaprintPeer:
    name = "chromaprint"
    modality = "audio"
    localises = True

    def __init__(self) -> None:
        self._library: dict[str, np.ndarray] = {}

    def index(self, refs: list[Reference]) -> None:
        self._library = {ref.id: fingerprint(ref.path) for ref in refs}

    def predict(self, path: Path) -> list[Prediction]:
        query = fingerprint(path)
        found = []
        for ref_id, ref in self._library.items():
            segments = match_segments(query, ref)
            if segments:
                items = sum(d for _, _, d, _ in segments)
                score = 1.0 - sum(s * d for _, _, d, s in segments) / items / 32.0  # bits agreeing, as a share
                boxes = tuple(segment_box(p1, p2, d) for p1, p2, d, _ in segments)
                found.append(Prediction(ref_id, score=round(score, 4), boxes=boxes))
        return sorted(found, key=lambda p: -p.score)
