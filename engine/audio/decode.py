"""Decode the first audio stream of any media file (audio or video container) to mono float32 samples."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from engine.errors import EmptyMedia, MediaError, MediaNotFound, UnsupportedMedia
from engine.media_input import open_confined

from .params import SAMPLE_RATE

# Tolerate a few damaged packets in a long file (a real upload may have some), but not a broken stream.
_MAX_BAD_PACKETS = 8
_MAX_GAP_SECONDS = 10.0  # a longer timestamp jump is a discontinuity, not lost audio


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise MediaNotFound(f"media file not found: {path}")
    if not path.is_file():
        raise MediaError(f"not a regular file: {path}")
    if path.stat().st_size == 0:
        raise EmptyMedia(f"media file is empty (0 bytes): {path}")
    try:
        return open_confined(path, metadata_errors="ignore")
    except av.error.FileNotFoundError as e:
        raise MediaNotFound(f"media file not found: {path}") from e
    except (av.error.InvalidDataError, av.error.EOFError, av.error.DemuxerNotFoundError) as e:
        raise UnsupportedMedia(f"not a recognised media file: {path.name} ({e})") from e
    except av.error.FFmpegError as e:
        raise MediaError(f"cannot open media file {path.name}: {e}") from e


# Sample format (planar or not) -> numpy dtype, and the scale that brings integers to [-1, 1].
_DTYPES = {"u8": np.uint8, "s16": np.int16, "s32": np.int32, "s64": np.int64, "flt": np.float32, "dbl": np.float64}
_INT_SCALE = {"s16": 1 / 32768.0, "s32": 1 / 2147483648.0, "s64": 1 / 9223372036854775808.0}


def _frame_mono(frame: av.AudioFrame) -> np.ndarray:
    """A decoded frame down-mixed to mono float32 in [-1, 1], whatever its sample format.

    Reads the planes' buffers directly: `to_ndarray` stacks planes into a new array first, and this runs for
    every frame of every file.
    """
    fmt = frame.format
    name = fmt.name.rstrip("p")
    dtype = _DTYPES.get(name)
    if dtype is None:
        raise UnsupportedMedia(f"unsupported audio sample format {fmt.name}")
    n = frame.samples
    channels = max(1, len(frame.layout.channels))
    if fmt.is_planar:
        planes = [np.frombuffer(p, dtype, n) for p in frame.planes[:channels]]
        x = planes[0].astype(np.float32) if channels == 1 else np.mean(planes, axis=0, dtype=np.float32)
    else:
        a = np.frombuffer(frame.planes[0], dtype, n * channels)
        x = a.astype(np.float32) if channels == 1 else a.reshape(n, channels).mean(axis=1, dtype=np.float32)
    if name == "u8":
        x = (x - 128.0) / 128.0
    elif name in _INT_SCALE:
        x *= np.float32(_INT_SCALE[name])
    return x


class _Placement:
    """Where decoded frames belong in time. Packets lost to damage leave a hole in the timestamps; filling
    it with silence keeps everything after it at its true time, so its landmarks still line up."""

    def __init__(self) -> None:
        self.origin: float | None = None
        self.written = 0  # samples so far, at the frame's sample rate

    def gap_before(self, frame: av.AudioFrame) -> int:
        """Silent samples to insert before `frame` (0 unless its timestamp jumps ahead, by at most 10 s)."""
        rate = frame.sample_rate
        gap = 0
        if frame.pts is not None and frame.time_base is not None:
            t = frame.pts * float(frame.time_base)
            if self.origin is None:
                self.origin = t
            ahead = round((t - self.origin) * rate) - self.written
            if rate * 0.005 < ahead <= rate * _MAX_GAP_SECONDS:
                gap = ahead
        self.written += gap + frame.samples
        return gap


def _resample(x: np.ndarray, src_rate: int, rate: int) -> np.ndarray:
    """Resample with libswresample, fed in large blocks: per-frame calls cost more than the filtering."""
    if src_rate == rate:
        return x
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    out: list[np.ndarray] = []
    step = src_rate * 10
    for i in range(0, x.size, step):
        frame = av.AudioFrame.from_ndarray(x[None, i : i + step], format="flt", layout="mono")
        frame.sample_rate = src_rate
        out.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    out.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def decode_mono(path: Path | str, rate: int = SAMPLE_RATE) -> np.ndarray | None:
    """Samples of the first audio stream, down-mixed to mono and resampled to `rate`; None if there is none.

    Raises MediaNotFound / EmptyMedia / UnsupportedMedia / MediaError for files that cannot be used.
    """
    path = Path(path)
    with _open(path) as container:
        if not container.streams:
            raise UnsupportedMedia(f"no audio or video stream in {path.name}")
        stream = next((s for s in container.streams if s.type == "audio"), None)
        if stream is None:
            return None  # e.g. a silent video: nothing to fingerprint in this modality
        if stream.codec_context is None:
            raise UnsupportedMedia(f"no decoder for the audio codec of {path.name}")
        # Consecutive frames at one sample rate (a stream may change rate midway, rarely).
        groups: list[tuple[int, list[np.ndarray]]] = []
        placed = _Placement()
        bad = 0
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    bad += 1
                    if bad > _MAX_BAD_PACKETS:
                        raise
                    continue
                for frame in frames:
                    if not groups or groups[-1][0] != frame.sample_rate:
                        groups.append((frame.sample_rate, []))
                        placed = _Placement()
                    gap = placed.gap_before(frame)
                    if gap:
                        groups[-1][1].append(np.zeros(gap, np.float32))
                    groups[-1][1].append(_frame_mono(frame))
        except av.error.FFmpegError as e:
            raise MediaError(f"corrupt audio stream in {path.name}: {e}") from e
    parts = [_resample(np.concatenate(chunks), src, rate) for src, chunks in groups]
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if samples.size == 0:
        raise EmptyMedia(f"audio stream of {path.name} decodes to no samples")
    return samples
