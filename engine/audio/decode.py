"""Decode the first audio stream of any media file (audio or video container) to mono float32 samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from engine.errors import EmptyMedia, MediaError, MediaNotFound, UnsupportedMedia
from engine.limits import Limits, check_input_size, check_media_seconds
from engine.limits import current as current_limits
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


class _Resampled:
    """Mono samples of one stretch at one source rate, resampled to `rate` as they arrive.

    Only the output is kept (8 kHz float32: 115 MB per hour), so memory no longer grows with the source rate.
    libswresample is stateful, so feeding it frame by frame gives the same samples as one large block would;
    input is still batched into ~10 s blocks (2 MB at 48 kHz) because a call per frame costs more than the filtering.
    """

    _BATCH_SECONDS = 10.0

    def __init__(self, src_rate: int, rate: int) -> None:
        self.src_rate = src_rate
        self._resampler = None if src_rate == rate else av.AudioResampler(format="flt", layout="mono", rate=rate)
        self._pending: list[np.ndarray] = []
        self._pending_size = 0
        self.out: list[np.ndarray] = []
        self.out_size = 0
        self._batch = max(1, int(src_rate * self._BATCH_SECONDS))

    def add(self, x: np.ndarray) -> None:
        self._pending.append(x)
        self._pending_size += x.size
        if self._pending_size >= self._batch:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        x = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending, self._pending_size = [], 0
        if self._resampler is None:
            self._emit(x)
            return
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x, np.float32)[None, :], format="flt", layout="mono")
        frame.sample_rate = self.src_rate
        for f in self._resampler.resample(frame):
            self._emit(f.to_ndarray().reshape(-1))

    def _emit(self, y: np.ndarray) -> None:
        self.out.append(y)
        self.out_size += y.size

    def take(self) -> list[np.ndarray]:
        """The output so far (handed over: it is no longer kept here)."""
        out, self.out = self.out, []
        return out

    def close(self) -> list[np.ndarray]:
        """Flush the resampler; the rest of the output."""
        self._flush()
        if self._resampler is not None:
            for f in self._resampler.resample(None):
                self._emit(f.to_ndarray().reshape(-1))
        return self.take()


class NoAudioStream(Exception):
    """The file has no audio stream (raised by `mono_blocks` before it yields anything)."""


def mono_blocks(path: Path | str, rate: int = SAMPLE_RATE, *, limits: Limits | None = None) -> Iterator[np.ndarray]:
    """The samples of the first audio stream, down-mixed to mono and resampled to `rate`, as they are decoded
    (blocks of about a second). Nothing is kept here, so a caller that does not keep them decodes in constant
    memory.

    Decoding stops with `InputTooLong` once the audio passes `FPSCREEN_MAX_MEDIA_SECONDS`, and a file over
    `FPSCREEN_MAX_INPUT_BYTES` is not opened. Raises `NoAudioStream` if there is no audio stream, and
    MediaNotFound / EmptyMedia / UnsupportedMedia / MediaError for files that cannot be used.
    """
    path = Path(path)
    limits = limits or current_limits()
    if path.is_file():
        check_input_size(path, limits)
    max_samples = None if limits.max_media_seconds is None else limits.max_media_seconds * rate
    total = 0
    with _open(path) as container:
        if not container.streams:
            raise UnsupportedMedia(f"no audio or video stream in {path.name}")
        stream = next((s for s in container.streams if s.type == "audio"), None)
        if stream is None:
            raise NoAudioStream(path.name)  # e.g. a silent video: nothing to fingerprint in this modality
        if stream.codec_context is None:
            raise UnsupportedMedia(f"no decoder for the audio codec of {path.name}")
        # Consecutive frames at one sample rate (a stream may change rate midway, rarely).
        group: _Resampled | None = None
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
                    if group is None or group.src_rate != frame.sample_rate:
                        if group is not None:
                            for block in group.close():
                                total += block.size
                                yield block
                        group = _Resampled(frame.sample_rate, rate)
                        placed = _Placement()
                    gap = placed.gap_before(frame)
                    if gap:
                        group.add(np.zeros(gap, np.float32))
                    group.add(_frame_mono(frame))
                if group is not None and group.out:
                    for block in group.take():
                        total += block.size
                        yield block
                    if max_samples is not None and total > max_samples:
                        check_media_seconds(total / rate, f"the audio of {path.name}", limits)
        except av.error.FFmpegError as e:
            raise MediaError(f"corrupt audio stream in {path.name}: {e}") from e
    if group is not None:
        for block in group.close():
            total += block.size
            yield block
    if total == 0:
        raise EmptyMedia(f"audio stream of {path.name} decodes to no samples")
    check_media_seconds(total / rate, f"the audio of {path.name}", limits)


def decode_mono(path: Path | str, rate: int = SAMPLE_RATE, *, limits: Limits | None = None) -> np.ndarray | None:
    """All samples of `mono_blocks` in one array (8 kHz float32: 115 MB per hour); None if there is no audio."""
    try:
        blocks = list(mono_blocks(path, rate, limits=limits))
    except NoAudioStream:
        return None
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
