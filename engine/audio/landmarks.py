"""Spectral peaks and the peak-pair landmarks hashed from them (Wang 2003; audfprint, Dejavu, Olaf).

Pipeline: log-power STFT -> local maxima that stand out from their frequency neighbourhood -> the loudest few
per second -> sub-bin, sub-frame positions by parabolic interpolation -> pairs (f1, f2 - f1, t2 - t1) hashed
into 20-bit ints with the anchor frame. Interpolated times matter: an excerpt's frames start at an arbitrary
sub-hop phase, which moves a discrete argmax by a frame about half the time; the interpolated positions move
by the phase itself, which is the same for both peaks of a pair, so dt stays put.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .params import (
    CONTRAST_DB,
    DF_BITS,
    DF_MAX,
    DT_BITS,
    DT_MAX,
    F1_BITS,
    F_MAX_HZ,
    F_MIN_HZ,
    FANOUT,
    FLOOR_DB,
    HASH_BIN_HZ,
    HASH_F_LO,
    HOP,
    N_FFT,
    PEAK_DF,
    PEAK_DT,
    PEAKS_PER_SECOND,
    SAMPLE_RATE,
    TIME_SMOOTH,
)

# Peaks keep sub-frame time and sub-bin frequency as fixed-point ints: 1/SUB of a frame, 1/SUB of a hash bin.
SUB = 16
_BIN_HZ = SAMPLE_RATE / N_FFT
_LO = int(F_MIN_HZ / _BIN_HZ)
_HI = int(np.ceil(F_MAX_HZ / _BIN_HZ))
_WINDOW = np.hanning(N_FFT).astype(np.float32)
_DENSITY_HALF = round(0.5 * SAMPLE_RATE / HOP)  # frames in half a second


def spectrogram_db(x: np.ndarray) -> np.ndarray:
    """Log power (dB) of the analysis band, shape (frames, bins), float32. Frame k starts at sample k*HOP."""
    x = np.asarray(x, dtype=np.float32)
    if x.size < N_FFT:
        x = np.pad(x, (0, N_FFT - x.size))
    frames = sliding_window_view(x, N_FFT)[::HOP] * _WINDOW
    spec = np.fft.rfft(frames, axis=1)[:, _LO:_HI]
    power = spec.real**2 + spec.imag**2
    return (10.0 * np.log10(power + 1e-12)).astype(np.float32)


def _running_max(a: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Max over a +-radius window along `axis` (edges see a truncated window).

    Sparse-table doubling: maxima over 1, 2, 4, ... samples, then two overlapping blocks cover the window,
    so the cost is log2(window) passes instead of one per sample (small windows: one pass per shift).
    """
    if radius <= 4:
        return _running_max_small(a, radius, axis)
    a = np.moveaxis(a, axis, 0)
    n, width = a.shape[0], 2 * radius + 1
    pad = np.full((radius, *a.shape[1:]), -np.inf, a.dtype)
    m = np.concatenate([pad, a, pad])
    span = 1
    while 2 * span <= width:
        m = np.maximum(m[:-span], m[span:])
        span *= 2
    out = np.maximum(m[:n], m[width - span : width - span + n])
    return np.moveaxis(out, 0, axis)


def _running_max_small(a: np.ndarray, radius: int, axis: int) -> np.ndarray:
    out = a.copy()
    n = a.shape[axis]
    for k in range(1, min(radius, n - 1) + 1):
        lo = [slice(None)] * a.ndim
        hi = [slice(None)] * a.ndim
        lo[axis], hi[axis] = slice(0, n - k), slice(k, n)
        np.maximum(out[tuple(lo)], a[tuple(hi)], out=out[tuple(lo)])
        np.maximum(out[tuple(hi)], a[tuple(lo)], out=out[tuple(hi)])
    return out


def _box_mean(a: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Mean over a +-radius window along `axis` (edges use the truncated window): cumulative sums of the
    zero-padded array, differenced with slices (no fancy indexing: this runs on every spectrogram)."""
    a = np.moveaxis(a, axis, 0)
    n, w = a.shape[0], 2 * radius + 1
    c = np.zeros((n + w, *a.shape[1:]), np.float64)  # float32 sums drift over an hour of frames
    np.cumsum(a, axis=0, out=c[radius + 1 : radius + 1 + n])
    c[radius + 1 + n :] = c[radius + n]
    counts = np.minimum(np.arange(n) + radius + 1, n) - np.maximum(np.arange(n) - radius, 0)
    out = (c[w:] - c[:n]) / counts.reshape((n,) + (1,) * (a.ndim - 1))
    return np.moveaxis(out.astype(np.float32), 0, axis)


def _smooth3(a: np.ndarray) -> np.ndarray:
    """Mean of each row with its two neighbours (along axis 0; the ends average two rows)."""
    if a.shape[0] < 2:
        return a.copy()
    out = a.copy()
    out[1:-1] += a[:-2]
    out[1:-1] += a[2:]
    out[1:-1] /= 3.0
    out[0] = (a[0] + a[1]) / 2.0
    out[-1] = (a[-2] + a[-1]) / 2.0
    return out


def _parabola(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Offset in [-0.5, 0.5] of the vertex of the parabola through (-1, a), (0, b), (1, c)."""
    den = a - 2 * b + c
    safe = np.where(den < 0, den, -1.0)
    return np.where(den < 0, 0.5 * (a - c) / safe, 0.0).clip(-0.5, 0.5)


def _density_cap(t: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Mask of candidates with fewer than PEAKS_PER_SECOND louder candidates within +-0.5 s (t sorted)."""
    louder = np.zeros(t.size, np.int64)
    for k in range(1, t.size):
        near = t[k:] - t[:-k] <= _DENSITY_HALF
        if not near.any():
            break
        a, b = level[:-k], level[k:]
        louder[:-k] += near & (b > a)
        louder[k:] += near & (a > b)
    return louder < PEAKS_PER_SECOND


def find_peaks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spectral peaks of mono samples at SAMPLE_RATE, sorted by time.

    Returns (time in 1/SUB frames, uint32; frequency in 1/SUB hash bins of HASH_BIN_HZ, uint16).
    """
    s = spectrogram_db(x)
    if TIME_SMOOTH:  # steadier peaks under noise
        s = _smooth3(s) if TIME_SMOOTH == 1 else _box_mean(s, TIME_SMOOTH, axis=0)
    empty = np.zeros(0, np.uint32), np.zeros(0, np.uint16)
    if s.shape[1] < 3:
        return empty
    floor = float(s.max()) - FLOOR_DB
    s = np.maximum(s, floor)
    local_max = _running_max(_running_max(s, PEAK_DF, axis=1), PEAK_DT, axis=0)
    contrast = s - _box_mean(s, 2 * PEAK_DF, axis=1)
    cand = (s >= local_max) & (contrast >= CONTRAST_DB) & (s > floor + 3.0)
    cand[:, 0] = cand[:, -1] = False  # interpolation needs both neighbours
    t, f = np.nonzero(cand)  # row-major: already sorted by time
    if t.size == 0:
        return empty
    keep = _density_cap(t, s[t, f])
    t, f = t[keep], f[keep]
    b = s[t, f]
    df = _parabola(s[t, f - 1], b, s[t, f + 1])
    dt = _parabola(s[np.maximum(t - 1, 0), f], b, s[np.minimum(t + 1, s.shape[0] - 1), f])
    t_sub = np.rint((t + dt) * SUB).clip(0).astype(np.uint32)
    f_sub = np.rint((f + _LO + df) * (_BIN_HZ / HASH_BIN_HZ) * SUB).astype(np.uint16)
    order = np.argsort(t_sub, kind="stable")
    return t_sub[order], f_sub[order]


def join_hash(f1: np.ndarray, df: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """Pack (f1 - HASH_F_LO, df + DF_MAX, dt) into one int per landmark."""
    return (f1 << (DF_BITS + DT_BITS)) | (df << DT_BITS) | dt


def split_hash(h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of `join_hash`."""
    h = h.astype(np.int64)
    return h >> (DF_BITS + DT_BITS), (h >> DT_BITS) & ((1 << DF_BITS) - 1), h & ((1 << DT_BITS) - 1)


def landmarks(
    t_sub: np.ndarray, f_sub: np.ndarray, *, time_scale: float = 1.0, freq_scale: float = 1.0, fanout: int = FANOUT
) -> tuple[np.ndarray, np.ndarray]:
    """Peak pairs hashed to 22-bit ints: (hash uint32, anchor frame uint32), sorted by anchor time.

    `time_scale`/`freq_scale` map the peaks onto another playback speed before hashing: a query played 2 %
    fast is hashed with time_scale=1.02, freq_scale=1/1.02 to look like the original.
    """
    n = t_sub.size
    empty = np.zeros(0, np.uint32), np.zeros(0, np.uint32)
    if n < 2:
        return empty
    tc = t_sub.astype(np.float64) * (time_scale / SUB)
    fb = np.rint(f_sub.astype(np.float64) * (freq_scale / SUB)).astype(np.int64)
    order = np.lexsort((fb, tc))
    tc, fb = tc[order], fb[order]
    anchors: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    dts: list[np.ndarray] = []
    taken = np.zeros(n, np.int64)
    for k in range(1, n):
        dt = np.rint(tc[k:] - tc[:-k]).astype(np.int64)
        live = dt <= DT_MAX
        if not live.any():
            break
        ok = live & (dt >= 1) & (np.abs(fb[k:] - fb[:-k]) <= DF_MAX) & (taken[:-k] < fanout)
        taken[:-k] += ok
        i = np.flatnonzero(ok)
        anchors.append(i)
        targets.append(i + k)
        dts.append(dt[i])
    if not anchors:
        return empty
    ai, ti, dt = np.concatenate(anchors), np.concatenate(targets), np.concatenate(dts)
    f1 = fb[ai] - HASH_F_LO
    ok = (f1 >= 0) & (f1 < (1 << F1_BITS))  # scaled peaks may leave the band
    ai, ti, dt, f1 = ai[ok], ti[ok], dt[ok], f1[ok]
    h = join_hash(f1, fb[ti] - fb[ai] + DF_MAX, dt)
    at = np.rint(tc[ai]).astype(np.int64)
    order = np.argsort(at, kind="stable")
    return h[order].astype(np.uint32), at[order].astype(np.uint32)


def landmarks_many(
    t_sub: np.ndarray, f_sub: np.ndarray, scales: list[tuple[float, float]], fanout: int = FANOUT
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`landmarks` under many (time_scale, freq_scale) hypotheses at once (the speed scan's dozens).

    Scaling keeps the peaks' time order, so the candidate pairs (anchor, k-th next peak) are enumerated once, for
    the widest time scale, and each hypothesis only re-rounds their dt and frequencies and keeps each anchor's
    first FANOUT valid targets: the pairs `landmarks` would take, in its order, but for rounding ties (a dt of
    exactly x.5 computed another way; two peaks of one time that round to one frequency bin).
    """
    n = t_sub.size
    empty = np.zeros(0, np.uint32), np.zeros(0, np.uint32)
    if n < 2 or not scales:
        return [empty for _ in scales]
    order = np.lexsort((f_sub, t_sub))
    t = t_sub[order].astype(np.float64) / SUB
    f = f_sub[order].astype(np.float64) / SUB
    widest = max(ts for ts, _ in scales)
    ais: list[np.ndarray] = []
    tis: list[np.ndarray] = []
    for k in range(1, n):
        near = np.flatnonzero((t[k:] - t[:-k]) * widest < DT_MAX + 0.5)
        if not near.size:
            break
        ais.append(near)
        tis.append(near + k)
    ai, ti = np.concatenate(ais), np.concatenate(tis)  # by k, then anchor: the order `landmarks` emits them in
    pair = np.lexsort((ti, ai))  # by anchor, then k: the order `landmarks` takes them in
    ai, ti = ai[pair], ti[pair]
    first = np.r_[True, ai[1:] != ai[:-1]]
    group_start = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    raw_dt = t[ti] - t[ai]
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for ts, fs in scales:
        fb = np.rint(f * fs).astype(np.int64)
        dt = np.rint(raw_dt * ts).astype(np.int64)
        df = fb[ti] - fb[ai]
        ok = (dt >= 1) & (dt <= DT_MAX) & (np.abs(df) <= DF_MAX)
        taken = np.cumsum(ok)
        before = (taken - ok)[group_start][group]  # valid pairs of earlier anchors
        ok &= taken - before <= fanout
        f1 = fb[ai] - HASH_F_LO
        ok &= (f1 >= 0) & (f1 < (1 << F1_BITS))  # scaled peaks may leave the band
        if not ok.any():
            out.append(empty)
            continue
        keep = np.flatnonzero(ok)[np.argsort(pair[ok])]  # back to the emission order
        h = join_hash(f1[keep], df[keep] + DF_MAX, dt[keep])
        at = np.rint(t[ai[keep]] * ts).astype(np.int64)
        by_time = np.argsort(at, kind="stable")
        out.append((h[by_time].astype(np.uint32), at[by_time].astype(np.uint32)))
    return out
