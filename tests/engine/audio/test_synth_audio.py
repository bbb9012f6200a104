"""The synthetic audio generator and its transforms do what their names say (the search tests rely on it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.synth import audio as synth

SR = synth.SAMPLE_RATE


def _tone(freq: float, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def _band_power(x: np.ndarray, lo: float, hi: float, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / sr)
    return float(spec[(f >= lo) & (f < hi)].sum())


def _db(a: float, b: float) -> float:
    return 10 * np.log10(a / b)


def test_music_is_deterministic_and_differs_by_seed() -> None:
    a, b, c = synth.music(5, 3.0), synth.music(5, 3.0), synth.music(6, 3.0)
    assert a.dtype == np.float32 and a.shape == (3 * SR,)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert 0.5 < np.abs(a).max() <= 1.0


def test_music_has_tonal_energy_in_the_landmark_band_and_varies_in_time() -> None:
    x = synth.music(8, 6.0)
    assert _band_power(x, 250, 3500) > 0.3 * _band_power(x, 0, SR / 2)
    rms = np.sqrt(np.mean(x.reshape(20, -1) ** 2, axis=1))  # loudness per 0.3 s
    assert rms.min() > 0.005 and rms.max() / rms.min() > 1.5  # notes and beats, not a drone


@pytest.mark.parametrize("color", ["white", "pink"])
@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_add_noise_hits_the_requested_snr(color: str, snr: float) -> None:
    x = synth.music(3, 2.0)
    noisy = synth.add_noise(x, snr, color=color, seed=1)
    noise = noisy - x
    assert _db(float(np.mean(x**2)), float(np.mean(noise**2))) == pytest.approx(snr, abs=0.05)


def test_pink_noise_falls_with_frequency() -> None:
    n = synth.pink_noise(SR * 4, np.random.default_rng(0))
    # 1/f: equal power per octave, so a 10x wider band at 10x the frequency holds about the same power.
    assert _db(_band_power(n, 100, 200), _band_power(n, 2000, 4000)) == pytest.approx(0.0, abs=1.5)
    assert _band_power(n, 100, 200) > 10 * _band_power(n, 4000, 4100)  # same width, 30x lower: ~1/30 power


def test_gain_scales_and_clips() -> None:
    x = _tone(440.0)
    assert np.abs(synth.gain(x, -6.0)).max() == pytest.approx(0.5 * 10 ** (-6 / 20), rel=1e-3)
    assert np.abs(synth.gain(x, 12.0)).max() == 1.0


def test_band_pass_keeps_the_phone_band_only() -> None:
    def through(freq: float) -> float:
        x = _tone(freq)
        return _db(float(np.mean(synth.band_pass(x, SR) ** 2)), float(np.mean(x**2)))

    assert through(1000.0) == pytest.approx(0.0, abs=0.5)
    assert through(100.0) < -30
    assert through(7000.0) < -20


def test_speed_changes_duration_and_pitch_together() -> None:
    x = _tone(500.0, 2.0)
    y = synth.speed(x, 1.25)
    assert y.size == round(x.size / 1.25)
    peak = np.fft.rfftfreq(y.size, 1 / SR)[np.argmax(np.abs(np.fft.rfft(y)))]
    assert peak == pytest.approx(625.0, abs=2.0)


def test_excerpt_embed_and_concat_place_samples() -> None:
    x = synth.music(2, 4.0)
    part = synth.excerpt(x, SR, 1.0, 0.5)
    assert np.array_equal(part, x[SR : SR + SR // 2])
    host = np.zeros(SR * 3, np.float32)
    out = synth.embed(part, host, SR, offset=2.0, fade=0.0)
    assert out.size == SR * 3
    assert np.array_equal(out[2 * SR : 2 * SR + part.size], part)
    assert not out[: 2 * SR].any()
    longer = synth.embed(part, host[: SR * 2], SR, offset=1.8)  # runs past the end: the host grows
    assert longer.size == round(1.8 * SR) + part.size
    assert synth.concat(part, part).size == 2 * part.size


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".m4a", ".ogg"])
def test_write_and_read_back(tmp_path: Path, suffix: str) -> None:
    x = synth.music(4, 3.0)
    y = synth.read_audio(synth.write_audio(tmp_path / f"x{suffix}", x, SR, bitrate=128000))
    assert y.size == pytest.approx(x.size, abs=0.05 * SR)
    if suffix in (".wav", ".flac"):
        assert np.abs(y[: x.size] - x).max() < 1e-3  # 16-bit lossless


def test_codec_roundtrip_is_lossy_but_close() -> None:
    x = synth.music(9, 3.0)
    y = synth.codec_roundtrip(x, SR, suffix=".mp3", bitrate=64000)
    n = min(x.size, y.size)
    lag = int(np.argmax(np.correlate(y[: SR // 2 + 3000], x[: SR // 2], mode="valid")))
    y = y[lag : lag + n - 3000]
    corr = np.corrcoef(x[: y.size], y)[0, 1]
    assert 0.8 < corr < 0.99999


def test_write_rejects_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no audio writer"):
        synth.write_audio(tmp_path / "x.xyz", np.zeros(100, np.float32))
