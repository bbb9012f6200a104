"""Fingerprinting speed per modality: video against the PyAV full-decode floor, audio x realtime, text MB/s.

Video: the same file is decoded in full by PyAV (every frame, as `scripts/bench_video.py` does it: defaults, and
threaded) and fingerprinted by the engine, in turns. The floor is the faster of the two decodes; the target is
fingerprint / floor <= 1.0 (the engine decodes reference frames only, so it can beat a full decode). Two
diagnostics run in the same turns: decoding only the reference frames (`skip_frame=NONREF`, no loop filter, the
strategy `engine.video.decode` documents), threaded and not, so a miss can be split into the decode's share and
the per-frame thumbnail and hash work's share.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import av

from engine.audio import AudioFingerprint, AudioModality
from engine.benchmarks import Profile, VideoSize, load_script
from engine.benchmarks.media import AudioSpec, MediaCache, Spec, TextSpec, video_spec
from engine.benchmarks.timing import interleaved
from engine.text import TextFingerprint, TextModality
from engine.video import VideoFingerprint, VideoModality

# Fingerprint time / full-decode time: at most a full decode at any size (issue 9), and 0.9 of one at 360p, where
# the per-frame work weighs most against a cheap decode (issue 14).
VIDEO_TARGET = 1.0
VIDEO_TARGETS = {"360p": 0.9}


def decode_reference_frames(path: Path, threaded: bool) -> int:
    """Decode only what nothing else depends on skipping: the reference frames, without the loop filter."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if threaded:
            stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = "NONREF"
        stream.codec_context.options = {"skip_loop_filter": "all"}
        return sum(1 for _ in container.decode(stream))


def video_speed(path: Path, size: VideoSize, reps: int, min_seconds: float = 0.0) -> dict[str, Any]:
    bench_video = load_script("bench_video")
    modality = VideoModality()
    kept: list[VideoFingerprint | None] = []
    frames: list[int] = []

    def fingerprint() -> None:
        kept[:] = [modality.extract(path)]

    def decode() -> None:
        frames[:] = [bench_video.decode_all(path, threaded=False)]

    samples = interleaved(
        {
            "decode": decode,
            "decode_threaded": lambda: bench_video.decode_all(path, threaded=True),
            "fingerprint": fingerprint,
            "ref_decode_threaded": lambda: decode_reference_frames(path, threaded=True),
            "ref_decode": lambda: decode_reference_frames(path, threaded=False),
        },
        reps,
        warmup=False,  # runs of seconds: set-up costs are noise, and a warm-up would cost a fourth of the section
        min_seconds=min_seconds,
    )
    fp = kept[0]
    dec, thr, fpt = (samples[k].median for k in ("decode", "decode_threaded", "fingerprint"))
    floor = min(dec, thr)
    cpu_floor = min(samples["decode"].cpu_median, samples["decode_threaded"].cpu_median)
    return {
        "label": size.label,
        "width": size.width,
        "height": size.height,
        "seconds": size.seconds,
        "frames": frames[0],
        "file_mb": round(path.stat().st_size / 1e6, 2),
        "sampled_frames": len(fp) if fp is not None else 0,
        "decode_s": dec,
        "decode_threaded_s": thr,
        "fingerprint_s": fpt,
        "ref_decode_threaded_s": samples["ref_decode_threaded"].median,
        "ref_decode_s": samples["ref_decode"].median,
        "ratio": fpt / floor,  # vs the faster full decode: the target
        "ratio_default": fpt / dec,
        "ratio_threaded": fpt / thr,
        "ratio_cpu": samples["fingerprint"].cpu_median / cpu_floor,
        "x_realtime": size.seconds / fpt,
        "target": VIDEO_TARGETS.get(size.label, VIDEO_TARGET),
        "met": fpt / floor <= VIDEO_TARGETS.get(size.label, VIDEO_TARGET),
        "reps": len(samples["fingerprint"].wall),  # `reps` or more (`min_seconds`)
    }


def audio_speed(files: dict[str, Path], seconds: float, reps: int) -> list[dict[str, Any]]:
    """x realtime of decode + resample to 8 kHz mono + peaks, per container/codec (same music in each)."""
    modality = AudioModality()
    kept: dict[str, AudioFingerprint | None] = {}

    def job(name: str, path: Path) -> Any:
        return lambda: kept.__setitem__(name, modality.extract(path))

    samples = interleaved({name: job(name, path) for name, path in files.items()}, reps)
    rows = []
    for name, path in files.items():
        fp = kept[name]
        t = samples[name].median
        rows.append(
            {
                "format": name.lstrip("."),
                "seconds": seconds,
                "file_mb": round(path.stat().st_size / 1e6, 2),
                "extract_s": t,
                "x_realtime": seconds / t,
                "landmarks_per_s": len(fp) / seconds if fp is not None else 0.0,
                "reps": reps,
            }
        )
    return rows


def text_speed(files: dict[str, Path], reps: int) -> list[dict[str, Any]]:
    """MB/s of read + parse + normalise + winnowing, per language (MB of the UTF-8 file)."""
    modality = TextModality()
    kept: dict[str, TextFingerprint] = {}

    def job(name: str, path: Path) -> Any:
        return lambda: kept.__setitem__(name, modality.extract(path))

    samples = interleaved({name: job(name, path) for name, path in files.items()}, reps)
    rows = []
    for name, path in files.items():
        size = path.stat().st_size / 1e6
        t = samples[name].median
        rows.append(
            {
                "lang": name,
                "file_mb": round(size, 2),
                "chars": len(path.read_text(encoding="utf-8")),
                "extract_s": t,
                "mb_per_s": size / t,
                "hashes": len(kept[name]),
                "reps": reps,
            }
        )
    return rows


# -- the section --------------------------------------------------------------------------------------------


def _audio_specs(profile: Profile) -> dict[str, AudioSpec]:
    return {
        suffix: AudioSpec(7, profile.audio_seconds, suffix=suffix, bitrate=None if suffix == ".flac" else 128_000)
        for suffix in profile.audio_formats
    }


def _text_specs(profile: Profile) -> dict[str, TextSpec]:
    return {lang: TextSpec(11, profile.text_chars, lang) for lang in ("en", "zh")}


def media_for(profile: Profile) -> list[Spec]:
    return [video_spec(v) for v in profile.videos] + [*_audio_specs(profile).values(), *_text_specs(profile).values()]


def run(profile: Profile, cache: MediaCache, progress: Callable[[str], None] = print) -> dict[str, Any]:
    video = []
    for size in profile.videos:
        progress(f"  video {size.label} ({size.seconds:g} s) …")
        video.append(video_speed(cache.path(video_spec(size)), size, profile.reps, profile.video_min_seconds))
    progress("  audio, text …")
    audio_files = {suffix: cache.path(spec) for suffix, spec in _audio_specs(profile).items()}
    text_files = {lang: cache.path(spec) for lang, spec in _text_specs(profile).items()}
    return {
        "video": video,
        "audio": audio_speed(audio_files, profile.audio_seconds, profile.reps),
        "text": text_speed(text_files, profile.reps),
    }
