"""Per-frame features: letterbox/pillarbox removal, flat-frame rejection, and a 64-bit DCT-sign hash.

The hash of a frame is the sign of 64 low-frequency 2-D DCT coefficients of its content (bars removed), resampled
to 32x32. Signs of low frequencies survive re-encoding, rescaling, brightness/contrast/gamma/saturation changes,
grayscale and small overlays; DC is left out so brightness does not matter at all. A horizontal flip negates the
coefficients of odd horizontal frequency, so the flipped hash is `hash ^ FLIP_MASK`: no second pass.

Crops: a stored (reference) frame is hashed on the central 60% of its content per axis (`CANONICAL`), a region
that stays inside the picture whatever side(s) a copy cuts, up to `MAX_CROP` (20%) from each. A query frame is
hashed on windows (`WINDOWS`) that line that region up again under the crops copies commonly make: per axis,
none, centred 10% and 20% in all (aspect changes), and 5%, 10%, 15% or 20% off either edge (a ticker, a
watermark, a corner cut); the two axes combine freely. The hash tolerates a misplacement of about 2% of the frame
per edge, so crops between these are found less reliably; beyond 20% a side, the stored region is cut and lost.

Picture-in-picture: a copy shown small inside other video is found by its frame, not its content. The inset's
border is an edge that stays put while the pictures on both sides of it change; `inset_boxes` finds rectangles
outlined by such edges on all four sides and ending at their corners (a still host's own edges persist too, but run
on past them), and each becomes an extra query window (`INSETS` columns after the crop windows) hashed on the
central 60% of the inset, the stored region of a reference shown there.

Bits are interleaved so that each 16-bit chunk mixes low and high frequencies: the multi-index tables then see
chunks of equal stability and spread.
"""

from __future__ import annotations

import numpy as np

from engine.video.decode import THUMB

GRID = 32  # content is area-resampled to GRID x GRID before the DCT
MAX_CROP = 0.2  # the stored region keeps this margin on every side: it survives a crop this large from any side
# Per axis: crops a query window undoes, as (fraction cut from the start, fraction cut from the end) of the axis.
# Mirror-closed (every (a, b) has its (b, a)), so a mirrored copy's windows are among the mirrored columns.
CROPS = (
    (0.0, 0.0),
    (0.05, 0.05),
    (0.1, 0.1),
    (0.05, 0.0),
    (0.0, 0.05),
    (0.1, 0.0),
    (0.0, 0.1),
    (0.15, 0.0),
    (0.0, 0.15),
    (0.2, 0.0),
    (0.0, 0.2),
)


def _undo(cut_start: float, cut_end: float) -> tuple[float, float]:
    """Where the stored region [MAX_CROP, 1 - MAX_CROP] of the original lies in an axis cropped like that."""
    kept = 1.0 - cut_start - cut_end
    return (MAX_CROP - cut_start) / kept, (1.0 - MAX_CROP - cut_start) / kept


# Windows as ((x0, x1), (y0, y1)) fractions of the content; the first is the stored region itself.
_AXIS = tuple(_undo(*crop) for crop in CROPS)
WINDOWS: tuple[tuple[tuple[float, float], tuple[float, float]], ...] = tuple((wx, wy) for wy in _AXIS for wx in _AXIS)
CANONICAL = WINDOWS.index((_AXIS[0], _AXIS[0]))  # the window stored for reference items

MIN_STD = 4.0  # gray levels: frames flatter than this (black, fades, flat colour) carry no signature
_BAR_LEVEL = 56.0  # a bar row/column is darker than this (black, or black brightened a little)...
_BAR_FLAT = 8.0  # ...and has _BAR_COVER of its pixels this close to its median
_BAR_COVER = 0.8
_MAX_BAR = 0.3  # no bar is taller than 30% of the frame
_BAR_WINDOW = 5  # bars must be present in the 4 preceding samples too (a dark shot is not a letterbox)


def _frequencies() -> list[tuple[int, int]]:
    """64 (u, v) = (horizontal, vertical) frequencies, lowest first, without DC; symmetric in u and v."""
    low = sorted(((u, v) for u in range(10) for v in range(10) if 0 < u + v <= 9), key=lambda f: (sum(f), f[1]))
    ring = [(u, 10 - u) for u in range(11) if u != 5]
    return low + ring


FREQS = _frequencies()
N_BITS = len(FREQS)
# Bit b (in frequency order) goes to chunk b % 4, position b // 4 of that chunk.
BIT_POS = np.array([(b % 4) * 16 + b // 4 for b in range(N_BITS)], dtype=np.uint64)
FLIP_MASK = np.uint64(sum(1 << int(BIT_POS[b]) for b, (u, _) in enumerate(FREQS) if u % 2 == 1))
_MAX_FREQ = 11

# DCT-II basis rows for frequencies 0..10 on a GRID-point axis.
_n = np.arange(GRID)
_DCT = np.cos(np.pi * (2 * _n[None, :] + 1) * np.arange(_MAX_FREQ)[:, None] / (2 * GRID))
_U = np.array([u for u, _ in FREQS])
_V = np.array([v for _, v in FREQS])


def _area_matrix(lo: float, hi: float, n_in: int = THUMB, n_out: int = GRID) -> np.ndarray:
    """(n_out, n_in) weights averaging input pixels [j, j+1) over n_out equal cells of [lo, hi)."""
    edges = lo + (hi - lo) * np.arange(n_out + 1) / n_out
    j = np.arange(n_in)
    overlap = np.minimum(edges[1:, None], j[None, :] + 1) - np.maximum(edges[:-1, None], j[None, :])
    weights = np.clip(overlap, 0.0, None)
    return weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)


def _bar_run(dark: np.ndarray) -> np.ndarray:
    """Per frame, how many leading entries of `dark` (n, L) are True, capped at _MAX_BAR of L."""
    limit = int(_MAX_BAR * dark.shape[1])
    run = np.argmin(np.concatenate([dark[:, :limit], np.zeros((len(dark), 1), bool)], axis=1), axis=1)
    return run


def _symmetric(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep opposite bars only where both exist and have similar sizes: real letterboxes are centred."""
    ok = (np.minimum(a, b) >= 2) & (np.abs(a - b) <= np.maximum(3, 0.3 * np.maximum(a, b)))
    return np.where(ok, a, 0), np.where(ok, b, 0)


def _bar_like(lines: np.ndarray) -> np.ndarray:
    """(n, L, M) frames as lines of M pixels -> (n, L): lines that are mostly one dark value. "Mostly": a logo
    or a caption drawn over a bar must not break it."""
    # A pixel within _BAR_FLAT of a median under _BAR_LEVEL is under their sum, so only lines with _BAR_COVER of
    # their pixels that dark can pass: the medians, most of the cost, are taken of those alone (same result).
    dark = (lines < _BAR_LEVEL + _BAR_FLAT).mean(axis=2) >= _BAR_COVER
    out = np.zeros(dark.shape, bool)
    if dark.any():
        some = lines[dark]
        median = np.median(some, axis=1, keepdims=True)
        uniform = (np.abs(some - median) <= _BAR_FLAT).mean(axis=1) >= _BAR_COVER
        out[dark] = uniform & (median[:, 0] < _BAR_LEVEL)
    return out


def bar_runs(pixels: np.ndarray) -> np.ndarray:
    """(n, 4) int (top, bottom, left, right): bar sizes of each frame alone, in thumbnail pixels."""
    frames = pixels.astype(np.float32, copy=False)
    rows = _bar_like(frames)
    cols = _bar_like(frames.transpose(0, 2, 1))
    top, bottom = _symmetric(_bar_run(rows), _bar_run(rows[:, ::-1]))
    left, right = _symmetric(_bar_run(cols), _bar_run(cols[:, ::-1]))
    return np.stack([top, bottom, left, right], axis=1)


class BarTracker:
    """Bars of a stream of frames: a frame's bars are the smallest seen over it and the preceding frames
    (`_BAR_WINDOW` in all), so a dark shot is not taken for a letterbox. State carries across batches."""

    def __init__(self, window: int = _BAR_WINDOW) -> None:
        self._recent = np.zeros((0, 4), dtype=np.int64)
        self._window = window

    def boxes(self, pixels: np.ndarray) -> np.ndarray:
        """(n, 4) float boxes (x0, y0, x1, y1) in thumbnail pixels: each frame without its black bars."""
        if len(pixels) == 0:
            return np.zeros((0, 4))
        runs = np.concatenate([self._recent, bar_runs(pixels)])
        history = np.concatenate([np.repeat(runs[:1], self._window - 1, axis=0), runs])
        windows = np.lib.stride_tricks.sliding_window_view(history, self._window, axis=0)[-len(pixels) :]
        top, bottom, left, right = windows.min(axis=2).T
        self._recent = runs[len(runs) - (self._window - 1) :]
        size = pixels.shape[1]
        return np.stack([left, top, size - right, size - bottom], axis=1).astype(np.float64)


def content_boxes(pixels: np.ndarray) -> np.ndarray:
    """Boxes of a whole sequence of frames at once (see `BarTracker`)."""
    return BarTracker().boxes(pixels)


INSETS = 2  # picture-in-picture candidates hashed per query frame (extra query columns)
_INSET_SIDE = (0.25, 0.6)  # an inset's side as a fraction of the frame's: smaller ones are too blurred to hash
_INSET_ASPECT = 0.08  # an inset keeps the frame's shape: its sides' ratio differs from the frame's by at most this
_INSET_EDGE = 6.0  # gray levels: how much stronger than the lines 2 px away each side of the border must be
_INSET_LINES = 12  # strongest vertical and horizontal lines of a batch combined into candidate rectangles
_INSET_FRAMES = 8  # frames of a batch the persistent edges are measured on
_INSET_CORNER = 2  # px: a side's run past a corner is measured from this far beyond it (the corner's own blur)


def inset_boxes(pixels: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Up to `INSETS` boxes (x0, y0, x1, y1) in thumbnail pixels of rectangles outlined on all four sides by an
    edge that persists through `pixels` (consecutive thumbnails of one stretch of video), strongest first.

    A persistent edge: the median over time of the gradient across it, minus the larger of the same at 2 px
    either side (a line, not the rim of a textured area). Content edges move or come and go; a picture-in-picture
    border, a screen in a screen, a framed inset stay; so do a still host's own edges, which is why a rectangle's
    score is the mean of its weakest half side less its sides' strongest run on past a corner, and it must be
    positive (with every half side at least `_INSET_EDGE`).
    """
    n, height, width = pixels.shape
    if n == 0:
        return []
    frames = pixels[np.unique(np.linspace(0, n - 1, min(n, _INSET_FRAMES)).round().astype(int))].astype(np.float32)
    across_x = np.median(np.abs(np.diff(frames, axis=2)), axis=0)  # (H, W - 1): edge between columns x and x + 1
    across_y = np.median(np.abs(np.diff(frames, axis=1)), axis=0)  # (H - 1, W)

    def line(edges: np.ndarray, axis: int) -> np.ndarray:
        # A border between pixel centres spreads over two neighbouring gradients: they are summed first.
        pair = edges + np.roll(edges, -1, axis=axis)
        side = np.maximum(np.roll(pair, 2, axis=axis), np.roll(pair, -2, axis=axis))
        return np.clip(pair - side, 0.0, None)

    vertical, horizontal = line(across_x, 1), line(across_y, 0)
    down = np.vstack([np.zeros((1, width - 1)), np.cumsum(vertical, axis=0)])  # (H + 1, W - 1)
    along = np.hstack([np.zeros((height - 1, 1)), np.cumsum(horizontal, axis=1)])  # (H - 1, W + 1)
    cols = np.argsort(vertical.sum(axis=0), kind="stable")[-_INSET_LINES:]
    rows = np.argsort(horizontal.sum(axis=1), kind="stable")[-_INSET_LINES:]
    left, right = (a.ravel() for a in np.meshgrid(cols, cols, indexing="ij"))
    top, bottom = (a.ravel() for a in np.meshgrid(rows, rows, indexing="ij"))
    lo, hi = _INSET_SIDE
    keep_x = (right - left >= lo * width) & (right - left <= hi * width)
    keep_y = (bottom - top >= lo * height) & (bottom - top <= hi * height)
    left, right = left[keep_x, None], right[keep_x, None]
    top, bottom = top[None, keep_y], bottom[None, keep_y]
    if left.size == 0 or top.size == 0:
        return []
    w, h = right - left, bottom - top
    shaped = np.abs(w / width - h / height) <= _INSET_ASPECT * (w / width)
    # Each side in halves, the weakest half scoring: a rectangle borrowing part of another's edge (or a long
    # content edge) has a half without an edge.
    mid_y, mid_x = (top + bottom) // 2, (left + right) // 2
    halves = []
    for a, b in ((top, mid_y), (mid_y, bottom)):
        halves += [(down[b + 1, x] - down[a + 1, x]) / np.maximum(b - a, 1) for x in (left, right)]
    for a, b in ((left, mid_x), (mid_x, right)):
        halves += [(along[y, b + 1] - along[y, a + 1]) / np.maximum(b - a, 1) for y in (top, bottom)]
    sides = np.min(np.broadcast_arrays(*halves), axis=0)
    # An inset's border stops at its corners; a content edge (a roofline, a kerb, a shelf) runs on past them. Each
    # side is followed on past both corners for a quarter of its length (less where the frame ends, counted as
    # no edge), and the strongest of those runs is taken off the score: a rectangle borrowing a content edge
    # scores low even when that edge is persistent, as every edge of a still scene is. A rectangle is kept only
    # if its sides are edges (`_INSET_EDGE`) stronger than any of their runs past the corners.
    ey, ex = np.maximum((bottom - top) // 4, 1), np.maximum((right - left) // 4, 1)
    gap = _INSET_CORNER

    def run_v(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:  # rows a+1..b of vertical line x
        a, b = np.clip(a, -1, height - 2), np.clip(b, -1, height - 2)
        return (down[np.maximum(a, b) + 1, x] - down[a + 1, x]) / ey

    def run_h(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:  # columns a+1..b of horizontal line y
        a, b = np.clip(a, -1, width - 1), np.clip(b, -1, width - 1)
        return (along[y, np.maximum(a, b) + 1] - along[y, a + 1]) / ex

    runs = []
    for x in (left, right):
        runs += [run_v(x, top - gap - ey, top - gap), run_v(x, bottom + gap - 1, bottom + gap - 1 + ey)]
    for y in (top, bottom):
        runs += [run_h(y, left - gap - ex, left - gap), run_h(y, right + gap - 1, right + gap - 1 + ex)]
    beyond = np.max(np.broadcast_arrays(*runs), axis=0)
    score = np.where(shaped & (sides >= _INSET_EDGE), sides - beyond, -1.0)
    boxes: list[tuple[float, float, float, float]] = []
    for flat in np.argsort(score, axis=None, kind="stable")[::-1]:
        i, j = np.unravel_index(flat, score.shape)
        if score[i, j] <= 0.0 or len(boxes) == INSETS:
            break
        x0, y0, x1, y1 = int(left[i, 0]), int(top[0, j]), int(right[i, 0]), int(bottom[0, j])
        # The rectangle is chosen; each edge is then put on the stronger of its line and the lines either side,
        # over the whole side (a border between two pixels registers on two neighbouring lines, the weakest-half
        # and run-past-the-corner scores may not tell them apart).
        columns = down[y1 + 1] - down[y0 + 1]  # each vertical line's strength over the rectangle's height
        x0, x1 = _settle(x0, columns), _settle(x1, columns)
        rows = along[:, x1 + 1] - along[:, x0 + 1]
        y0, y1 = _settle(y0, rows), _settle(y1, rows)
        box = tuple(float(v) + 1.5 for v in (x0, y0, x1, y1))  # edge positions
        if all(_overlap(box, other) < 0.5 for other in boxes):  # one rectangle's near-duplicates are not another
            boxes.append(box)
    return boxes


def _settle(line: int, strength: np.ndarray) -> int:
    """The strongest of `line` and its two neighbours by `strength` (per line); a tie keeps `line`."""
    near = [c for c in (line, line - 1, line + 1) if 0 <= c < len(strength)]
    return max(near, key=lambda c: float(strength[c]))  # max keeps the first of equals: `line`


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def inset_hashes(pixels: np.ndarray, canonical: np.ndarray) -> np.ndarray:
    """(n, INSETS) hashes of the stored region (central 60%) of each inset `inset_boxes` finds in `pixels`;
    columns without an inset repeat the frame's `canonical` hash (a duplicate lookup finds nothing new)."""
    out = np.repeat(canonical[:, None], INSETS, axis=1)
    stored = ((MAX_CROP, 1.0 - MAX_CROP), (MAX_CROP, 1.0 - MAX_CROP))
    for k, box in enumerate(inset_boxes(pixels)):
        out[:, k] = hash_frames(pixels, np.repeat(np.array([box]), len(pixels), axis=0), (stored,))[0][:, 0]
    return out


def hash_frames(pixels: np.ndarray, boxes: np.ndarray, windows: tuple = WINDOWS) -> tuple[np.ndarray, np.ndarray]:
    """(n, len(windows)) uint64 hashes, and the (n,) std of each frame's content (for flat-frame rejection)."""
    n = len(pixels)
    hashes = np.zeros((n, len(windows)), dtype=np.uint64)
    stds = np.zeros(n, dtype=np.float32)
    frames = pixels.astype(np.float32, copy=False)
    weights = np.uint64(1) << BIT_POS
    # The DCT of a window is separable: rows then columns. Windows share their row and column ranges (a grid of
    # crops per axis), so every range is transformed once, each side in one large matrix product, and a window's
    # coefficients are picked from the (row range x column range) products.
    ys = sorted({wy for _, wy in windows})
    xs = sorted({wx for wx, _ in windows})
    wy_of = np.array([ys.index(wy) for _, wy in windows])[:, None]
    wx_of = np.array([xs.index(wx) for wx, _ in windows])[:, None]
    # Frames share their box almost always: one batched matrix product per distinct box and scale.
    unique, inverse = np.unique(boxes, axis=0, return_inverse=True)
    for k, (x0, y0, x1, y1) in enumerate(unique):
        members = np.flatnonzero(inverse.ravel() == k)
        m = len(members)
        batch = frames[members]
        region = batch[:, int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))]
        stds[members] = region.reshape(m, -1).std(axis=1)
        w, h = x1 - x0, y1 - y0
        left = np.concatenate([_DCT @ _area_matrix(y0 + h * a, y0 + h * b) for a, b in ys])  # (ny * 11, THUMB)
        right = np.concatenate([_DCT @ _area_matrix(x0 + w * a, x0 + w * b) for a, b in xs])  # (nx * 11, THUMB)
        rows = (left @ batch.transpose(1, 0, 2).reshape(THUMB, m * THUMB)).reshape(len(left), m, THUMB)
        coeffs = (rows.transpose(1, 0, 2).reshape(m * len(left), THUMB) @ right.T).reshape(
            m, len(ys), _MAX_FREQ, len(xs), _MAX_FREQ
        )  # (m, y range, v, x range, u)
        bits = coeffs[:, wy_of, _V[None, :], wx_of, _U[None, :]] > 0  # (m, window, 64)
        hashes[members] = (bits.astype(np.uint64) * weights).sum(axis=2, dtype=np.uint64)
    return hashes, stds
