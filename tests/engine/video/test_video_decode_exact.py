"""The fast paths of thumbnailing and hashing give the very values of their plain forms (written out here as
oracles): speeding fingerprinting up must not move a single hash bit."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from engine.synth.video import render_clip, write_clip
from engine.video import VideoModality
from engine.video.decode import _SPREAD, CUT_LEVEL, THUMB, VideoDecoder, _Blocks, _coarse
from engine.video.frame_features import _BAR_COVER, _BAR_FLAT, _BAR_LEVEL, bar_runs, content_boxes, hash_frames
from engine.video.frame_features import _bar_like as fast_bar_like


def _oracle_thumbnails(frames: list[tuple[float, np.ndarray]], step: float) -> list[tuple[float, np.ndarray]]:
    """The triangle-weighted averaging written plainly: one `acc += weight * pixels` per grid point and frame, in
    float32 throughout (the thumbnails' definition since float32 products replaced float64 ones)."""
    out: list[tuple[float, np.ndarray]] = []
    sums: dict[int, tuple[np.ndarray, float]] = {}
    last, first_open, previous = 0.0, 0, None
    for t, pixels in frames:
        coarse = _coarse(pixels)
        if previous is not None and float(np.abs(coarse - previous).mean()) > CUT_LEVEL:
            cut = 0.5 * (last + t)
            for k in sorted(sums):
                acc, total = sums.pop(k)
                if k * step < cut:
                    out.append((k * step, acc / total))
            first_open = max(first_open, math.ceil(cut / step - 1e-9))
        previous, last = coarse, t
        lo = max(math.ceil(t / step - _SPREAD + 1e-9), first_open)
        for k in range(lo, math.floor(t / step + _SPREAD - 1e-9) + 1):
            weight = 1.0 - abs(t - k * step) / (step * _SPREAD)
            acc, total = sums.get(k, (np.zeros(pixels.shape, np.float32), 0.0))
            acc += np.float32(weight) * pixels.astype(np.float32)
            sums[k] = (acc, total + weight)
        for k in sorted(k for k in sums if (k + _SPREAD) * step <= t):
            acc, total = sums.pop(k)
            out.append((k * step, acc / total))
    for k in sorted(k for k in sums if k * step <= last + 1e-6):
        acc, total = sums.pop(k)
        out.append((k * step, acc / total))
    return out


class _Given(VideoDecoder):
    """A decoder whose decoded frames are given: `thumbnails` alone is under test."""

    def __init__(self, frames: list[tuple[float, np.ndarray]], step: float) -> None:  # no file
        self.step, self.size, self._given = step, THUMB, frames

    def _frames(self) -> Iterator[tuple[float, np.ndarray]]:
        yield from self._given


def _frame_sequence(seed: int) -> list[tuple[float, np.ndarray]]:
    """~6 s of 8-bit thumbnails at an uneven rate (reference frames of B-frame runs), with two hard cuts, a
    backwards timestamp (a damaged file) and a fade to near black."""
    rng = np.random.default_rng(seed)
    shots = [rng.integers(0, 256, (THUMB, THUMB)) for _ in range(3)]
    frames, t = [], 0.0
    for i in range(90):
        t += float(rng.choice([0.04, 0.08, 0.12]))
        if i == 60:
            t -= 0.3
        base = shots[0] if t < 2.0 else shots[1] if t < 4.0 else shots[2] * max(0.0, 1.0 - (t - 4.0) / 2.0)
        noise = rng.integers(-6, 7, (THUMB, THUMB))
        frames.append((round(t, 6), np.clip(base + noise, 0, 255).astype(np.uint8)))
    return frames


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_thumbnails_are_the_plain_weighted_averages_bit_for_bit(seed: int) -> None:
    frames = _frame_sequence(seed)
    fast = list(_Given(frames, 0.5).thumbnails())
    plain = _oracle_thumbnails(frames, 0.5)
    assert [t for t, _ in fast] == [t for t, _ in plain]
    assert len(fast) >= 10 and {p.dtype for _, p in fast} == {np.dtype(np.float32)}
    for (_, a), (_, b) in zip(fast, plain, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("size", [128, 64, 48, 160, 8])
def test_block_averages_by_matrix_products_equal_the_mean_bit_for_bit(size: int) -> None:
    rng = np.random.default_rng(size)
    blocks = _Blocks(size)
    cases = [rng.integers(0, 256, (size, size)).astype(np.uint8) for _ in range(50)]
    cases += [np.full((size, size), 255, np.uint8), np.zeros((size, size), np.uint8)]
    cases += [rng.integers(250, 256, (size, size)).astype(np.uint8)]  # large block sums
    for pixels in cases:
        assert np.array_equal(blocks.coarse(pixels), _coarse(pixels))


def _plain_bar_like(lines: np.ndarray) -> np.ndarray:
    """`_bar_like` as first written: the median of every line."""
    median = np.median(lines, axis=2, keepdims=True)
    uniform = (np.abs(lines - median) <= _BAR_FLAT).mean(axis=2) >= _BAR_COVER
    return uniform & (median[..., 0] < _BAR_LEVEL)


def test_bar_lines_found_without_every_median_are_the_same() -> None:
    rng = np.random.default_rng(7)
    for trial in range(72):
        frames = rng.uniform(0, 255, (4, THUMB, THUMB)).astype(np.float32)
        kind = trial % 6
        if kind == 1:  # a letterbox, noisy, around the darkness limits
            level = rng.uniform(_BAR_LEVEL - 10, _BAR_LEVEL + 10)
            frames[:, : rng.integers(1, 40)] = level + rng.normal(0, rng.uniform(0, 10), (4, 1, THUMB))
        elif kind == 2:  # a dark shot
            frames *= rng.uniform(0.05, 0.4)
        elif kind == 3:  # a pillarbox with a caption over part of a bar
            frames[:, :, : rng.integers(1, 40)] = rng.uniform(30, 70)
            frames[:, 5:20, :10] = 230.0
        elif kind == 4:  # values on the thresholds exactly
            frames = rng.choice([0.0, _BAR_LEVEL, _BAR_LEVEL + _BAR_FLAT, 40.0, 48.0], (4, THUMB, THUMB)).astype(
                np.float32
            )
        elif kind == 5:  # bar lines whose flat part reaches just under the prefilter's bound (median + flat)
            line = np.array([_BAR_LEVEL - 0.5] * 66 + [_BAR_LEVEL + _BAR_FLAT - 0.6] * 38 + [200.0] * 24, np.float32)
            for row in range(rng.integers(2, 30)):
                frames[:, row] = rng.permutation(line)
            assert _plain_bar_like(frames)[:, 0].all()  # the premise: these are bar lines
        for lines in (frames, frames.transpose(0, 2, 1)):
            assert np.array_equal(fast_bar_like(lines), _plain_bar_like(lines))
    assert bar_runs(frames).shape == (4, 4)


def test_hashes_do_not_depend_on_blas_threads_and_extraction_restores_them(tmp_path: Path) -> None:
    """Extraction runs NumPy's BLAS on one thread: the hashes must be those of any thread count, and the
    process's setting must be back as it was afterwards."""
    clip = render_clip(9301, 4.0, (160, 120), 12.0)
    gray = clip.frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    thumbs = np.stack([np.resize(g, (THUMB, THUMB)) for g in gray[::6]]).astype(np.float32)
    boxes = content_boxes(thumbs)
    controller = ThreadpoolController()
    with controller.limit(limits=1, user_api="blas"):
        one = hash_frames(thumbs, boxes)[0]
    with controller.limit(limits=2, user_api="blas"):
        two = hash_frames(thumbs, boxes)[0]
    assert np.array_equal(one, two)

    path = write_clip(clip, tmp_path / "clip.mp4")
    before = [pool["num_threads"] for pool in ThreadpoolController().info() if pool["user_api"] == "blas"]
    assert VideoModality().extract(path) is not None
    after = [pool["num_threads"] for pool in ThreadpoolController().info() if pool["user_api"] == "blas"]
    assert after == before
