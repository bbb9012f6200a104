"""The benchmark inputs: synthetic videos, music and text, written once into a cache directory and reused.

A file's name carries every parameter of its spec (and `GENERATOR`, bumped when the writers change), so a cached
file is always what its name says; a fresh clone generates everything, a second run only what it lacks. Missing
files are generated in parallel worker processes (drawing frames is single-threaded Python).

Videos are drawn by `engine.synth.video.iter_frames` at 1/`render_div` of their size and scaled up by FFmpeg
straight to YUV (same look, far cheaper than drawing 2 MP frames in numpy), then encoded with x264 `veryfast`,
CRF 23 (B-frames as x264 makes them): the settings of `scripts/bench_video.py`. With `audio`, an AAC track of
synthetic music is interleaved, as a real upload has one.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from engine.benchmarks import VideoSize
from engine.synth import audio as synth_audio
from engine.synth import text as synth_text
from engine.synth.video import iter_frames

GENERATOR = "g1"
VIDEO_SEED = 3  # the content of the 360p/720p/1080p files (the same pictures at each size)
AUDIO_RATE = 44100


@dataclass(frozen=True)
class VideoSpec:
    seed: int
    seconds: float
    width: int
    height: int
    fps: float = 25.0
    start: float = 0.0  # seconds into the synthetic timeline (a copy of an excerpt starts later)
    render_div: int = 4  # drawn at 1/render_div of the size, scaled up by FFmpeg
    bitrate: int | None = None  # None: CRF 23
    preset: str = "veryfast"
    hflip: bool = False
    audio: bool = False

    @property
    def filename(self) -> str:
        parts = [f"v{GENERATOR}", f"s{self.seed}", f"{self.width}x{self.height}", f"{self.seconds:g}s"]
        parts += [f"{self.fps:g}fps"]
        parts += [f"from{self.start:g}"] if self.start else []
        parts += [f"{self.bitrate // 1000}k" if self.bitrate else "crf23", self.preset, f"d{self.render_div}"]
        parts += (["flip"] if self.hflip else []) + (["aac"] if self.audio else [])
        return "-".join(parts) + ".mp4"

    @property
    def cost(self) -> float:
        return self.width * self.height * self.seconds * self.fps


@dataclass(frozen=True)
class AudioSpec:
    seed: int
    seconds: float
    suffix: str = ".mp3"
    bitrate: int | None = 128_000
    rate: int = AUDIO_RATE
    source_seconds: float | None = None  # an excerpt [start, start + seconds) of a piece this long
    start: float = 0.0
    noise_db: float | None = None  # white noise at this SNR

    @property
    def filename(self) -> str:
        parts = [f"a{GENERATOR}", f"s{self.seed}", f"{self.seconds:g}s", f"{self.rate}Hz"]
        parts += [f"of{self.source_seconds:g}from{self.start:g}"] if self.source_seconds else []
        parts += [f"snr{self.noise_db:g}"] if self.noise_db is not None else []
        parts += [f"{self.bitrate // 1000}k"] if self.bitrate else []
        return "-".join(parts) + self.suffix

    @property
    def cost(self) -> float:
        return (self.source_seconds or self.seconds) * 20_000


@dataclass(frozen=True)
class TextSpec:
    seed: int
    chars: int
    lang: str = "en"

    @property
    def filename(self) -> str:
        return f"t{GENERATOR}-s{self.seed}-{self.lang}-{self.chars}.txt"

    @property
    def cost(self) -> float:
        return self.chars * 2.0


Spec = VideoSpec | AudioSpec | TextSpec


def video_spec(size: VideoSize) -> VideoSpec:
    """One of the fingerprint-vs-decode files (also uploaded by the pipeline and hashed by vPDQ)."""
    return VideoSpec(VIDEO_SEED, size.seconds, size.width, size.height, fps=25.0, audio=True)


# -- writers ------------------------------------------------------------------------------------------------


class _Soundtrack:
    """Synthetic music fed into an AAC stream in step with the video, so the file is interleaved."""

    def __init__(self, out: av.container.OutputContainer, seed: int, seconds: float) -> None:
        self.out = out
        self.samples = np.ascontiguousarray(synth_audio.music(seed, seconds, AUDIO_RATE)[None, :], np.float32)
        self.stream = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        self.stream.bit_rate = 128_000
        self.at = 0

    def until(self, seconds: float) -> None:
        end = min(round(seconds * AUDIO_RATE), self.samples.shape[1])
        while self.at < end:
            n = min(4096, end - self.at)
            frame = av.AudioFrame.from_ndarray(
                self.samples[:, self.at : self.at + n].copy(), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, self.at, Fraction(1, AUDIO_RATE)
            self.out.mux(self.stream.encode(frame))
            self.at += n

    def finish(self) -> None:
        self.until(self.samples.shape[1] / AUDIO_RATE)
        self.out.mux(self.stream.encode(None))


def write_video(spec: VideoSpec, path: Path) -> Path:
    width, height = spec.width - spec.width % 2, spec.height - spec.height % 2
    small = (max(width // spec.render_div, 16), max(height // spec.render_div, 16))
    options = {"preset": spec.preset} if spec.bitrate else {"preset": spec.preset, "crf": "23"}
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(spec.fps).limit_denominator(1001), options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if spec.bitrate:
            stream.bit_rate = spec.bitrate
        # Every stream must exist before the first packet is muxed.
        sound = _Soundtrack(out, spec.seed + 100_000, spec.seconds) if spec.audio else None
        scaler = VideoReformatter()  # one scaler for the file: `frame.reformat` would set one up per frame
        for i, rgb in enumerate(iter_frames(spec.seed, spec.seconds, small, spec.fps, spec.start)):
            pixels = np.ascontiguousarray(rgb[:, ::-1] if spec.hflip else rgb)
            frame = scaler.reformat(
                av.VideoFrame.from_ndarray(pixels, "rgb24"),
                width=width,
                height=height,
                format="yuv420p",
                interpolation="BICUBIC",
            )
            frame.pts = i
            out.mux(stream.encode(frame))
            if sound is not None:
                sound.until((i + 1) / spec.fps)
        out.mux(stream.encode(None))
        if sound is not None:
            sound.finish()
    return path


def write_audio(spec: AudioSpec, path: Path) -> Path:
    samples = synth_audio.music(spec.seed, spec.source_seconds or spec.seconds, spec.rate)
    if spec.source_seconds:
        samples = synth_audio.excerpt(samples, spec.rate, spec.start, spec.seconds)
    if spec.noise_db is not None:
        samples = synth_audio.add_noise(samples, spec.noise_db, seed=spec.seed)
    # synth's writer picks the codec from the suffix; it must see the real one, not our ".part" suffix.
    return synth_audio.write_audio(path, samples, spec.rate, bitrate=spec.bitrate)


def write_text(spec: TextSpec, path: Path) -> Path:
    path.write_text(synth_text.document(spec.seed, spec.chars, spec.lang), encoding="utf-8")
    return path


def generate(spec: Spec, path: Path) -> Path:
    """Write `spec` to `path` atomically (a crash leaves no half file under the cached name)."""
    partial = path.with_name(f".part-{os.getpid()}-{path.name}")  # keeps the suffix: writers choose by it
    try:
        if isinstance(spec, VideoSpec):
            write_video(spec, partial)
        elif isinstance(spec, AudioSpec):
            write_audio(spec, partial)
        else:
            write_text(spec, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


class MediaCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, spec: Spec) -> Path:
        return self.root / spec.filename

    def ensure(self, specs: Iterable[Spec], *, workers: int = 2, progress: Callable[[str], None] = print) -> float:
        """Generate the specs not cached yet; returns the seconds spent."""
        missing = sorted({s for s in specs if not self.path(s).exists()}, key=lambda s: -s.cost)
        if not missing:
            return 0.0
        started = time.perf_counter()
        progress(f"generating {len(missing)} media file(s) into {self.root} …")
        if workers <= 1 or len(missing) == 1:
            for spec in missing:
                generate(spec, self.path(spec))
        else:
            # fork: the bench generates before it starts any thread of its own, and spawn would re-run the
            # caller's __main__ in every worker.
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                futures = [pool.submit(generate, spec, self.path(spec)) for spec in missing]
                for future in as_completed(futures):
                    future.result()
        return time.perf_counter() - started
