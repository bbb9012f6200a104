"""A small audio library built once per session: a few generated pieces, written through real codecs,
fingerprinted, and held in both the fast index and the brute-force reference."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from audio_testlib import ITEM_SECONDS, ITEMS, SR, AudioLibrary

from engine.audio import AudioFingerprint, AudioModality
from engine.synth import audio as synth


@pytest.fixture(scope="session")
def audio_library(tmp_path_factory: pytest.TempPathFactory) -> AudioLibrary:
    folder = tmp_path_factory.mktemp("audio_library")
    modality = AudioModality()
    audio: dict[int, np.ndarray] = {}
    fingerprints: dict[int, AudioFingerprint] = {}
    for item_id, (seed, suffix) in ITEMS.items():
        audio[item_id] = synth.music(seed, ITEM_SECONDS, SR)
        path = synth.write_audio(folder / f"item_{item_id}{suffix}", audio[item_id], SR, bitrate=128000)
        fp = modality.extract(path)
        assert fp is not None
        fingerprints[item_id] = fp
    index, reference = modality.new_index(), modality.reference_index()
    for item_id, fp in fingerprints.items():
        index.add(item_id, fp)
        reference.add(item_id, fp)
    return AudioLibrary(modality, folder, audio, fingerprints, index, reference)


@pytest.fixture(scope="session")
def unrelated_music() -> Callable[[int, float], np.ndarray]:
    """Music from seeds no library item uses."""
    return lambda k, seconds: synth.music(700 + k, seconds, SR)
