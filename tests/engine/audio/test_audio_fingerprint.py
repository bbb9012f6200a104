"""Extraction from every container we accept (audio files and the soundtrack of videos), and serialisation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from audio_testlib import SR, AudioLibrary

from engine.audio import AudioFingerprint, AudioModality
from engine.audio.base import _library_share
from engine.audio.decode import decode_mono
from engine.audio.landmarks import find_peaks, join_hash, split_hash
from engine.audio.params import FANOUT, LIBRARY_FANOUT
from engine.core import Modality
from engine.errors import MediaError
from engine.synth import audio as synth


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return synth.music(31, 6.0, SR)


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".mka"])
def test_every_audio_format_is_fingerprinted(tmp_path: Path, clip: np.ndarray, suffix: str) -> None:
    path = synth.write_audio(tmp_path / f"clip{suffix}", clip, SR, bitrate=96000 if suffix != ".wav" else None)
    fp = AudioModality().extract(path)
    assert isinstance(fp, AudioFingerprint)
    assert fp.duration == pytest.approx(6.0, abs=0.1)  # codec priming/padding only
    assert 15 <= len(fp) / fp.duration <= 45  # landmarks per second, as designed
    assert 6 <= fp.n_peaks / fp.duration <= 12


def test_stereo_is_mixed_down(tmp_path: Path, clip: np.ndarray) -> None:
    stereo = np.stack([clip, 0.5 * clip])
    mono = decode_mono(synth.write_audio(tmp_path / "mono.flac", 0.75 * clip, SR))
    mixed = decode_mono(synth.write_audio(tmp_path / "stereo.flac", stereo, SR))
    assert mono is not None and mixed is not None
    assert mixed.shape == mono.shape
    assert np.abs(mixed - mono).max() < 1e-3


@pytest.mark.parametrize("codec", ["pcm_u8", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_f64le"])
def test_every_sample_format_decodes_to_the_same_mono_signal(tmp_path: Path, clip: np.ndarray, codec: str) -> None:
    """Integer, float, packed stereo: decoding reads each plane layout and scale right."""
    rate = 16000
    x = synth.speed(clip[: SR * 2], SR / rate)  # 2 s at 16 kHz (resampling by interpolation is fine here)
    path = tmp_path / f"{codec}.wav"
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream(codec, rate=rate, layout="stereo")
        fmt = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=fmt, layout="stereo", rate=rate)
        frame = av.AudioFrame.from_ndarray(np.stack([x, 0.5 * x]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for out in [*resampler.resample(frame), *resampler.resample(None)]:
            container.mux(stream.encode(out))
        container.mux(stream.encode(None))

    y = decode_mono(path, rate)

    assert y is not None and y.shape == x.shape
    assert np.abs(y - 0.75 * x).max() < (0.01 if codec == "pcm_u8" else 1e-4)


def test_soundtrack_of_a_video_is_fingerprinted_and_found(audio_library: AudioLibrary, tmp_path: Path) -> None:
    sound = synth.excerpt(audio_library.audio[42], SR, 7.0, 5.0)
    video = synth.write_video_with_audio(tmp_path / "clip.mp4", sound, SR)
    mkv = synth.write_video_with_audio(tmp_path / "clip.mkv", sound, SR, audio_codec="libmp3lame")

    for path in (video, mkv):
        fp = audio_library.modality.extract(path)
        assert fp is not None and fp.duration == pytest.approx(5.0, abs=0.1)
        [match] = audio_library.index.search(fp)
        assert match.item_id == 42
        seg = match.segments[0]
        assert seg.ref_start - seg.input_start == pytest.approx(7.0, abs=0.2)


def test_video_without_sound_has_no_audio_fingerprint(tmp_path: Path) -> None:
    silent = synth.write_video_with_audio(tmp_path / "silent.mp4", None, SR)
    assert AudioModality().extract(silent) is None


def test_extraction_is_deterministic_and_volume_independent(tmp_path: Path, clip: np.ndarray) -> None:
    modality = AudioModality()
    a = modality.extract(synth.write_audio(tmp_path / "a.wav", clip, SR))
    b = modality.extract(synth.write_audio(tmp_path / "b.wav", clip, SR))
    quiet = modality.extract(synth.write_audio(tmp_path / "quiet.wav", synth.gain(clip, -20.0), SR))
    assert a is not None and b is not None and quiet is not None
    assert a.to_bytes() == b.to_bytes()
    same = set(zip(a.hashes.tolist(), a.times.tolist(), strict=True)) & set(
        zip(quiet.hashes.tolist(), quiet.times.tolist(), strict=True)
    )
    assert len(same) >= 0.95 * len(a)  # only int16 quantisation differs


def test_serialisation_round_trip_is_exact_and_compact(audio_library: AudioLibrary) -> None:
    fp = audio_library.fingerprints[205]
    data = fp.to_bytes()
    back = AudioFingerprint.from_bytes(data)
    loaded = audio_library.modality.load_fingerprint(data)

    assert isinstance(back, AudioFingerprint) and isinstance(loaded, AudioFingerprint)
    assert back.duration == fp.duration and len(back) == len(fp)
    assert np.array_equal(back.peak_t, fp.peak_t) and np.array_equal(back.peak_f, fp.peak_f)
    assert np.array_equal(back.hashes, fp.hashes) and np.array_equal(back.times, fp.times)
    assert len(data) < 80 * fp.duration  # bytes per second of audio


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: d[:10], "truncated"),
        (lambda d: b"XXXX" + d[4:], "bad magic"),
        (lambda d: d[:4] + b"\x63\x00" + d[6:], "format 99"),
        (lambda d: d[:24] + b"garbage", "corrupt"),
    ],
)
def test_damaged_fingerprint_bytes_are_rejected(
    audio_library: AudioLibrary, mangle: Callable[[bytes], bytes], message: str
) -> None:
    data = audio_library.fingerprints[17].to_bytes()
    with pytest.raises(MediaError, match=message):
        AudioFingerprint.from_bytes(mangle(data))


def test_hash_layout_round_trips() -> None:
    rng = np.random.default_rng(0)
    f1, df, dt = rng.integers(0, 512, 100), rng.integers(0, 127, 100), rng.integers(1, 64, 100)
    h = join_hash(f1, df, dt)
    assert all(np.array_equal(a, b) for a, b in zip(split_hash(h), (f1, df, dt), strict=True))
    assert int(h.max()) < 1 << 22


def test_an_index_stores_each_anchors_first_landmark_of_those_a_query_hashes() -> None:
    t, f = find_peaks(synth.music(5, 8.0, 8000))
    fp = AudioFingerprint(duration=8.0, peak_t=t, peak_f=f)
    stored = list(zip(*(a.tolist() for a in fp.library_landmarks()), strict=True))
    hashed = list(zip(fp.hashes.tolist(), fp.times.tolist(), strict=True))
    assert set(stored) <= set(hashed)  # a copy's query hashes every pair the index holds of the original
    assert LIBRARY_FANOUT == 1 and FANOUT == 3

    def anchor(h: int, at: int) -> tuple[int, int]:  # a chord puts several anchors on one frame
        return at, int(split_hash(np.array([h]))[0][0])

    held = Counter(anchor(h, at) for h, at in stored)
    made = Counter(anchor(h, at) for h, at in hashed)
    assert set(held) == set(made) and set(held.values()) == {1} and len(hashed) > 2.5 * len(stored)
    assert max(made.values()) == FANOUT
    # A query landmark's share of the ratio's denominator: its anchor's stored landmarks, spread over its own.
    share = _library_share(fp.hashes, fp.times)
    assert share.sum() == pytest.approx(len(stored))
    assert np.allclose(share, [1 / made[anchor(h, at)] for h, at in hashed])


def test_peaks_are_sorted_and_in_band() -> None:
    t, f = find_peaks(synth.music(3, 4.0, 8000))
    assert t.size > 30 and np.all(np.diff(t.astype(np.int64)) >= 0)
    hz = f / 16 * 8000 / 1024
    assert hz.min() >= 250 and hz.max() <= 3500


def test_audio_modality_is_a_modality() -> None:
    modality = AudioModality()
    assert isinstance(modality, Modality) and modality.name == "audio"
    assert modality.fingerprint_type is AudioFingerprint
    assert len(modality.new_index()) == 0 and len(modality.reference_index()) == 0
