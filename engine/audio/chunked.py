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

import numpy as np

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
    """Equal to `find_peaks(x)`, in memory independent of the length of `x` (beyond `x` itself)."""
    x = np.asarray(x, dtype=np.float32)
    n = _n_frames(x.size)
    if TIME_SMOOTH != 1 or n <= max(whole_file_frames, block + 2 * _HALO):
        return find_peaks(x)
    peak = max(float(_smoothed(x, lo, min(n, lo + block), n).max()) for lo in range(0, n, block))
    floor = peak - FLOOR_DB  # a Python float, as in `find_peaks` (NumPy casts it the same way there)
    empty = np.zeros(0, np.uint32), np.zeros(0, np.uint16)
    times: list[np.ndarray] = []
    freqs: list[np.ndarray] = []
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        a, b = max(0, lo - _HALO), min(n, hi + _HALO)
        s = _smoothed(x, a, b, n)
        if s.shape[1] < 3:
            return empty
        s = np.maximum(s, floor)
        local_max = _running_max(_running_max(s, PEAK_DF, axis=1), PEAK_DT, axis=0)
        contrast = s - _box_mean(s, 2 * PEAK_DF, axis=1)
        cand = (s >= local_max) & (contrast >= CONTRAST_DB) & (s > floor + 3.0)
        cand[:, 0] = cand[:, -1] = False
        # Local maxima within PEAK_DT of a cut block edge (not a file end) saw a truncated window: not used.
        if a > 0:
            cand[:PEAK_DT] = False
        if b < n:
            cand[s.shape[0] - PEAK_DT :] = False
        t, f = np.nonzero(cand)
        if t.size == 0:
            continue
        keep = _density_cap(t, s[t, f])
        t, f = t[keep], f[keep]
        inside = (t + a >= lo) & (t + a < hi)
        t, f = t[inside], f[inside]
        if t.size == 0:
            continue
        level = s[t, f]
        df = _parabola(s[t, f - 1], level, s[t, f + 1])
        # Time neighbours: clamped at the file's ends, as in `find_peaks` (inside the block they always exist).
        before = np.where(t + a > 0, t - 1, t)
        after = np.where(t + a < n - 1, t + 1, t)
        dt = _parabola(s[before, f], level, s[after, f])
        g = t + a
        t_sub = np.rint((g + dt) * SUB).clip(0).astype(np.uint32)
        f_sub = np.rint((f + _LO + df) * (_BIN_HZ / HASH_BIN_HZ) * SUB).astype(np.uint16)
        order = np.argsort(t_sub, kind="stable")
        times.append(t_sub[order])
        freqs.append(f_sub[order])
    if not times:
        return empty
    return np.concatenate(times), np.concatenate(freqs)
