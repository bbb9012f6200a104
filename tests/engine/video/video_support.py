"""Shared names of the video tests (a plain module: `conftest` is not importable reliably across folders)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.core import LinearScanIndex
from engine.video import VideoFingerprint, VideoIndex

LIBRARY_SEEDS = (101, 102, 103, 104)  # item id = seed
LIBRARY_SECONDS = 30.0
LIBRARY_SIZE = (256, 192)
LIBRARY_FPS = 12.0
UNRELATED_SEEDS = (201, 202)
UNRELATED_SECONDS = 10.0


@dataclass(frozen=True)
class Library:
    paths: dict[int, Path]
    fingerprints: dict[int, VideoFingerprint]
    fast: VideoIndex
    reference: LinearScanIndex[VideoFingerprint]


MakeQuery = Callable[..., VideoFingerprint]
