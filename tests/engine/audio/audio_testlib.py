"""Shared by the audio tests: the session library's layout and its holder (the fixtures live in conftest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.audio import AudioFingerprint, AudioIndex, AudioModality
from engine.core import LinearScanIndex
from engine.synth import audio as synth

SR = synth.SAMPLE_RATE
# Item ids are deliberately sparse and unordered: the index must not assume 0..n-1.
ITEMS: dict[int, tuple[int, str]] = {  # item id -> (music seed, file suffix it is stored as)
    205: (11, ".mp3"),
    17: (12, ".flac"),
    9001: (13, ".m4a"),
    42: (14, ".wav"),
}
ITEM_SECONDS = 20.0


@dataclass
class AudioLibrary:
    modality: AudioModality
    folder: Path
    audio: dict[int, np.ndarray]
    fingerprints: dict[int, AudioFingerprint]
    index: AudioIndex
    reference: LinearScanIndex[AudioFingerprint]
    _queries: dict[str, AudioFingerprint] = field(default_factory=dict)

    def query(
        self, name: str, samples: np.ndarray, suffix: str = ".mp3", bitrate: int | None = 64000
    ) -> AudioFingerprint:
        """Write `samples` as a file and fingerprint it, once per name for the session."""
        if name not in self._queries:
            path = synth.write_audio(self.folder / f"query_{name}{suffix}", samples, SR, bitrate=bitrate)
            fp = self.modality.extract(path)
            assert fp is not None
            self._queries[name] = fp
        return self._queries[name]
