"""Media for the fault-injection suite: tiny generated clips (made once per session) and a corrupt file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.synth import video as synth


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("fault-media")
    return [
        synth.make_video(root / f"clip-{i}.mp4", seed=400 + i, seconds=3.0, size=(160, 120), fps=8.0) for i in range(8)
    ]


@pytest.fixture(scope="session")
def corrupt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fault-corrupt") / "corrupt.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(1024))
    return path
