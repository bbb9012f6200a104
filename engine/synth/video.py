"""Deterministic synthetic videos, and the edits infringers apply to them.

- `render_clip(seed, seconds, ...)` draws a clip in memory: textured gradient backgrounds that pan, moving shapes,
  a line of text, film grain, and a scene cut every 2.5–5 s. Content is a function of (seed, time), so the same
  seed at another frame rate shows the same thing.
- `make_video(path, seed, ...)` writes such a clip with PyAV to any container/codec (streaming: `iter_frames` +
  `write_frames`, so long or large videos never sit in memory); `make_image` writes one frame.
- `transform_video(src, dst, ops=[...])` decodes a file, applies ops (each `Clip -> Clip`, numpy only) and
  re-encodes it. The ops: `Trim`, `Reencode`, `Scale`, `Crop`, `Letterbox`, `Pillarbox`, `Brightness`,
  `Contrast`, `Gamma`, `Saturation`, `Grayscale`, `TextOverlay`, `LogoOverlay`, `ChangeFps`, `Speed`, `HFlip`,
  `Embed`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import numpy as np

# ----------------------------------------------------------------------------------------------------------------
# Clip


@dataclass(frozen=True, slots=True)
class Clip:
    """Decoded RGB frames (N, H, W, 3) uint8 at a constant frame rate."""

    frames: np.ndarray
    fps: float

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


class Op(Protocol):
    def __call__(self, clip: Clip) -> Clip: ...


# ----------------------------------------------------------------------------------------------------------------
# Text: a classic 5x7 column-major bitmap font (5 bytes per glyph, bit 0 = top row), enough for captions.

_FONT_HEX = {
    " ": "0000000000", "0": "3E5149453E", "1": "00427F4000", "2": "4261514946", "3": "2141454B31",
    "4": "1814127F10", "5": "2745454539", "6": "3C4A494930", "7": "0171090503", "8": "3649494936",
    "9": "064949291E", "A": "7E1111117E", "B": "7F49494936", "C": "3E41414122", "D": "7F4141221C",
    "E": "7F49494941", "F": "7F09090101", "G": "3E41415132", "H": "7F0808087F", "I": "00417F4100",
    "J": "2040413F01", "K": "7F08142241", "L": "7F40404040", "M": "7F0204027F", "N": "7F0408107F",
    "O": "3E4141413E", "P": "7F09090906", "Q": "3E4151215E", "R": "7F09192946", "S": "4649494931",
    "T": "01017F0101", "U": "3F4040403F", "V": "1F2040201F", "W": "7F2018207F", "X": "6314081463",
    "Y": "0304780403", "Z": "6151494543", "-": "0808080808", ".": "0060600000", ":": "0036360000",
}  # fmt: skip
_GLYPHS: dict[str, np.ndarray] = {}
for _ch, _hex in _FONT_HEX.items():
    _cols = bytes.fromhex(_hex)
    _GLYPHS[_ch] = np.array([[(c >> r) & 1 for c in _cols] for r in range(7)], dtype=bool)

_WORDS = (
    "NEWS", "LIVE", "SPORT", "GOAL", "MATCH", "CITY", "NIGHT", "OCEAN", "STORM", "RIVER", "MUSIC", "TOUR",
    "FINAL", "ROUND", "WORLD", "CUP", "2024", "HD", "EPISODE", "SEASON", "CHAPTER", "MOVIE", "SHOW", "PART",
)  # fmt: skip


def text_mask(text: str, scale: int = 2) -> np.ndarray:
    """A boolean bitmap of `text` (unknown characters become spaces), each font pixel `scale` px wide."""
    glyphs = [_GLYPHS.get(ch, _GLYPHS[" "]) for ch in text.upper()]
    gap = np.zeros((7, 1), dtype=bool)
    row = np.concatenate([part for g in glyphs for part in (g, gap)], axis=1) if glyphs else gap
    return np.kron(row, np.ones((scale, scale), dtype=bool))


def _blit(canvas: np.ndarray, mask: np.ndarray, x: int, y: int, color: np.ndarray, alpha: float = 1.0) -> None:
    """Paint `color` where `mask` is set, with the mask's top-left at (x, y), clipped to the canvas."""
    h, w = canvas.shape[:2]
    mh, mw = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + mw, w), min(y + mh, h)
    if x0 >= x1 or y0 >= y1:
        return
    sub = mask[y0 - y : y1 - y, x0 - x : x1 - x]
    region = canvas[y0:y1, x0:x1]
    region[sub] = region[sub] * (1.0 - alpha) + color * alpha


# ----------------------------------------------------------------------------------------------------------------
# The generator


@dataclass(frozen=True, slots=True)
class _Shape:
    kind: int  # 0 ellipse, 1 rectangle, 2 triangle
    color: np.ndarray
    pos: tuple[float, float]  # start position, in "bounce space" (fractions of the frame)
    vel: tuple[float, float]  # frame fractions per second
    radius: tuple[float, float]  # half-size, fractions of the frame's min dimension


@dataclass(frozen=True, slots=True)
class _Scene:
    start: float
    end: float
    colors: tuple[np.ndarray, np.ndarray]
    angle: float
    pan: tuple[float, float]  # background drift, frame fractions per second
    waves: list[list[float]]  # fx, fy, phase, amplitude of each background texture wave
    shapes: tuple[_Shape, ...]
    text: str
    text_pos: tuple[float, float]
    text_vel: float
    text_color: np.ndarray


def _plan(seed: int, seconds: float) -> list[_Scene]:
    rng = np.random.default_rng([seed, 7919])
    scenes: list[_Scene] = []
    t = 0.0
    while t < seconds:
        length = float(rng.uniform(2.5, 5.0))
        shapes = tuple(
            _Shape(
                kind=int(rng.integers(0, 3)),
                color=rng.uniform(0, 255, 3).astype(np.float32),
                pos=(float(rng.uniform(0, 2)), float(rng.uniform(0, 2))),
                vel=(float(rng.uniform(-0.25, 0.25)), float(rng.uniform(-0.2, 0.2))),
                radius=(float(rng.uniform(0.06, 0.2)), float(rng.uniform(0.06, 0.2))),
            )
            for _ in range(int(rng.integers(3, 7)))
        )
        k = int(rng.integers(2, 5))
        waves = np.column_stack(
            [rng.uniform(-6, 6, k), rng.uniform(-6, 6, k), rng.uniform(0, 2 * np.pi, k), rng.uniform(10, 35, k)]
        ).tolist()  # Python floats: NumPy 2 would promote float32 frames to float64 on numpy scalars
        scenes.append(
            _Scene(
                start=t,
                end=t + length,
                colors=(rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)),
                angle=float(rng.uniform(0, 2 * np.pi)),
                pan=(float(rng.uniform(-0.08, 0.08)), float(rng.uniform(-0.05, 0.05))),
                waves=waves,
                shapes=shapes,
                text=" ".join(rng.choice(_WORDS, size=int(rng.integers(1, 4)))),
                text_pos=(float(rng.uniform(0.05, 0.5)), float(rng.uniform(0.05, 0.85))),
                text_vel=float(rng.uniform(-0.05, 0.05)),
                text_color=(rng.choice([0.0, 255.0], 3) if rng.random() < 0.5 else rng.uniform(0, 255, 3)).astype(
                    np.float32
                ),
            )
        )
        t += length
    return scenes


def _bounce(p: float) -> float:
    """Triangle wave in [0, 1]: a position that bounces off the frame's edges."""
    return 1.0 - abs((p % 2.0) - 1.0)


def _render_frame(scene: _Scene, t: float, width: int, height: int, grain: np.ndarray) -> np.ndarray:
    local = t - scene.start
    # Separable terms (1-D rows and columns broadcast together) keep a frame at a few milliseconds.
    u = (np.arange(width, dtype=np.float32) / width + scene.pan[0] * local)[None, :]
    v = (np.arange(height, dtype=np.float32) / height + scene.pan[1] * local)[:, None]
    ramp = (float(np.cos(scene.angle)) * u + float(np.sin(scene.angle)) * v + 1.0) * 0.5
    texture = np.zeros((height, width), dtype=np.float32)
    for fx, fy, phase, amp in scene.waves:
        a, b = (2 * np.pi * fx) * u + phase, (2 * np.pi * fy) * v
        texture += amp * (np.sin(a) * np.cos(b) + np.cos(a) * np.sin(b))
    c0, c1 = scene.colors
    img = (c0 + (c1 - c0) * np.clip(ramp, 0, 1)[..., None]).astype(np.float32)
    img += (texture + grain)[..., None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]

    unit = min(width, height)
    for shape in scene.shapes:
        cx = _bounce(shape.pos[0] + shape.vel[0] * local) * width
        cy = _bounce(shape.pos[1] + shape.vel[1] * local) * height
        rx, ry = shape.radius[0] * unit, shape.radius[1] * unit
        x0, x1 = max(int(cx - rx), 0), min(int(cx + rx) + 1, width)
        y0, y1 = max(int(cy - ry), 0), min(int(cy + ry) + 1, height)
        if x0 >= x1 or y0 >= y1:
            continue
        dx = np.broadcast_to((xs[:, x0:x1] - cx) / rx, (y1 - y0, x1 - x0))
        dy = np.broadcast_to((ys[y0:y1] - cy) / ry, (y1 - y0, x1 - x0))
        if shape.kind == 0:
            mask = dx * dx + dy * dy <= 1.0
        elif shape.kind == 1:
            mask = (np.abs(dx) <= 1.0) & (np.abs(dy) <= 1.0)
        else:
            mask = (dy >= -1.0) & (dy <= 1.0) & (np.abs(dx) <= (dy + 1.0) * 0.5)
        shade = (0.7 + 0.3 * (1.0 - dy) * 0.5)[..., None]  # lit from above, so shapes are not flat
        region = img[y0:y1, x0:x1]
        region[mask] = (shape.color * shade)[mask]

    scale = max(1, height // 60)
    mask = text_mask(scene.text, scale)
    tx = int((scene.text_pos[0] + scene.text_vel * local) * width)
    ty = int(scene.text_pos[1] * height)
    _blit(img, mask, tx, ty, scene.text_color)
    return np.clip(img, 0, 255).astype(np.uint8)


def iter_frames(
    seed: int, seconds: float, size: tuple[int, int] = (320, 240), fps: float = 15.0, start: float = 0.0
) -> Iterator[np.ndarray]:
    """Yield the RGB frames of synthetic video `seed` from `start` for `seconds` at `fps` (`size` = (w, h))."""
    width, height = size
    count = max(1, round(seconds * fps))
    scenes = _plan(seed, start + seconds + 1.0)
    # Film grain from a small per-seed pool: deterministic, and cheap next to drawing fresh noise per frame.
    grain_rng = np.random.default_rng([seed, height, width])
    grains = grain_rng.normal(0.0, 2.5, (7, height, width)).astype(np.float32)
    for i in range(count):
        t = start + i / fps
        scene = next(s for s in scenes if s.start <= t < s.end)
        yield _render_frame(scene, t, width, height, grains[round(t * 1000) % 7])


def render_clip(
    seed: int, seconds: float, size: tuple[int, int] = (320, 240), fps: float = 15.0, start: float = 0.0
) -> Clip:
    """The frames of synthetic video `seed` in memory (see `iter_frames`)."""
    return Clip(np.stack(list(iter_frames(seed, seconds, size, fps, start))), float(fps))


def scene_cuts(seed: int, seconds: float) -> list[float]:
    """Times (s) of the scene cuts of video `seed` within [0, seconds)."""
    return [s.start for s in _plan(seed, seconds) if 0 < s.start < seconds]


# ----------------------------------------------------------------------------------------------------------------
# Reading and writing with PyAV

_CONTAINERS = {  # extension -> (FFmpeg muxer, default codec)
    "mp4": ("mp4", "libx264"),
    "mkv": ("matroska", "libx264"),
    "mov": ("mov", "libx264"),
    "avi": ("avi", "mpeg4"),
    "ts": ("mpegts", "libx264"),
    "flv": ("flv", "flv"),
    "mpg": ("mpeg", "mpeg2video"),
    "webm": ("webm", "libvpx-vp9"),
}
_IMAGE_CODECS = {"png": ("png", "rgb24"), "jpg": ("mjpeg", "yuvj420p"), "jpeg": ("mjpeg", "yuvj420p"),
                 "bmp": ("bmp", "bgr24")}  # fmt: skip


def _stream_options(codec: str, bitrate: int | None) -> dict[str, str]:
    if codec == "libx264":
        return {"preset": "veryfast"} if bitrate else {"preset": "veryfast", "crf": "20"}
    if codec == "libx265":
        opts = {"preset": "ultrafast", "x265-params": "log-level=error"}
        return opts if bitrate else {**opts, "crf": "24"}
    if codec == "libvpx-vp9":
        opts = {"deadline": "realtime", "cpu-used": "8"}
        return opts if bitrate else {**opts, "crf": "32", "b": "0"}
    return {}


def _encode(
    frames: Iterable[np.ndarray], fps: float, size: tuple[int, int], container: av.container.OutputContainer,
    codec: str, bitrate: int | None, options: dict[str, str] | None = None,
) -> None:  # fmt: skip
    rate = Fraction(fps).limit_denominator(1001)
    stream = container.add_stream(codec, rate=rate, options=options or _stream_options(codec, bitrate))
    width, height = size
    stream.width, stream.height = width - width % 2, height - height % 2
    stream.pix_fmt = "yuv420p"
    if bitrate:
        stream.bit_rate = bitrate
    elif codec in ("mpeg4", "mpeg2video", "flv"):
        stream.bit_rate = int(stream.width * stream.height * float(rate) * 0.25)  # visually clean, not huge
    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: stream.height, : stream.width]), "rgb24")
        frame.pts = i
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def write_frames(
    frames: Iterable[np.ndarray], path: Path | str, fps: float, size: tuple[int, int], *, codec: str | None = None,
    container: str | None = None, bitrate: int | None = None, options: dict[str, str] | None = None,
) -> Path:  # fmt: skip
    """Encode RGB `frames` of `size` (w, h) to `path`, streaming. The container comes from the extension unless
    given (an FFmpeg muxer name); the codec defaults to the container's usual one; `options` replace the
    encoder defaults (x264: preset veryfast, crf 20). MPEG-2 needs a standard rate (24, 25, 30...)."""
    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    muxer, default_codec = _CONTAINERS.get(ext, ("matroska", "libx264"))
    with av.open(str(path), "w", format=container or muxer) as out:
        _encode(frames, fps, size, out, codec or default_codec, bitrate, options)
    return path


def write_clip(
    clip: Clip, path: Path | str, *, codec: str | None = None, container: str | None = None,
    bitrate: int | None = None,
) -> Path:  # fmt: skip
    """Encode `clip` to `path` (see `write_frames`)."""
    return write_frames(clip.frames, path, clip.fps, clip.size, codec=codec, container=container, bitrate=bitrate)


def read_clip(path: Path | str, start: float = 0.0, seconds: float | None = None) -> Clip:
    """Decode the first video stream as RGB (assuming a constant frame rate), from `start` for `seconds`."""
    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        first = round(start * rate)
        last = first + round(seconds * rate) if seconds is not None else None
        frames = []
        for i, frame in enumerate(src.decode(stream)):
            if last is not None and i >= last:
                break
            if i >= first:
                frames.append(frame.to_ndarray(format="rgb24"))
    if not frames:
        raise ValueError(f"{path}: no frames in [{start}, {start + (seconds or 0)}) s")
    return Clip(np.stack(frames), rate)


def make_video(
    path: Path | str, seed: int, seconds: float = 30.0, size: tuple[int, int] = (320, 240), fps: float = 15.0,
    codec: str | None = None, container: str | None = None, bitrate: int | None = None,
) -> Path:  # fmt: skip
    """Write synthetic video `seed` (see `iter_frames`) to `path`, streaming."""
    frames = iter_frames(seed, seconds, size, fps)
    return write_frames(frames, path, fps, size, codec=codec, container=container, bitrate=bitrate)


def write_image(rgb: np.ndarray, path: Path | str) -> Path:
    """Write one RGB frame as png, jpg/jpeg or bmp (by extension)."""
    path = Path(path)
    codec, pix_fmt = _IMAGE_CODECS[path.suffix.lower().lstrip(".")]
    height, width = rgb.shape[:2]
    with av.open(str(path), "w", format="image2", options={"update": "1"}) as out:
        stream = out.add_stream(codec, rate=1)
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = pix_fmt
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: stream.height, : stream.width]), "rgb24")
        out.mux(stream.encode(frame.reformat(format=pix_fmt)))
        out.mux(stream.encode(None))
    return path


def make_image(path: Path | str, seed: int, t: float = 0.0, size: tuple[int, int] = (320, 240)) -> Path:
    """Write the frame of synthetic video `seed` at time `t` as an image."""
    return write_image(render_clip(seed, 1.0, size, 1.0, start=t).frames[0], path)


def apply_ops(clip: Clip, ops: Iterable[Op]) -> Clip:
    for op in ops:
        clip = op(clip)
    return clip


def transform_video(
    src: Path | str, dst: Path | str, ops: Sequence[Op] = (), *, start: float = 0.0, seconds: float | None = None,
    codec: str | None = None, container: str | None = None, bitrate: int | None = None,
) -> Path:  # fmt: skip
    """Decode `src` (only [start, start + seconds) if given), apply `ops` in order, encode to `dst`."""
    clip = apply_ops(read_clip(src, start, seconds), ops)
    return write_clip(clip, dst, codec=codec, container=container, bitrate=bitrate)


# ----------------------------------------------------------------------------------------------------------------
# Ops


def _even(n: float) -> int:
    return max(2, round(n / 2) * 2)


def _resize(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    out = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), "rgb24")
        out[i] = frame.reformat(width=width, height=height, interpolation="AREA").to_ndarray()
    return out


def _pixels(clip: Clip, fn: Callable[[np.ndarray], np.ndarray]) -> Clip:
    """Apply a float pixel function to every frame (in batches, to bound memory)."""
    out = np.empty_like(clip.frames)
    for i in range(0, len(clip.frames), 64):
        out[i : i + 64] = np.clip(fn(clip.frames[i : i + 64].astype(np.float32)), 0, 255).astype(np.uint8)
    return Clip(out, clip.fps)


@dataclass(frozen=True, slots=True)
class Trim:
    """Keep [start, start + duration) seconds."""

    start: float
    duration: float

    def __call__(self, clip: Clip) -> Clip:
        i0 = round(self.start * clip.fps)
        return Clip(clip.frames[i0 : i0 + round(self.duration * clip.fps)], clip.fps)


@dataclass(frozen=True, slots=True)
class Reencode:
    """Round-trip through an encoder at a low bitrate (in memory): blocking, ringing, lost detail."""

    bitrate: int = 60_000
    codec: str = "libx264"

    def __call__(self, clip: Clip) -> Clip:
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="matroska") as out:
            _encode(clip.frames, clip.fps, clip.size, out, self.codec, self.bitrate)
        buffer.seek(0)
        with av.open(buffer) as src:
            frames = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
        return Clip(np.stack(frames), clip.fps)


@dataclass(frozen=True, slots=True)
class Scale:
    width: int
    height: int

    def __call__(self, clip: Clip) -> Clip:
        return Clip(_resize(clip.frames, _even(self.width), _even(self.height)), clip.fps)


@dataclass(frozen=True, slots=True)
class Crop:
    """Cut away `x` of the width and `y` of the height; `anchor_*` place the kept window (0.5 = centred)."""

    x: float = 0.2
    y: float = 0.2
    anchor_x: float = 0.5
    anchor_y: float = 0.5

    def __call__(self, clip: Clip) -> Clip:
        width, height = clip.size
        kw, kh = _even(width * (1 - self.x)), _even(height * (1 - self.y))
        x0, y0 = round((width - kw) * self.anchor_x), round((height - kh) * self.anchor_y)
        return Clip(np.ascontiguousarray(clip.frames[:, y0 : y0 + kh, x0 : x0 + kw]), clip.fps)


def _pad(clip: Clip, top: int, bottom: int, left: int, right: int) -> Clip:
    frames = np.pad(clip.frames, ((0, 0), (top, bottom), (left, right), (0, 0)))
    return Clip(frames, clip.fps)


@dataclass(frozen=True, slots=True)
class Letterbox:
    """Black bars above and below making up `fraction` of the output height."""

    fraction: float = 0.25

    def __call__(self, clip: Clip) -> Clip:
        height = clip.size[1]
        bars = _even(height / (1 - self.fraction)) - height
        return _pad(clip, bars // 2, bars - bars // 2, 0, 0)


@dataclass(frozen=True, slots=True)
class Pillarbox:
    """Black bars left and right making up `fraction` of the output width."""

    fraction: float = 0.25

    def __call__(self, clip: Clip) -> Clip:
        width = clip.size[0]
        bars = _even(width / (1 - self.fraction)) - width
        return _pad(clip, 0, 0, bars // 2, bars - bars // 2)


@dataclass(frozen=True, slots=True)
class Brightness:
    delta: float = 40.0

    def __call__(self, clip: Clip) -> Clip:
        return _pixels(clip, lambda x: x + self.delta)


@dataclass(frozen=True, slots=True)
class Contrast:
    factor: float = 1.5

    def __call__(self, clip: Clip) -> Clip:
        return _pixels(clip, lambda x: (x - 128.0) * self.factor + 128.0)


@dataclass(frozen=True, slots=True)
class Gamma:
    gamma: float = 0.6

    def __call__(self, clip: Clip) -> Clip:
        return _pixels(clip, lambda x: 255.0 * (x / 255.0) ** self.gamma)


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Saturation:
    factor: float = 0.3

    def __call__(self, clip: Clip) -> Clip:
        def fn(x: np.ndarray) -> np.ndarray:
            gray = (x @ _LUMA)[..., None]
            return gray + (x - gray) * self.factor

        return _pixels(clip, fn)


@dataclass(frozen=True, slots=True)
class Grayscale:
    def __call__(self, clip: Clip) -> Clip:
        return _pixels(clip, lambda x: np.repeat((x @ _LUMA)[..., None], 3, axis=-1))


@dataclass(frozen=True, slots=True)
class HFlip:
    def __call__(self, clip: Clip) -> Clip:
        return Clip(np.ascontiguousarray(clip.frames[:, :, ::-1]), clip.fps)


@dataclass(frozen=True, slots=True)
class TextOverlay:
    """A caption burnt in (white on a dark band), at `y` (fraction of the height)."""

    text: str = "WATCH FREE HD"
    y: float = 0.85

    def __call__(self, clip: Clip) -> Clip:
        width, height = clip.size
        mask = text_mask(self.text, max(1, height // 80))
        band = np.ones((mask.shape[0] + 4, mask.shape[1] + 4), dtype=bool)
        x, y = (width - band.shape[1]) // 2, int(self.y * height)
        frames = clip.frames.astype(np.float32)
        for frame in frames:
            _blit(frame, band, x, y, np.zeros(3, np.float32), alpha=0.6)
            _blit(frame, mask, x + 2, y + 2, np.full(3, 255.0, np.float32))
        return Clip(frames.astype(np.uint8), clip.fps)


@dataclass(frozen=True, slots=True)
class LogoOverlay:
    """A semi-opaque coloured logo (disc and letters) in a corner, `size` of the frame's height."""

    size: float = 0.15
    corner: str = "top-right"
    opacity: float = 0.8

    def __call__(self, clip: Clip) -> Clip:
        width, height = clip.size
        side = max(8, int(self.size * height))
        ys, xs = np.mgrid[0:side, 0:side]
        disc = (xs - side / 2) ** 2 + (ys - side / 2) ** 2 <= (side / 2) ** 2
        letters = text_mask("TV", max(1, side // 14))
        margin = max(2, height // 40)
        x = width - side - margin if "right" in self.corner else margin
        y = height - side - margin if "bottom" in self.corner else margin
        frames = clip.frames.astype(np.float32)
        for frame in frames:
            _blit(frame, disc, x, y, np.array([230.0, 40.0, 40.0]), self.opacity)
            _blit(frame, letters, x + (side - letters.shape[1]) // 2, y + (side - letters.shape[0]) // 2,
                  np.full(3, 255.0, np.float32))  # fmt: skip
        return Clip(frames.astype(np.uint8), clip.fps)


@dataclass(frozen=True, slots=True)
class ChangeFps:
    """Resample to `fps` by dropping/duplicating frames; the duration is kept."""

    fps: float

    def __call__(self, clip: Clip) -> Clip:
        count = max(1, round(clip.duration * self.fps))
        src = np.minimum((np.arange(count) * clip.fps / self.fps + 1e-6).astype(int), len(clip.frames) - 1)
        return Clip(clip.frames[src], float(self.fps))


@dataclass(frozen=True, slots=True)
class Speed:
    """Play `factor` times faster (1.1 = 10% faster, shorter); the frame rate is kept."""

    factor: float

    def __call__(self, clip: Clip) -> Clip:
        count = max(1, round(len(clip.frames) / self.factor))
        src = np.minimum((np.arange(count) * self.factor + 1e-6).astype(int), len(clip.frames) - 1)
        return Clip(clip.frames[src], clip.fps)


@dataclass(frozen=True, slots=True)
class Embed:
    """Put the clip between `before` and `after` seconds of unrelated synthetic video `seed`."""

    seed: int = 9001
    before: float = 5.0
    after: float = 5.0

    def __call__(self, clip: Clip) -> Clip:
        parts = []
        if self.before > 0:
            parts.append(render_clip(self.seed, self.before, clip.size, clip.fps).frames)
        parts.append(clip.frames)
        if self.after > 0:
            parts.append(render_clip(self.seed, self.after, clip.size, clip.fps, start=self.before + 60.0).frames)
        return Clip(np.concatenate(parts), clip.fps)


@dataclass(frozen=True, slots=True)
class PictureInPicture:
    """The clip shrunk to `scale` of each axis, shown over unrelated synthetic video `seed`; (`x`, `y`) place it
    in the free space (0 = left/top, 1 = right/bottom)."""

    seed: int = 9002
    scale: float = 1 / 3
    x: float = 0.9
    y: float = 0.15

    def __call__(self, clip: Clip) -> Clip:
        width, height = clip.size
        out = render_clip(self.seed, len(clip.frames) / clip.fps, clip.size, clip.fps).frames[: len(clip.frames)]
        iw, ih = _even(width * self.scale), _even(height * self.scale)
        x0, y0 = round((width - iw) * self.x), round((height - ih) * self.y)
        out = out.copy()
        out[: len(clip.frames), y0 : y0 + ih, x0 : x0 + iw] = _resize(clip.frames[: len(out)], iw, ih)
        return Clip(out, clip.fps)


def static_camera_frames(
    seed: int, seconds: float, size: tuple[int, int] = (320, 240), fps: float = 15.0, start: float = 0.0
) -> Iterator[np.ndarray]:
    """A fixed camera on one scene (a street, a room: the same textured background throughout) with small figures
    crossing it: any two moments of it look alike, only the figures differ. The hard negative for a copy
    detector: another moment of the same camera is not a copy. Figures enter at seeded times, so every stretch
    of the timeline has its own."""
    width, height = size
    rng = np.random.default_rng([seed, 104729])
    scene = _plan(seed, 1.0)[0]
    background = _Scene(0.0, float("inf"), scene.colors, scene.angle, (0.0, 0.0), scene.waves, (), "", (0.0, 0.0), 0.0,
                        scene.text_color)  # fmt: skip
    horizon = start + seconds + 10.0
    walkers = []  # (enter time, y, speed in frame widths a second (signed), half size, colour)
    t = -10.0
    while t < horizon:
        t += float(rng.exponential(1.2))
        walkers.append((t, float(rng.uniform(0.35, 0.9)), float(rng.choice([-1, 1]) * rng.uniform(0.08, 0.2)),
                        float(rng.uniform(0.03, 0.06)), rng.uniform(0, 255, 3).astype(np.float32)))  # fmt: skip
    grains = np.random.default_rng([seed, height, width]).normal(0.0, 2.5, (7, height, width)).astype(np.float32)
    unit = min(width, height)
    for i in range(max(1, round(seconds * fps))):
        now = start + i / fps
        img = _render_frame(background, now, width, height, grains[round(now * 1000) % 7]).astype(np.float32)
        for enter, y, speed, half, color in walkers:
            x = (0.0 if speed > 0 else 1.0) + speed * (now - enter)
            if now < enter or not -0.1 <= x <= 1.1:
                continue
            cx, cy, rx, ry = x * width, y * height, half * unit * 0.6, half * unit * 1.6
            x0, x1 = max(int(cx - rx), 0), min(int(cx + rx) + 1, width)
            y0, y1 = max(int(cy - ry), 0), min(int(cy + ry) + 1, height)
            if x0 < x1 and y0 < y1:
                img[y0:y1, x0:x1] = color
        yield np.clip(img, 0, 255).astype(np.uint8)


def make_static_camera(
    path: Path | str, seed: int, seconds: float, size: tuple[int, int] = (320, 240), fps: float = 15.0,
    start: float = 0.0, bitrate: int | None = None,
) -> Path:  # fmt: skip
    """Write `static_camera_frames` to `path`."""
    return write_frames(static_camera_frames(seed, seconds, size, fps, start), path, fps, size, bitrate=bitrate)
