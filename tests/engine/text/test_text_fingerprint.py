from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.core import ExtractOptions
from engine.errors import EmptyMedia, MediaError
from engine.synth import text as synth
from engine.text import TextFingerprint, TextModality


def test_round_trip_plain_text() -> None:
    fingerprint = TextFingerprint.from_text(synth.document(1, 3000, "zh"))
    loaded = TextFingerprint.from_bytes(fingerprint.to_bytes())
    assert loaded.text == fingerprint.text
    assert loaded.duration == len(fingerprint.text) == 3000
    assert np.array_equal(loaded.hashes, fingerprint.hashes)
    assert np.array_equal(loaded.positions, fingerprint.positions)
    assert (loaded.k, loaded.w, len(loaded)) == (fingerprint.k, fingerprint.w, len(fingerprint))
    assert loaded.normalized.text == fingerprint.normalized.text


def test_round_trip_timed_text_keeps_cues(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(synth.to_asr_json(synth.cues(synth.document(2, 800, "en"))), encoding="utf-8")
    fingerprint = TextModality().extract(path, ExtractOptions(text_type="ASR"))
    loaded = TextModality().load_fingerprint(fingerprint.to_bytes())
    assert loaded.parsed == fingerprint.parsed
    assert loaded.duration == pytest.approx(json.loads(path.read_text())[-1]["end"])


def test_text_without_letters_is_empty_and_garbage_is_rejected() -> None:
    with pytest.raises(EmptyMedia):
        TextFingerprint.from_text("!!! ... ???")
    with pytest.raises(MediaError):
        TextFingerprint.from_bytes(b"nonsense")
