"""Synthetic videos WITH a soundtrack, and what a copy does to that soundtrack.

`engine.synth.video` draws pictures and `engine.synth.audio` makes music; this module muxes the two into one
file, so a library video carries a soundtrack the way real ones do (MPS ModelId 12 fingerprints both):

- `make_av(path, seed, seconds, ...)`: frames of synthetic video `seed` + synthetic music `audio_seed`, muxed
  with PyAV into mp4/mov/mkv/ts (H.264 + AAC) or webm (VP9 + Opus), audio and video interleaved.
- `write_av(path, frames, fps, size, samples)`: the muxer for any frames and samples.
- `read_soundtrack(path, start, seconds)`: the decoded soundtrack (first audio stream) of a file.
- `soundtrack_excerpt(src, dst, start, end, ops)`: an audio file (.mp3, .m4a, .wav...) of seconds
  [start, end) of a video's soundtrack, degraded by audio ops (`Noise`, `Gain`): the song someone rips.
- `transform_av(src, dst, video_ops, audio_ops, start, seconds)`: `engine.synth.video.transform_video` that
  keeps the soundtrack (cut to the same range and put through `audio_ops`, e.g. `EmbedAudio` to mirror
  `video.Embed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from engine.synth import audio as synth_audio
from engine.synth import video as synth_video

SAMPLE_RATE = synth_audio.SAMPLE_RATE

# extension -> (FFmpeg muxer, video codec, audio codec): the pairs each container usually carries.
_CONTAINERS: dict[str, tuple[str, str, str]] = {
    "mp4": ("mp4", "libx264", "aac"),
    "mov": ("mov", "libx264", "aac"),
    "mkv": ("matroska", "libx264", "aac"),
    "ts": ("mpegts", "libx264", "aac"),
    "webm": ("webm", "libvpx-vp9", "libopus"),
}
_OPUS_RATE = 48000  # libopus takes 48/24/16/12/8 kHz only; 48 kHz holds any synthetic rate
_AUDIO_CHUNK = 1024  # samples per fed frame: small, so audio packets interleave finely with video ones


class AudioOp(Protocol):
    def __call__(self, samples: np.ndarray, sr: int) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class Noise:
    """Additive noise at `snr_db` (white or pink): a recording through a room, a cheap mic, a lossy chain."""

    snr_db: float = 15.0
    color: str = "white"
    seed: int = 0

    def __call__(self, samples: np.ndarray, sr: int) -> np.ndarray:
        return synth_audio.add_noise(samples, self.snr_db, color=self.color, seed=self.seed)


@dataclass(frozen=True, slots=True)
class Gain:
    """Volume change in dB (clipped like a real file)."""

    db: float

    def __call__(self, samples: np.ndarray, sr: int) -> np.ndarray:
        return synth_audio.gain(samples, self.db)


@dataclass(frozen=True, slots=True)
class EmbedAudio:
    """Put the samples between `before` and `after` seconds of unrelated music: the sound of `video.Embed`."""

    seed: int = 9001
    before: float = 5.0
    after: float = 5.0

    def __call__(self, samples: np.ndarray, sr: int) -> np.ndarray:
        # Different seeds before and after: two unrelated pieces, as the host video shows two unrelated scenes.
        parts = [synth_audio.music(self.seed, self.before, sr)] if self.before > 0 else []
        parts.append(samples.astype(np.float32))
        if self.after > 0:
            parts.append(synth_audio.music(self.seed + 1, self.after, sr))
        return synth_audio.concat(*parts)


def _video_options(codec: str, bitrate: int | None) -> dict[str, str]:
    # Fast presets: generated media is made on the fly in tests and the demo, on 2 shared cores.
    if codec == "libx264":
        return {"preset": "veryfast"} if bitrate else {"preset": "veryfast", "crf": "20"}
    if codec == "libvpx-vp9":
        fast = {"deadline": "realtime", "cpu-used": "8"}
        return fast if bitrate else {**fast, "crf": "32", "b": "0"}
    return {}


def _video_stream(
    out: av.container.OutputContainer, codec: str, fps: float, size: tuple[int, int], bitrate: int | None
) -> av.video.stream.VideoStream:
    rate = Fraction(fps).limit_denominator(1001)
    stream = out.add_stream(codec, rate=rate, options=_video_options(codec, bitrate))
    width, height = size
    stream.width, stream.height = width - width % 2, height - height % 2  # yuv420p needs even sides
    stream.pix_fmt = "yuv420p"
    if bitrate:
        stream.bit_rate = bitrate
    return stream


class _SoundtrackFeed:
    """Encodes mono samples into an audio stream of `out` a little at a time, as the video advances."""

    def __init__(
        self, out: av.container.OutputContainer, codec: str, samples: np.ndarray, sr: int, bitrate: int | None
    ) -> None:
        self._out = out
        self.stream = out.add_stream(codec, rate=_OPUS_RATE if codec == "libopus" else sr, layout="mono")
        if bitrate:
            self.stream.bit_rate = bitrate
        self._resampler = av.AudioResampler(format=self.stream.format.name, layout="mono", rate=self.stream.rate)
        self._pcm = np.ascontiguousarray(np.clip(np.asarray(samples).reshape(-1), -1.0, 1.0), dtype=np.float32)
        self._sr = sr
        self.fed = 0  # samples handed to the encoder so far

    def until(self, end: int) -> None:
        """Encode and mux every sample before `end`."""
        while self.fed < min(end, self._pcm.size):
            stop = min(self._pcm.size, self.fed + _AUDIO_CHUNK)
            frame = av.AudioFrame.from_ndarray(self._pcm[None, self.fed : stop].copy(), format="fltp", layout="mono")
            frame.sample_rate = self._sr
            frame.pts = self.fed
            frame.time_base = Fraction(1, self._sr)
            self._mux(self._resampler.resample(frame))
            self.fed = stop

    def close(self) -> None:
        """The rest of the samples (a soundtrack longer than the pictures is kept whole), then the flushes."""
        self.until(self._pcm.size)
        self._mux(self._resampler.resample(None))
        self._out.mux(self.stream.encode(None))

    def _mux(self, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            self._out.mux(self.stream.encode(frame))


def write_av(
    path: Path | str, frames: Iterable[np.ndarray], fps: float, size: tuple[int, int], samples: np.ndarray | None,
    sr: int = SAMPLE_RATE, *, video_bitrate: int | None = None, audio_bitrate: int | None = None,
) -> Path:  # fmt: skip
    """Mux RGB `frames` of `size` (w, h) at `fps` and mono `samples` at `sr` into `path` (container by extension:
    mp4, mov, mkv, ts, webm). Audio is fed as the video advances, so packets interleave as a real file's do;
    `samples=None` writes a silent video."""
    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    if ext not in _CONTAINERS:
        raise ValueError(f"no audio+video writer for {path.suffix!r}; known: {sorted(_CONTAINERS)}")
    muxer, vcodec, acodec = _CONTAINERS[ext]
    with av.open(str(path), "w", format=muxer) as out:
        vstream = _video_stream(out, vcodec, fps, size, video_bitrate)
        # Both streams must exist before the first packet is muxed.
        sound = _SoundtrackFeed(out, acodec, samples, sr, audio_bitrate) if samples is not None else None
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: vstream.height, : vstream.width]), "rgb24")
            frame.pts = i
            out.mux(vstream.encode(frame))
            if sound is not None:
                sound.until(round((i + 1) / fps * sr))
        out.mux(vstream.encode(None))
        if sound is not None:
            sound.close()
    return path


def make_av(
    path: Path | str, seed: int, seconds: float = 30.0, size: tuple[int, int] = (320, 240), fps: float = 15.0,
    *, audio_seed: int | None = None, sr: int = SAMPLE_RATE, video_bitrate: int | None = None,
    audio_bitrate: int | None = None,
) -> Path:  # fmt: skip
    """Synthetic video `seed` with synthetic music `audio_seed` (default: `seed`) as its soundtrack."""
    music = synth_audio.music(seed if audio_seed is None else audio_seed, seconds, sr)
    frames = synth_video.iter_frames(seed, seconds, size, fps)
    return write_av(path, frames, fps, size, music, sr, video_bitrate=video_bitrate, audio_bitrate=audio_bitrate)


def read_soundtrack(path: Path | str, start: float = 0.0, seconds: float | None = None,
                    sr: int = SAMPLE_RATE) -> np.ndarray:  # fmt: skip
    """The first audio stream of `path` as mono float32 at `sr`, from `start` for `seconds` (default: to the end).
    Raises ValueError when the file has no audio or the range holds none."""
    with av.open(str(path)) as probe:
        if not probe.streams.audio:
            raise ValueError(f"{path}: no audio stream")
    samples = synth_audio.read_audio(path, sr)
    first = round(start * sr)
    clip = samples[first:] if seconds is None else samples[first : first + round(seconds * sr)]
    if clip.size == 0:
        raise ValueError(f"{path}: no audio in [{start}, {start + (seconds or 0)}) s")
    return clip.copy()


def apply_audio_ops(samples: np.ndarray, ops: Iterable[AudioOp], sr: int = SAMPLE_RATE) -> np.ndarray:
    for op in ops:
        samples = op(samples, sr)
    return samples


def soundtrack_excerpt(
    src: Path | str, dst: Path | str, start: float, end: float, ops: Sequence[AudioOp] = (), *,
    sr: int = SAMPLE_RATE, bitrate: int | None = None,
) -> Path:  # fmt: skip
    """Seconds [start, end) of `src`'s soundtrack, through `ops`, written as an audio file (codec by `dst`'s
    extension: mp3, m4a, aac, wav, flac, ogg...). The decoded audio of the file is used, not the samples it was
    made from: an excerpt of a real upload goes through the library file's codec too."""
    if end <= start:
        raise ValueError(f"empty range [{start}, {end})")
    clip = apply_audio_ops(read_soundtrack(src, start, end - start, sr), ops, sr)
    return synth_audio.write_audio(dst, clip, sr, bitrate=bitrate)


def transform_av(
    src: Path | str, dst: Path | str, ops: Sequence[synth_video.Op] = (), audio_ops: Sequence[AudioOp] = (), *,
    start: float = 0.0, seconds: float | None = None, sr: int = SAMPLE_RATE, video_bitrate: int | None = None,
    audio_bitrate: int | None = None,
) -> Path:  # fmt: skip
    """`video.transform_video` that keeps the soundtrack: the same [start, start + seconds) of both, the pictures
    through `ops` and the sound through `audio_ops`. Ops that change timing must be mirrored on both sides
    (`video.Embed` ↔ `EmbedAudio`); a source without sound gives a silent result."""
    clip = synth_video.apply_ops(synth_video.read_clip(src, start, seconds), ops)
    try:
        sound: np.ndarray | None = read_soundtrack(src, start, seconds, sr)
    except ValueError:
        sound = None
    if sound is not None:
        sound = apply_audio_ops(sound, audio_ops, sr)
    return write_av(dst, clip.frames, clip.fps, clip.size, sound, sr, video_bitrate=video_bitrate,
                    audio_bitrate=audio_bitrate)  # fmt: skip
