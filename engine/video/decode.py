"""Decode a video (or an image) into small grayscale thumbnails on a fixed time grid, as cheaply as possible.

Speed matters more here than anywhere else in the engine: a fingerprint must cost no more than decoding the file.
So only reference frames are decoded (`skip_frame=NONREF`: nothing depends on the others; all frames when a
codec keeps too few of them that way, see `VideoDecoder._frames`), the loop filter is skipped (invisible at
thumbnail size), and FFmpeg scales each decoded frame straight to a tiny gray square (one scaler reused
for the whole stream) before Python sees a pixel. Frame threading is left off on purpose: with only reference
frames left, its hand-offs cost more than they save (measured by `scripts/bench`: the reference frames decode
1.3-1.9x faster without it on 2 cores), and the engine already runs jobs in parallel on a worker pool. FFmpeg's
default slice threading stays (it splits one frame's work: on the bench's 360p clip the reference frames decode
in 0.13 s of wall time for 0.21 s of CPU).

The thumbnail at grid time g is a triangle-weighted average of the decoded frames within +-1 grid step of g,
not the frame nearest g: a copy is sampled at another phase (it starts anywhere, at any frame rate), and the
average changes smoothly with the phase where a single frame jumps. The average stops at scene cuts, though:
across a cut it would mix two pictures in a proportion set by the phase, which is what it is there to avoid.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter

from engine.errors import EmptyMedia, MediaError, MediaNotFound, UnsupportedMedia
from engine.media_input import open_confined

THUMB = 128  # side of the (aspect-ignoring) gray thumbnail every decoded frame is reduced to
SAMPLE_FPS = 2.0  # grid points per second of video
_SPREAD = 2.0
# Mean absolute difference (gray levels) of the 16 x 16 reductions of consecutive decoded frames that marks a
# scene cut: motion within a shot stays under ~10, a cut between different shots is well above 20.
CUT_LEVEL = 16.0
PROBE_PACKETS = 48  # packets decoded with reference frames only before judging whether they are enough
# Files this short (by the container's duration) are decoded in full. Which frames are "reference" frames is the
# encoder's choice, so two encodes of one clip average different frames into a thumbnail, and in fast motion
# that changes the picture (a real 4.5 s clip of passing bikes: 2 of its 8 grid points 27-28 bits from every
# library frame under a plain H.264 re-encode, 1-8 bits for every point decoded in full). A long copy has grid
# points to spare; a short one, the least evidence a match can rest on, has none, and decoding it in full costs
# tenths of a second.
FULL_DECODE_SECONDS = 10.0

_IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe", "gif", "gif_pipe"}
_IMAGE_CODECS = {"png", "mjpeg", "bmp", "webp", "tiff", "gif"}


def _looks_like_text(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(4096)
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * len(text)


def open_media(path: Path) -> av.container.InputContainer:
    """Open `path` with PyAV, turning every failure into the right `MediaError`."""
    if not path.exists():
        raise MediaNotFound(f"{path}: no such file")
    if not path.is_file():
        raise MediaNotFound(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise EmptyMedia(f"{path}: the file is empty (0 bytes)")
    try:
        return open_confined(path, metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        if _looks_like_text(path):
            raise UnsupportedMedia(f"{path}: this is a text file, not a video or an image") from exc
        raise MediaError(f"{path}: corrupt or not a recognised media format ({exc.strerror})") from exc


class VideoDecoder:
    """`with VideoDecoder(path) as dec:` then `dec.has_video`, `dec.is_image`, iterate `dec.thumbnails()`; after
    the iteration, `dec.duration` (s) is known."""

    def __init__(self, path: Path | str, sample_fps: float = SAMPLE_FPS, size: int = THUMB) -> None:
        self.path = Path(path)
        self.step = 1.0 / sample_fps
        self.size = size
        self.duration = 0.0
        self.all_frames = False  # set when every frame is decoded: a short file, or sparse reference frames (`_frames`)
        self._packets = self._decoded = 0
        self._container = open_media(self.path)
        streams = self._container.streams.video
        self.has_video = bool(streams)
        self._stream = streams[0] if streams else None
        self.is_image = bool(
            self._stream is not None
            and (
                self._container.format.name in _IMAGE_FORMATS
                or (self._stream.frames == 1 and self._stream.codec_context.name in _IMAGE_CODECS)
            )
        )

    def __enter__(self) -> VideoDecoder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
                 ) -> None:  # fmt: skip
        self._container.close()

    def _frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """The decoded frames: reference frames only, unless the file is short (`FULL_DECODE_SECONDS`) or they
        turn out too sparse for the sampling grid.

        Whether a frame is a "reference" is the codec's call: H.264/HEVC/AV1 drop their non-reference B-frames
        (a third to a half of the frames), but some decoders or encodings keep only keyframes under NONREF (Theora,
        long non-reference B runs), which can leave seconds between decoded frames. The first `PROBE_PACKETS`
        packets tell: if fewer than half of them decoded and that leaves fewer frames a second than the grid
        samples, the file is decoded again from the start with every frame.
        """
        self._packets = self._decoded = 0
        if not self.is_image and 0 < (self._container.duration or 0) / av.time_base < FULL_DECODE_SECONDS:
            self.all_frames = True
            yield from self._decode("DEFAULT")
            return
        frames = self._decode("NONREF")
        held: list[tuple[float, np.ndarray]] = []
        for item in frames:
            held.append(item)
            if self._packets >= PROBE_PACKETS:
                break
        if self._too_sparse():
            frames.close()
            self._container.close()
            self._container = open_media(self.path)
            self._stream = self._container.streams.video[0]
            self.all_frames = True
            yield from self._decode("DEFAULT")
            return
        yield from held
        yield from frames

    def _too_sparse(self) -> bool:
        packets, decoded = self._packets, self._decoded
        if self.is_image or packets < 2 or 2 * decoded >= packets:
            return False
        assert self._stream is not None
        rate = self._stream.average_rate or self._stream.guessed_rate
        if not rate:  # no frame rate to judge by: a quarter of the packets is too few
            return 4 * decoded < packets
        return decoded / packets * float(rate) < 1.0 / self.step

    def _decode(self, skip: str) -> Iterator[tuple[float, np.ndarray]]:
        """(time from the first frame, gray thumbnail) of the frames decoded with `skip_frame=skip`; sets
        `duration`, and counts packets and decoded frames as it goes (`_packets`, `_decoded`)."""
        stream = self._stream
        assert stream is not None
        ctx = stream.codec_context
        ctx.skip_frame = skip
        ctx.options = {"skip_loop_filter": "all"}
        scaler = VideoReformatter()  # one scaler for the stream: `frame.reformat` would set up FFmpeg's each time
        base = stream.time_base
        start = float(stream.start_time * base) if stream.start_time is not None and base else None
        last = 0.0
        end_ticks: int | None = None  # in `base` units: one exact conversion at the end, not a Fraction a packet
        packets = decoded = 0
        try:
            for packet in self._container.demux(stream):  # ends with an empty packet: the decoder's flush
                packets += packet.size > 0
                self._packets = packets
                if packet.pts is not None:
                    tick = packet.pts + (packet.duration or 0)
                    end_ticks = tick if end_ticks is None else max(end_ticks, tick)
                for frame in packet.decode():
                    t = frame.time if frame.time is not None else decoded * self.step
                    if start is None:
                        start = t
                    decoded += 1
                    self._decoded = decoded
                    last = max(t - start, 0.0)
                    # One scaling thread: FFmpeg's automatic threads cost more than they save on a 128-pixel
                    # output (360p: 61 -> 36 ms a 30 s clip; no size slower), and the output is the same.
                    yield last, scaler.reformat(frame, width=self.size, height=self.size, format="gray",
                                                interpolation="AREA", threads=1).to_ndarray()  # fmt: skip
        except av.error.FFmpegError as exc:
            # A damaged tail is common (truncated uploads): keep what decoded, fail only if nothing did.
            if decoded == 0:
                raise MediaError(f"{self.path}: the video stream cannot be decoded ({exc.strerror})") from exc
        if decoded == 0:
            if packets == 0:
                raise EmptyMedia(f"{self.path}: the video stream holds no frames")
            raise MediaError(f"{self.path}: none of the video frames could be decoded")
        end = max(0.0, float(end_ticks * base)) if end_ticks is not None and base else 0.0
        rate = stream.average_rate or stream.guessed_rate
        frame_time = 1.0 / float(rate) if rate else self.step
        self.duration = 0.0 if self.is_image else max(end - (start or 0.0), last + frame_time)

    def thumbnails(self) -> Iterator[tuple[float, np.ndarray]]:
        """(grid time, float32 (size, size) thumbnail) for each grid point covered by decoded frames."""
        step = self.step
        sums: dict[int, np.ndarray] = {}  # open grid point -> its weighted sum of frames so far
        totals: dict[int, float] = {}  # ... and the sum of those weights
        last = 0.0
        first_open = 0  # grid points before this one were closed by a scene cut
        previous: np.ndarray | None = None
        blocks = _Blocks(self.size)
        for t, pixels in self._frames():
            coarse = blocks.coarse(pixels)
            if previous is not None and float(np.abs(coarse - previous).mean()) > CUT_LEVEL:
                # A scene cut: averaging across it would blend two pictures in proportions that depend on where
                # the sampling grid falls, which differs between a copy and its source. Grid points before the
                # cut are complete; those after it start afresh with this frame.
                cut = 0.5 * (last + t)
                for k in sorted(sums):
                    acc, total = sums.pop(k), totals.pop(k)
                    if k * step < cut:
                        yield k * step, acc / total
                first_open = max(first_open, math.ceil(cut / step - 1e-9))
            previous = coarse
            last = t
            lo = max(math.ceil(t / step - _SPREAD + 1e-9), first_open)
            hi = math.floor(t / step + _SPREAD - 1e-9)
            if hi >= lo:
                # One float32 copy of the frame serves every grid point it weighs into, and the products stay in
                # float32 (a float64 product rounded into the float32 sum cost 3x as much, a tenth of a 360p
                # fingerprint, for differences of 1e-7 of a pixel).
                wide = pixels.astype(np.float32)
                part = np.empty_like(wide)
                for k in range(lo, hi + 1):
                    weight = 1.0 - abs(t - k * step) / (step * _SPREAD)
                    acc = sums.get(k)
                    if acc is None:
                        acc = sums[k] = np.zeros(pixels.shape, np.float32)
                        totals[k] = 0.0
                    np.multiply(wide, np.float32(weight), out=part)
                    acc += part
                    totals[k] += weight
            # Grid points whose window has passed are complete.
            for k in sorted(k for k in sums if (k + _SPREAD) * step <= t):
                yield k * step, sums.pop(k) / totals.pop(k)
        for k in sorted(k for k in sums if k * step <= last + 1e-6):
            yield k * step, sums.pop(k) / totals.pop(k)


class _Blocks:
    """`_coarse` for 8-bit thumbnails of one size, bit for bit, several times faster: the block sums are two small
    matrix products with 0/1 matrices, exact in float32 (integers under 2**24) as `mean`'s own float32 sums are,
    then divided in float64 and rounded to float32 as `mean` divides."""

    def __init__(self, size: int) -> None:
        self.n = size // 16
        ones = np.zeros((16, size), np.float32)
        for b in range(16):
            ones[b, b * self.n : (b + 1) * self.n] = 1.0
        self._rows, self._cols = ones, np.ascontiguousarray(ones.T)
        self._count = float(self.n * self.n)

    def coarse(self, pixels: np.ndarray) -> np.ndarray:
        if self.n == 0 or pixels.dtype != np.uint8 or pixels.shape != (len(self._cols), len(self._cols)):
            # Tiny, non-8-bit or unexpected thumbnails: the reduction itself.
            return _coarse(pixels)
        sums = self._rows @ pixels.astype(np.float32) @ self._cols
        return (sums.astype(np.float64) / self._count).astype(np.float32)


def _coarse(pixels: np.ndarray) -> np.ndarray:
    """A 16 x 16 block average: compares pictures, not the positions of things moving in them."""
    n = min(pixels.shape) // 16
    if n == 0:  # thumbnails under 16 pixels: compare them as they are
        return pixels.astype(np.float32)
    return pixels[: 16 * n, : 16 * n].reshape(16, n, 16, n).mean(axis=(1, 3), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Thumbnails:
    """All grid thumbnails of a file: `times` (n,) s, `pixels` (n, THUMB, THUMB) float32."""

    times: np.ndarray
    pixels: np.ndarray
    duration: float
    is_image: bool


def decode_thumbnails(path: Path | str, sample_fps: float = SAMPLE_FPS, size: int = THUMB) -> Thumbnails | None:
    """Every grid thumbnail at once (short files, tests); None when there is no video stream."""
    with VideoDecoder(path, sample_fps, size) as dec:
        if not dec.has_video:
            return None
        items = list(dec.thumbnails())
        times = np.array([t for t, _ in items], np.float32)
        return Thumbnails(times, np.stack([p for _, p in items]), dec.duration, dec.is_image)
