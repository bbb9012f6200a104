"""Session-wide synthetic media for the video tests: a small library, built once, and cached transformed queries.

Everything is generated (PyAV + numpy), small (256x192, 12 fps) and deterministic, so the folder runs quickly on a
shared two-core machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from video_support import (
    LIBRARY_FPS,
    LIBRARY_SECONDS,
    LIBRARY_SEEDS,
    LIBRARY_SIZE,
    UNRELATED_SECONDS,
    UNRELATED_SEEDS,
    Library,
    MakeQuery,
)

from engine.synth.video import Op, make_video, transform_video
from engine.video import VideoFingerprint, VideoModality


@pytest.fixture(scope="session")
def modality() -> VideoModality:
    return VideoModality()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("video_media")


@pytest.fixture(scope="session")
def library(media_dir: Path, modality: VideoModality) -> Library:
    paths = {
        seed: make_video(media_dir / f"lib_{seed}.mp4", seed, LIBRARY_SECONDS, LIBRARY_SIZE, LIBRARY_FPS)
        for seed in LIBRARY_SEEDS
    }
    fingerprints = {}
    for seed, path in paths.items():
        fp = modality.extract(path)
        assert fp is not None
        fingerprints[seed] = fp
    fast, reference = modality.new_index(), modality.reference_index()
    for seed, fp in fingerprints.items():
        fast.add(seed, fp)
        reference.add(seed, fp)
    return Library(paths, fingerprints, fast, reference)


@pytest.fixture(scope="session")
def make_query(media_dir: Path, library: Library, modality: VideoModality) -> MakeQuery:
    """`make_query(name, item, start, seconds, ops)`: the fingerprint of a transformed clip of a library item."""
    cache: dict[str, VideoFingerprint] = {}

    def make(name: str, item: int, start: float, seconds: float, ops: Sequence[Op] = (), ext: str = "mp4",
             codec: str | None = None) -> VideoFingerprint:  # fmt: skip
        if name not in cache:
            path = transform_video(library.paths[item], media_dir / f"q_{name}.{ext}", ops, start=start,
                                   seconds=seconds, codec=codec)  # fmt: skip
            fp = modality.extract(path)
            assert fp is not None
            cache[name] = fp
        return cache[name]

    return make


@pytest.fixture(scope="session")
def unrelated(media_dir: Path, modality: VideoModality) -> list[VideoFingerprint]:
    fps = []
    for seed in UNRELATED_SEEDS:
        path = make_video(media_dir / f"unrelated_{seed}.mp4", seed, UNRELATED_SECONDS, LIBRARY_SIZE, LIBRARY_FPS)
        fp = modality.extract(path)
        assert fp is not None
        fps.append(fp)
    return fps
