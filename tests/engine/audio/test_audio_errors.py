"""Bad inputs raise the right `MediaError` subclass, with a message naming the problem and the file."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from audio_testlib import SR

from engine.audio import AudioModality
from engine.errors import EmptyMedia, MediaError, MediaNotFound, UnsupportedMedia
from engine.synth import audio as synth


@pytest.fixture(scope="module")
def mp3_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = synth.write_audio(tmp_path_factory.mktemp("err") / "ok.mp3", synth.music(21, 8.0, SR), SR, bitrate=96000)
    return path.read_bytes()


def _extract(path: Path) -> object:
    return AudioModality().extract(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaNotFound, match="not found") as err:
        _extract(tmp_path / "nope.mp3")
    assert err.value.code == "InvalidInput.NotFound"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp3"
    path.write_bytes(b"")
    with pytest.raises(EmptyMedia, match="empty"):
        _extract(path)


def test_text_is_not_media(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_text("this is not an mp3, just some words\n" * 20, encoding="utf-8")
    with pytest.raises(UnsupportedMedia, match=r"notes\.mp3"):
        _extract(path)


def test_random_bytes_are_not_media(tmp_path: Path) -> None:
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(MediaError, match=r"noise\.wav"):
        _extract(path)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not a regular file"):
        _extract(tmp_path)


def test_wav_with_a_header_and_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, SR, 2 * SR, 2, 16)  # PCM, mono, 16 bit
    path.write_bytes(b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + fmt + b"data" + struct.pack("<I", 0))
    with pytest.raises(EmptyMedia, match="no samples"):
        _extract(path)


def test_header_cut_short_is_not_media(tmp_path: Path, mp3_bytes: bytes) -> None:
    path = tmp_path / "cut.wav"
    path.write_bytes(b"RIFF\x00\x00")
    with pytest.raises(MediaError):
        _extract(path)


def test_mp3_damaged_in_the_middle_still_fingerprints(tmp_path: Path, mp3_bytes: bytes) -> None:
    """A few bad packets in a real upload should not lose the whole file: it is still found, nearly whole."""
    good, bad = tmp_path / "good.mp3", tmp_path / "bad.mp3"
    good.write_bytes(mp3_bytes)
    mid = len(mp3_bytes) // 2
    bad.write_bytes(mp3_bytes[:mid] + bytes(1500) + mp3_bytes[mid + 1500 :])
    modality = AudioModality()
    a, b = modality.extract(good), modality.extract(bad)
    assert a is not None and b is not None
    index = modality.new_index()
    index.add(1, a)

    [match] = index.search(b)

    assert match.item_id == 1
    assert sum(s.input_duration for s in match.segments) > 0.8 * a.duration


def test_timestamp_gap_is_filled_with_silence(tmp_path: Path) -> None:
    """Frames missing from a stream (their timestamps skip ahead) leave the rest at its true time."""
    x = synth.music(22, 8.0, SR)
    path = tmp_path / "gap.mka"
    chunk = 1024
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=SR, layout="mono")
        for i in range(0, x.size, chunk):
            if 3 * SR <= i < 4 * SR:
                continue  # one second of frames lost
            frame = av.AudioFrame.from_ndarray(
                (np.clip(x[None, i : i + chunk], -1, 1) * 32767).astype(np.int16), format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts, frame.time_base = SR, i, Fraction(1, SR)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    full = AudioModality().extract(synth.write_audio(tmp_path / "full.flac", x, SR))
    holed = AudioModality().extract(path)
    assert full is not None and holed is not None

    assert holed.duration == pytest.approx(8.0, abs=0.1)
    index = AudioModality().new_index()
    index.add(7, full)
    [match] = index.search(holed)
    # Everything, before and after the hole, is found at its own time (not 1 s early after the hole).
    assert all(abs(s.ref_start - s.input_start) < 0.05 for s in match.segments)
    assert max(s.input_end for s in match.segments) > 7.5
    assert min(s.input_start for s in match.segments) < 1.0


def test_errors_are_engine_errors_with_mps_codes(tmp_path: Path) -> None:
    path = tmp_path / "x.m4a"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(MediaError) as err:
        _extract(path)
    assert err.value.code.startswith("InvalidInput.")
    assert err.value.message
