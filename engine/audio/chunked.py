"""`find_peaks` in bounded memory: the same peaks, bit for bit, computed a block of frames at a time.

Whole-file `find_peaks` holds the windowed frames, their complex spectra and several full-length spectrogram
copies at once: ~4 GB per hour of audio. Every step of it is local in time except one: the floor (the loudest
smoothed bin of the whole file minus FLOOR_DB). So this runs two passes over blocks of frames:
1. the spectrogram of each block (with one frame either side, for the 3-frame smoothing) → the global maximum;
2. each block again with a halo wide enough for every local step (smoothing 1 frame, local maxima PEAK_DT, the
   ±0.5 s density cap, the parabolic fit 1 frame), keeping only the peaks whose frame lies inside the block.
Peaks come out in block order, which is the global order (a peak's sub-frame time stays within half a frame of
its frame). The STFT is computed twice, yet this is faster than the whole-file version, which spends its time
faulting in gigabytes. Working memory is a few blocks' worth (~30 MB), whatever the duration.

Only the 3-frame smoothing is reproduced exactly block by block (`TIME_SMOOTH == 1`); any other setting, or an
input of up to WHOLE_FILE_FRAMES frames, runs the whole-file `find_peaks`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from engine.errors import MediaError

from .landmarks import (
    _BIN_HZ,
    _DENSITY_HALF,
    _LO,
    SUB,
    _box_mean,
    _density_cap,
    _parabola,
    _running_max,
    _smooth3,
    find_peaks,
    spectrogram_db,
)
from .params import CONTRAST_DB, FLOOR_DB, HASH_BIN_HZ, HOP, N_FFT, PEAK_DF, PEAK_DT, TIME_SMOOTH

BLOCK_FRAMES = 2048  # 33 s of frames: big enough to amortise the halo, small enough to stay in cache-ish memory
# Up to this many frames (131 s, ~150 MB of working memory) the whole-file version is as fast or faster.
WHOLE_FILE_FRAMES = 4 * BLOCK_FRAMES
# Frames either side a block needs: the density cap looks ±_DENSITY_HALF frames at candidates, which need
# ±PEAK_DT frames for their local maximum, whose values need ±1 frame for the smoothing.
_HALO = _DENSITY_HALF + PEAK_DT + 1


def _n_frames(size: int) -> int:
    return (max(size, N_FFT) - N_FFT) // HOP + 1


def _smoothed(x: np.ndarray, lo: int, hi: int, n: int) -> np.ndarray:
    """Rows [lo, hi) of the smoothed spectrogram of all `n` frames of `x`, exactly as `find_peaks` has them."""
    a, b = max(0, lo - 1), min(n, hi + 1)  # one more frame each side, where there is one
    s = _smooth3(spectrogram_db(x[a * HOP : (b - 1) * HOP + N_FFT]))
    # _smooth3 treats its first/last row as the file's ends; those rows are only kept where they really are.
    return s[lo - a : s.shape[0] - (b - hi)]


def find_peaks_chunked(
    x: np.ndarray, block: int = BLOCK_FRAMES, *, whole_file_frames: int = WHOLE_FILE_FRAMES
) -> tuple[np.ndarray, np.ndarray]:
    """Equal to `find_peaks(x)`, in working memory independent of the length of `x`."""
    x = np.asarray(x, dtype=np.float32)
    t, f, _ = stream_peaks(lambda: (x,), block=block, whole_file_frames=whole_file_frames)
    return t, f


# -- streaming: the same peaks from samples that arrive in blocks and are not kept ---------------------------


class _Window:
    """The samples of a stream from some frame on, addressed by global frame index."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []
        self._buf = np.zeros(0, np.float32)
        self.first = 0  # global index of the frame that starts at self._buf[0]
        self.samples_seen = 0

    def push(self, x: np.ndarray) -> None:
        self._parts.append(np.asarray(x, np.float32))
        self.samples_seen += x.size

    def _join(self) -> np.ndarray:
        if self._parts:
            self._buf = np.concatenate([self._buf, *self._parts])
            self._parts = []
        return self._buf

    def frames_available(self) -> int:
        """Global count of frames whose samples have all arrived."""
        return _n_frames(self.samples_seen) if self.samples_seen >= N_FFT else 0

    def frames(self, a: int, b: int) -> np.ndarray:
        """The samples of frames [a, b) (global indexes; all must have arrived and not been dropped)."""
        buf = self._join()
        return buf[(a - self.first) * HOP : (b - 1 - self.first) * HOP + N_FFT]

    def drop_before(self, frame: int) -> None:
        if frame > self.first:
            buf = self._join()
            self._buf = buf[(frame - self.first) * HOP :]  # a view: the next push's concatenation frees the rest
            self.first = frame


def _smoothed_rows(window: _Window, lo: int, hi: int, n: int) -> np.ndarray:
    """`_smoothed` over a `_Window`: rows [lo, hi) of the smoothed spectrogram of a stream of `n` frames (`n` may
    be any number > hi while the stream's length is unknown: only whether hi is its end matters)."""
    a, b = max(0, lo - 1), min(n, hi + 1)
    s = _smooth3(spectrogram_db(window.frames(a, b)))
    return s[lo - a : s.shape[0] - (b - hi)]


def _block_peaks(s: np.ndarray, a: int, lo: int, hi: int, n: int, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Peaks with frames in [lo, hi) from `s`, the smoothed spectrogram rows [a, a + len(s)) of an n-frame file."""
    b = a + s.shape[0]
    s = np.maximum(s, floor)
    local_max = _running_max(_running_max(s, PEAK_DF, axis=1), PEAK_DT, axis=0)
    contrast = s - _box_mean(s, 2 * PEAK_DF, axis=1)
    cand = (s >= local_max) & (contrast >= CONTRAST_DB) & (s > floor + 3.0)
    cand[:, 0] = cand[:, -1] = False
    # Local maxima within PEAK_DT of a cut edge (not a file end) saw a truncated window: not used.
    if a > 0:
        cand[:PEAK_DT] = False
    if b < n:
        cand[s.shape[0] - PEAK_DT :] = False
    t, f = np.nonzero(cand)
    empty = np.zeros(0, np.uint32), np.zeros(0, np.uint16)
    if t.size == 0:
        return empty
    keep = _density_cap(t, s[t, f])
    t, f = t[keep], f[keep]
    inside = (t + a >= lo) & (t + a < hi)
    t, f = t[inside], f[inside]
    if t.size == 0:
        return empty
    level = s[t, f]
    df = _parabola(s[t, f - 1], level, s[t, f + 1])
    # Time neighbours: clamped at the file's ends, as in `find_peaks` (inside the block they always exist).
    before = np.where(t + a > 0, t - 1, t)
    after = np.where(t + a < n - 1, t + 1, t)
    dt = _parabola(s[before, f], level, s[after, f])
    t_sub = np.rint((t + a + dt) * SUB).clip(0).astype(np.uint32)
    f_sub = np.rint((f + _LO + df) * (_BIN_HZ / HASH_BIN_HZ) * SUB).astype(np.uint16)
    order = np.argsort(t_sub, kind="stable")
    return t_sub[order], f_sub[order]


def stream_peaks(
    blocks: Callable[[], Iterable[np.ndarray]],
    *,
    block: int = BLOCK_FRAMES,
    whole_file_frames: int = WHOLE_FILE_FRAMES,
) -> tuple[np.ndarray, np.ndarray, int]:
    """`find_peaks` of the concatenated samples `blocks()` yields, and their count, without holding them all.

    Up to `whole_file_frames` frames the samples are kept and `find_peaks` runs on them (one pass). A longer
    stream is read twice (`blocks` is called again, and must yield the same samples): once for the floor, once
    for the peaks, keeping only about two blocks of frames.
    """
    if TIME_SMOOTH != 1:
        x = np.concatenate([np.asarray(b, np.float32) for b in blocks()] or [np.zeros(0, np.float32)])
        t, f = find_peaks(x)
        return t, f, int(x.size)
    block = max(block, 2 * _HALO)
    whole_file_frames = max(whole_file_frames, block + 2 * _HALO)
    # Pass 1: the loudest smoothed bin (and, for a short stream, the samples themselves).
    window = _Window()
    kept: list[np.ndarray] | None = []
    peak = -np.inf
    lo = 0
    for part in blocks():
        window.push(part)
        if kept is not None:
            kept.append(np.asarray(part, np.float32))
            if window.frames_available() > whole_file_frames:
                kept = None  # long: stream it
        if kept is not None:
            continue
        while window.frames_available() >= lo + block + 1:  # frame `hi` exists: hi is not the end
            peak = max(peak, float(_smoothed_rows(window, lo, lo + block, lo + block + 1).max()))
            lo += block
            window.drop_before(lo - 1)
    if kept is not None:
        x = np.concatenate(kept) if kept else np.zeros(0, np.float32)
        t, f = find_peaks(x)
        return t, f, int(x.size)
    n = window.frames_available()
    total = window.samples_seen
    if lo < n:
        peak = max(peak, float(_smoothed_rows(window, lo, n, n).max()))
    del window
    floor = peak - FLOOR_DB  # a Python float, as in `find_peaks`
    # Pass 2: each block with its halo, as soon as the halo has arrived.
    window = _Window()
    times: list[np.ndarray] = []
    freqs: list[np.ndarray] = []
    lo = 0

    def run(lo: int) -> None:
        hi = min(n, lo + block)
        a, b = max(0, lo - _HALO), min(n, hi + _HALO)
        t, f = _block_peaks(_smoothed_rows(window, a, b, n), a, lo, hi, n, floor)
        times.append(t)
        freqs.append(f)

    for part in blocks():
        window.push(part)
        while lo < n and window.frames_available() >= min(n, lo + block + _HALO + 1):
            run(lo)
            lo += block
            window.drop_before(max(0, lo - _HALO - 1))
    if window.samples_seen != total:
        raise MediaError("the audio stream decoded to a different length the second time")
    while lo < n:
        run(lo)
        lo += block
    return np.concatenate(times), np.concatenate(freqs), total
