"""Dense verification of one query against one reference item (or a window of it): frame matches -> segments.

Both indexes end here, so they agree by construction: the fast index only decides *which* items (and which
stretches of them) are worth this exact comparison; the reference index compares every item in full.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.core import ItemMatch
from engine.video.align import AlignParams, Background, align
from engine.video.fingerprint import VideoFingerprint
from engine.video.frame_features import N_BITS

MATCH_BITS = 12  # a frame pair within this Hamming distance (of 64) is a match
TOP_K = 6  # matches kept per query frame (static shots match many reference frames equally)
_CHUNK = 4096  # reference frames compared at once...
_BLOCK = 1 << 19  # ...and (query frames x columns x reference frames) distances computed at once


@dataclass(frozen=True, slots=True)
class RefFrames:
    """What verification needs of a reference item: frame times, central-window hashes, duration, step."""

    times: np.ndarray
    codes: np.ndarray
    duration: float
    step: float


def frame_scores(distances: np.ndarray) -> np.ndarray:
    """Hamming distance -> similarity in [0, 1]: 1 identical, 0 at chance level (half the bits)."""
    return np.clip(1.0 - distances / (N_BITS / 2), 0.0, 1.0)


def best_window(query: np.ndarray, codes: np.ndarray) -> int:
    """The query column (crop window x mirror) that matches `codes` best, summed over query frames."""
    n, columns = query.shape
    nearest = np.full(query.shape, N_BITS, dtype=np.uint8)
    # Blocks of query frames x reference frames small enough to stay in cache: one (frames, columns, codes)
    # block for everything is memory-bound (hundreds of columns make it tens of MB) and many times slower.
    rows = max(1, _BLOCK // (columns * max(min(len(codes), _CHUNK), 1)))
    for i in range(0, n, rows):
        part = query[i : i + rows, :, None]
        for j in range(0, len(codes), _CHUNK):
            block = np.bitwise_count(part ^ codes[None, None, j : j + _CHUNK])
            np.minimum(nearest[i : i + rows], block.min(axis=2), out=nearest[i : i + rows])
    gain = np.maximum(MATCH_BITS + 1 - nearest.astype(np.int32), 0).sum(axis=0)
    return int(np.argmax(gain))  # ties -> the earliest column: unmirrored, least cropped


def match_item(query: VideoFingerprint, item_id: int, ref: RefFrames, params: AlignParams | None = None,
               library_frames: int = 0) -> ItemMatch | None:  # fmt: skip
    """Segments of `ref` the query copies, or None."""
    if len(query) == 0 or len(ref.codes) == 0:
        return None
    hashes = query.query_hashes()
    column = hashes[:, best_window(hashes, ref.codes)]
    distances = np.bitwise_count(column[:, None] ^ ref.codes[None, :])  # (n, m)
    k = min(TOP_K, distances.shape[1])
    nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(len(column)), k)
    cols = nearest.ravel()
    d = distances[rows, cols]
    hit = d <= MATCH_BITS
    if not hit.any():
        return None
    rows, cols, d = rows[hit], cols[hit], d[hit]
    segments = align(
        query.times[rows],
        ref.times[cols],
        frame_scores(d.astype(np.float64)),
        query_units=query.times,
        q_step=query.step,
        r_step=ref.step,
        q_duration=query.duration,
        r_duration=ref.duration,
        params=params,
        library_frames=library_frames,
        # Every query frame against every reference frame (this column): where else each match could have gone.
        background=Background(
            query.times.astype(np.float64),
            ref.times.astype(np.float64),
            lambda i, j: frame_scores(distances[i, j].astype(np.float64)),
        ),
    )
    return ItemMatch(item_id, segments) if segments else None


def rank(matches: list[ItemMatch], max_items: int) -> list[ItemMatch]:
    """Best first: similarity, then how much of the query is covered, then id (deterministic)."""
    matches.sort(key=lambda m: (-m.similarity, -sum(s.input_duration for s in m.segments), m.item_id))
    return matches[:max_items]
