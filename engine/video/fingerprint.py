"""`VideoFingerprint`: sampled frame times and their 64-bit hashes, one per crop window (see `frame_features`)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from engine.core import Fingerprint
from engine.video.decode import SAMPLE_FPS, VideoDecoder
from engine.video.frame_features import (
    CANONICAL,
    FLIP_MASK,
    INSETS,
    MIN_STD,
    WINDOWS,
    BarTracker,
    hash_frames,
    inset_hashes,
)

# FPV2: hashes of the central 60% (FPV1 hashed the central 80%, so its hashes cannot be compared with these).
_MAGIC = b"FPV2"
_OLD_MAGICS = (b"FPV1",)
_HEADER = struct.Struct("<4sIIdd")  # magic, frames, windows per frame, duration, sampling step
_BATCH = 64
QUERY_COLUMNS = len(WINDOWS) + INSETS
_THREADPOOLS: ThreadpoolController | None = None  # found once (it scans the loaded libraries), on first use


def _blas() -> ThreadpoolController:
    global _THREADPOOLS
    if _THREADPOOLS is None:
        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS


@dataclass(eq=False, slots=True)
class VideoFingerprint(Fingerprint):
    """`times` (n,) float32 seconds of the kept frames; `hashes` (n, w) uint64.

    w is `len(WINDOWS) + INSETS` for an extracted fingerprint (it can be searched as a query, crops and
    picture-in-picture insets included; `len(WINDOWS)` from before insets were hashed) or 1 for a reference-only
    one (`reference_only()`: what an index keeps, 8 bytes a frame). `step` is the sampling interval (the time one
    frame stands for); 0 for an image.
    """

    times: np.ndarray
    hashes: np.ndarray
    duration: float
    step: float = 1.0 / SAMPLE_FPS

    def __post_init__(self) -> None:
        self.times = np.ascontiguousarray(self.times, dtype=np.float32)
        self.hashes = np.ascontiguousarray(self.hashes, dtype=np.uint64)
        if self.hashes.ndim == 1:
            self.hashes = self.hashes[:, None]
        if len(self.times) != len(self.hashes) or self.hashes.shape[1] not in (1, len(WINDOWS), QUERY_COLUMNS):
            raise ValueError(f"bad fingerprint shapes: times {self.times.shape}, hashes {self.hashes.shape}")

    def __len__(self) -> int:
        return len(self.times)

    @property
    def canonical(self) -> np.ndarray:
        """(n,) the hash an index stores for each frame (central window)."""
        return self.hashes[:, CANONICAL if self.hashes.shape[1] > 1 else 0]

    def query_hashes(self) -> np.ndarray:
        """(n, 2w): every window, then every window mirrored: what a search tries."""
        return np.concatenate([self.hashes, self.hashes ^ FLIP_MASK], axis=1)

    def reference_only(self) -> VideoFingerprint:
        return VideoFingerprint(self.times, self.canonical[:, None], self.duration, self.step)

    def to_bytes(self) -> bytes:
        # Windows of a frame differ from its central window in few bits: XOR against it, then deflate.
        hashes = self.hashes.copy()
        if hashes.shape[1] > 1:
            hashes ^= self.canonical[:, None]
            hashes[:, CANONICAL] = self.canonical
        millis = np.round(self.times.astype(np.float64) * 1000).astype(np.int64)
        deltas = np.diff(millis, prepend=0).astype("<u4")
        payload = deltas.tobytes() + hashes.astype("<u8").T.copy().tobytes()
        header = _HEADER.pack(_MAGIC, len(self), self.hashes.shape[1], self.duration, self.step)
        return header + zlib.compress(payload, 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> VideoFingerprint:
        if data[:4] in _OLD_MAGICS:
            raise ValueError(f"a video fingerprint of an older format ({data[:4].decode()}): extract it again")
        if len(data) < _HEADER.size or data[:4] != _MAGIC:
            raise ValueError("not a video fingerprint (bad magic)")
        _, n, width, duration, step = _HEADER.unpack_from(data)
        try:
            payload = zlib.decompress(data[_HEADER.size :])
        except zlib.error as exc:
            raise ValueError(f"corrupt video fingerprint: {exc}") from exc
        if len(payload) != n * 4 + n * width * 8:
            raise ValueError("corrupt video fingerprint: wrong payload size")
        times = np.cumsum(np.frombuffer(payload[: n * 4], "<u4").astype(np.int64)) / 1000.0
        hashes = np.frombuffer(payload[n * 4 :], "<u8").reshape(width, n).T.astype(np.uint64)
        if width > 1:
            canonical = hashes[:, CANONICAL].copy()
            hashes ^= canonical[:, None]
            hashes[:, CANONICAL] = canonical
        return cls(times, hashes, duration, step)


def extract_fingerprint(path: Path | str) -> VideoFingerprint | None:
    """Fingerprint a video or image file; None if it has no video stream. Raises MediaError subclasses.

    NumPy's BLAS runs on one thread meanwhile: the hashing's matrix products take milliseconds, too short for a
    second thread to earn its hand-offs, and jobs already run in parallel, one process each. Measured on 2 shared
    cores: the real corpus's 466 videos took 41 s of CPU with OpenBLAS's default 2 threads, 24 s with one, and
    a batch's hashing no more wall time. Thread counts do not change the hashes (OpenBLAS splits a product's
    outputs between threads, not their sums; the corpus's hashes are identical bit for bit either way).
    """
    with _blas().limit(limits=1, user_api="blas"):
        return _extract(path)


def _extract(path: Path | str) -> VideoFingerprint | None:
    with VideoDecoder(path) as decoder:
        if not decoder.has_video:
            return None
        bars = BarTracker()
        times: list[np.ndarray] = []
        hashes: list[np.ndarray] = []

        def flush(batch: list[tuple[float, np.ndarray]]) -> None:
            pixels = np.stack([p for _, p in batch])
            batch_hashes, stds = hash_frames(pixels, bars.boxes(pixels))
            # Insets are looked for per batch (32 s): one may come and go, or move, within a long upload.
            batch_hashes = np.concatenate([batch_hashes, inset_hashes(pixels, batch_hashes[:, CANONICAL])], axis=1)
            keep = stds >= MIN_STD  # black, faded or flat frames would match anything
            times.append(np.array([t for t, _ in batch], np.float32)[keep])
            hashes.append(batch_hashes[keep])
            batch.clear()

        # Batches bound the memory (a thumbnail is 64 KB) and amortise the matrix products.
        batch: list[tuple[float, np.ndarray]] = []
        for item in decoder.thumbnails():
            batch.append(item)
            if len(batch) == _BATCH:
                flush(batch)
        if batch:
            flush(batch)
        step = 0.0 if decoder.is_image else decoder.step
        all_times = np.concatenate(times) if times else np.zeros(0, np.float32)
        all_hashes = np.concatenate(hashes) if hashes else np.zeros((0, QUERY_COLUMNS), np.uint64)
        return VideoFingerprint(all_times, all_hashes, decoder.duration, step)
