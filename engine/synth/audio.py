"""Deterministic synthetic music and the degradations a copy goes through (re-encoding, noise, filtering...).

Everything is seeded: the same seed gives the same samples on every machine, so tests can build a library and
its degraded copies on the fly instead of shipping media. Samples are float32 mono in [-1, 1] unless said.
Files are written and read with PyAV only (there is no ffmpeg binary).
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 22050

# Audio codec, container format and sample format for each file suffix the writer knows.
_CODECS: dict[str, tuple[str, str, str]] = {
    ".wav": ("pcm_s16le", "wav", "s16"),
    ".mp3": ("libmp3lame", "mp3", "fltp"),
    ".m4a": ("aac", "ipod", "fltp"),
    ".aac": ("aac", "adts", "fltp"),
    ".flac": ("flac", "flac", "s16"),
    ".ogg": ("libopus", "ogg", "flt"),
    ".opus": ("libopus", "ogg", "flt"),
    ".mka": ("flac", "matroska", "s16"),
}
_OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


# --- generation -------------------------------------------------------------------------------------------


def _midi_hz(note: np.ndarray | float) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(note) - 69) / 12.0)


def _envelope(n: int, sr: int, attack: float, decay: float, sustain: float, release: float) -> np.ndarray:
    """ADSR envelope of n samples: sharp onsets make the time-localised peaks landmarks anchor on."""
    t = np.arange(n) / sr
    env = np.where(t < attack, t / max(attack, 1e-4), sustain + (1 - sustain) * np.exp(-(t - attack) / decay))
    tail = max(1, min(n, int(release * sr)))
    env[-tail:] *= np.linspace(1.0, 0.0, tail)
    return env.astype(np.float32)


def _tone(freq: float, n: int, sr: int, harmonics: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A note with a harmonic timbre and a little vibrato, like a real instrument rather than a pure sine."""
    t = np.arange(n) / sr
    vib = 1.0 + 0.004 * np.sin(2 * np.pi * rng.uniform(4.0, 6.5) * t)
    phase = 2 * np.pi * freq * np.cumsum(vib) / sr
    out = np.zeros(n, dtype=np.float64)
    for k, amp in enumerate(harmonics, start=1):
        if freq * k < sr * 0.45:
            out += amp * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return out.astype(np.float32)


def _percussion(kind: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sr
    if kind == "kick":  # a falling sine thump
        f = 50 + 90 * np.exp(-t / 0.03)
        return (np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.12)).astype(np.float32)
    noise = rng.standard_normal(n).astype(np.float32)
    if kind == "hat":  # bright short noise: first difference tilts the spectrum up
        noise = np.diff(noise, prepend=0.0).astype(np.float32) * 0.5
        return noise * np.exp(-t / 0.03).astype(np.float32)
    return noise * np.exp(-t / 0.09).astype(np.float32)  # snare


def music(seed: int, duration: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Music-like audio: a melody, a bass line, chords and drums in a key and tempo drawn from `seed`.

    The melody is a random walk over the scale with random rhythms, so no two seeds (and no two bars of one
    piece) share a long run of notes, yet each piece has the harmonic structure of real music.
    """
    rng = np.random.default_rng(seed)
    n_total = round(duration * sr)
    out = np.zeros(n_total + sr, dtype=np.float32)  # one second of slack for ringing notes
    beat = 60.0 / rng.uniform(78, 150)
    root = int(rng.integers(45, 57))
    scale = np.array([0, 2, 4, 5, 7, 9, 11] if rng.random() < 0.6 else [0, 2, 3, 5, 7, 8, 10])
    timbres = [np.exp(-np.arange(rng.integers(4, 10)) * rng.uniform(0.3, 1.2)) for _ in range(3)]

    def place(sig: np.ndarray, start_s: float, gain: float) -> None:
        i = int(start_s * sr)
        if i >= out.size:
            return
        j = min(out.size, i + sig.size)
        out[i:j] += gain * sig[: j - i]

    # Melody: scale-degree random walk, durations of 1/4 to 1 beat.
    t, degree = 0.0, int(rng.integers(7, 14))
    while t < duration:
        dur = beat * float(rng.choice([0.25, 0.5, 0.5, 0.75, 1.0]))
        degree = int(np.clip(degree + rng.integers(-3, 4), 0, 20))
        if rng.random() > 0.1:  # the odd rest
            note = root + 12 + 12 * (degree // 7) + scale[degree % 7]
            n = int((dur + 0.15) * sr)
            env = _envelope(n, sr, 0.01, rng.uniform(0.08, 0.4), 0.4, 0.06)
            place(_tone(float(_midi_hz(note)), n, sr, timbres[0], rng) * env, t, rng.uniform(0.25, 0.4))
        t += dur

    # Bass and chords: one chord per bar (4 beats) on a random degree.
    t = 0.0
    while t < duration:
        d = int(rng.integers(0, 7))
        chord = [root + scale[(d + k) % 7] + 12 * ((d + k) // 7) for k in (0, 2, 4)]
        n = int(4 * beat * sr)
        env = _envelope(n, sr, 0.03, 0.6, 0.5, 0.2)
        for note in chord:
            place(_tone(float(_midi_hz(note)), n, sr, timbres[1], rng) * env, t, 0.09)
        for b in range(4):
            nb = int(beat * sr)
            bass = _tone(float(_midi_hz(root - 12 + scale[d])), nb, sr, timbres[2], rng)
            place(bass * _envelope(nb, sr, 0.01, 0.15, 0.3, 0.05), t + b * beat, 0.2)
        t += 4 * beat

    # Drums: kick on 1 and 3, snare on 2 and 4, hats on eighths with random gaps.
    n_beats = int(duration / beat) + 1
    nd = int(0.3 * sr)
    for b in range(n_beats):
        place(_percussion("kick" if b % 2 == 0 else "snare", nd, sr, rng), b * beat, 0.35 if b % 2 == 0 else 0.15)
        for half in (0.0, 0.5):
            if rng.random() < 0.8:
                place(_percussion("hat", nd, sr, rng), (b + half) * beat, 0.08)

    out = out[:n_total]
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    return (out * (0.7 / peak) if peak > 0 else out).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f noise by shaping white noise in the frequency domain."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


# --- transforms -------------------------------------------------------------------------------------------


def add_noise(x: np.ndarray, snr_db: float, *, color: str = "white", seed: int = 0) -> np.ndarray:
    """Add white or pink noise so that signal power / noise power = `snr_db`."""
    rng = np.random.default_rng(seed)
    if color == "white":
        noise = rng.standard_normal(x.size).astype(np.float32)
    elif color == "pink":
        noise = pink_noise(x.size, rng)
    else:
        raise ValueError(f"unknown noise colour {color!r}")
    p_sig = float(np.mean(x.astype(np.float64) ** 2))
    p_noise = float(np.mean(noise.astype(np.float64) ** 2)) or 1.0
    scale = np.sqrt(p_sig / (p_noise * 10 ** (snr_db / 10)))
    return (x + scale * noise).astype(np.float32)


def gain(x: np.ndarray, db: float) -> np.ndarray:
    """Volume change; clipped to [-1, 1] as a real file would be."""
    return np.clip(x * 10 ** (db / 20), -1.0, 1.0).astype(np.float32)


def band_pass(x: np.ndarray, sr: int, low: float = 300.0, high: float = 3400.0, order: int = 4) -> np.ndarray:
    """Telephone-like band-pass: Butterworth magnitude response (zero phase) applied in the frequency domain."""
    spec = np.fft.rfft(x.astype(np.float64))
    f = np.fft.rfftfreq(x.size, 1.0 / sr)
    f[0] = 1e-6
    hp = 1.0 / np.sqrt(1.0 + (low / f) ** (2 * order))
    lp = 1.0 / np.sqrt(1.0 + (f / high) ** (2 * order))
    return np.fft.irfft(spec * hp * lp, x.size).astype(np.float32)


def speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster (tempo and pitch together, like a tape or a resampled upload)."""
    n_out = round(x.size / factor)
    pos = np.arange(n_out) * factor
    return np.interp(pos, np.arange(x.size), x).astype(np.float32)


def excerpt(x: np.ndarray, sr: int, start: float, duration: float) -> np.ndarray:
    i = round(start * sr)
    return x[i : i + round(duration * sr)].copy()


def embed(clip: np.ndarray, host: np.ndarray, sr: int, offset: float, *, fade: float = 0.01) -> np.ndarray:
    """`host` with `clip` replacing its samples from `offset` seconds on (short cross-fades, no clicks)."""
    i = round(offset * sr)
    out = np.concatenate([host, np.zeros(max(0, i + clip.size - host.size), np.float32)]).astype(np.float32)
    nf = min(int(fade * sr), clip.size // 2)
    ramp = np.ones(clip.size, np.float32)
    if nf > 0:
        ramp[:nf] = np.linspace(0, 1, nf)
        ramp[-nf:] = np.linspace(1, 0, nf)
    out[i : i + clip.size] = out[i : i + clip.size] * (1 - ramp) + clip * ramp
    return out


def concat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts).astype(np.float32)


# --- files ------------------------------------------------------------------------------------------------


def _layout(x: np.ndarray) -> str:
    """Mono samples are 1-D; stereo ones are (2, n)."""
    if x.ndim == 1:
        return "mono"
    if x.ndim == 2 and x.shape[0] == 2:
        return "stereo"
    raise ValueError(f"samples must be (n,) mono or (2, n) stereo, got shape {x.shape}")


def _add_audio(
    container: av.container.OutputContainer, sr: int, codec: str, bitrate: int | None, layout: str = "mono"
) -> av.audio.stream.AudioStream:
    rate = sr if codec != "libopus" else min((r for r in _OPUS_RATES if r >= sr), default=48000)
    stream = container.add_stream(codec, rate=rate, layout=layout)
    if bitrate:
        stream.bit_rate = bitrate
    return stream


def _feed_audio(
    container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, x: np.ndarray, sr: int, fmt: str
) -> None:
    """Encode samples into `stream`, resampled to the rate and sample format the codec accepts."""
    layout = _layout(x)
    resampler = av.AudioResampler(format=fmt, layout=layout, rate=stream.rate)
    pcm = np.ascontiguousarray(np.clip(np.atleast_2d(x), -1.0, 1.0), dtype=np.float32)
    chunk = 4096
    for i in range(0, pcm.shape[1], chunk):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, i : i + chunk]), format="fltp", layout=layout)
        frame.sample_rate = sr
        frame.pts = i
        frame.time_base = Fraction(1, sr)
        for out in resampler.resample(frame):
            container.mux(stream.encode(out))
    for out in resampler.resample(None):
        container.mux(stream.encode(out))
    container.mux(stream.encode(None))


def _encode(container: av.container.OutputContainer, x: np.ndarray, sr: int, suffix: str, bitrate: int | None) -> None:
    codec, _, fmt = _CODECS[suffix]
    _feed_audio(container, _add_audio(container, sr, codec, bitrate, _layout(x)), x, sr, fmt)


def write_audio(path: Path | str, x: np.ndarray, sr: int = SAMPLE_RATE, *, bitrate: int | None = None) -> Path:
    """Write samples ((n,) mono or (2, n) stereo) to wav/mp3/m4a/aac/flac/ogg/opus/mka, chosen by the suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _CODECS:
        raise ValueError(f"no audio writer for {suffix!r}; known: {sorted(_CODECS)}")
    with av.open(str(path), "w", format=_CODECS[suffix][1]) as container:
        _encode(container, x, sr, suffix, bitrate)
    return path


def read_audio(path: Path | str | io.BytesIO, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream to mono float32 at `sr` (for round trips in tests)."""
    chunks: list[np.ndarray] = []
    src = path if isinstance(path, io.BytesIO) else str(path)
    with av.open(src) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        for frame in container.decode(audio=0):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def codec_roundtrip(x: np.ndarray, sr: int = SAMPLE_RATE, *, suffix: str = ".mp3", bitrate: int = 64000) -> np.ndarray:
    """Encode and decode in memory: the lossy re-encoding a copy goes through (mp3, m4a, ogg...)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=_CODECS[suffix][1]) as container:
        _encode(container, x, sr, suffix, bitrate)
    buf.seek(0)
    return read_audio(buf, sr)


def write_video_with_audio(
    path: Path | str,
    x: np.ndarray | None,
    sr: int = SAMPLE_RATE,
    *,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
    audio_codec: str = "aac",
) -> Path:
    """A small video file (moving gradient, libx264/mpeg4) carrying `x` as its audio track; None = silent."""
    path = Path(path)
    duration = (x.size / sr) if x is not None else 2.0
    with av.open(str(path), "w") as container:
        vcodec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        vs = container.add_stream(vcodec, rate=fps)
        vs.width, vs.height = size
        vs.pix_fmt = "yuv420p"
        # Both streams must exist before the first packet is muxed.
        astream = _add_audio(container, sr, audio_codec, None, _layout(x)) if x is not None else None
        w, h = size
        gx = np.arange(w, dtype=np.float32)[None, :]
        gy = np.arange(h, dtype=np.float32)[:, None]
        for i in range(max(1, int(duration * fps))):
            img = ((gx * 3 + gy * 2 + i * 7) % 256).astype(np.uint8)
            rgb = np.stack([img, np.roll(img, i, axis=1), 255 - img], axis=-1)
            container.mux(vs.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(vs.encode(None))
        if astream is not None and x is not None:
            _feed_audio(container, astream, x, sr, "fltp")
    return path
