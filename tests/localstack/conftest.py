"""Media and helpers for the local-stack tests: tiny generated videos, made once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.synth import video as synth

SMALL = {"size": (240, 180), "fps": 12.0}


@pytest.fixture(scope="session")
def stack_media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stack-media")
    library = synth.make_video(root / "film.mp4", seed=31, seconds=24.0, **SMALL)  # type: ignore[arg-type]
    media = {
        "library": library,
        "copy": synth.transform_video(
            library, root / "copy.mp4", [synth.Scale(200, 150), synth.Reencode(80_000)], start=6.0, seconds=10.0
        ),
        "unrelated": synth.make_video(root / "other.mp4", seed=57, seconds=10.0, **SMALL),  # type: ignore[arg-type]
        "corrupt": root / "corrupt.mp4",
    }
    media["corrupt"].write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(2048))
    return media


@pytest.fixture(scope="session")
def burst_media(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Eight distinct short clips for crash tests."""
    root = tmp_path_factory.mktemp("burst-media")
    return [
        synth.make_video(root / f"clip-{i}.mp4", seed=200 + i, seconds=4.0, size=(160, 120), fps=10.0) for i in range(8)
    ]
