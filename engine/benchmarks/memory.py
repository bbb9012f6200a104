"""Peak memory of the engine on long inputs (`scripts/bench --sections memory`).

Each input is fingerprinted the way the service does it (`engine.service.sandbox`: limits, then every modality's
`extract`) in a fresh subprocess, whose peak resident set (`ru_maxrss`) is the figure, next to the same
process's RSS right after importing the engine (the floor no input can go below). Inputs are cheap to make and
small on disk: synthetic music with noise, looped with a different noise seed per minute, as 8 kbit/s mono Opus
(which FFmpeg decodes at 48 kHz: the worst case for a decoder that kept source-rate samples), and a text file of
generated sentences. Each audio file runs under the default limits (a file over `FPSCREEN_MAX_MEDIA_SECONDS` is
refused) and with the duration limit off, to show memory does not grow with duration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from engine.benchmarks import REPO_ROOT, Profile
from engine.benchmarks.media import MediaCache
from engine.synth import audio as synth_audio
from engine.synth import text as synth_text

GENERATOR = "m1"
_RATE = 8000  # Opus input rate; the decoder still produces 48 kHz
_LOOP_SECONDS = 60.0

_PROBE = r"""
import json, resource, sys, time
from pathlib import Path
from engine.core import ExtractOptions
from engine.errors import EngineError
from engine.service.sandbox import _extract_within_limits
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
path, model_id = Path(sys.argv[1]), int(sys.argv[2])
t0 = time.perf_counter()
try:
    found = _extract_within_limits(path, model_id, ExtractOptions())
    outcome = {name: (None if fp is None else round(float(fp.duration), 1)) for name, fp in found.items()}
    code = None
except EngineError as exc:
    outcome, code = None, exc.code
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"base_mb": base, "peak_mb": peak, "seconds": time.perf_counter() - t0,
                  "durations": outcome, "code": code}))
"""


def audio_path(cache: MediaCache, hours: float) -> Path:
    return cache.root / f"{GENERATOR}-music-noise-{hours:g}h-8k.opus"


def text_path(cache: MediaCache, megabytes: float) -> Path:
    return cache.root / f"{GENERATOR}-text-{megabytes:g}MB.txt"


def write_long_audio(path: Path, hours: float) -> Path:
    """Opus of music + noise, one minute of synthesis looped with fresh noise (cheap: hours in a minute)."""
    loop = synth_audio.music(21, _LOOP_SECONDS, _RATE).astype(np.float32)
    rng = np.random.default_rng(5)
    partial = path.with_name(f".part-{os.getpid()}-{path.name}")
    with av.open(str(partial), "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=_RATE, layout="mono")
        stream.bit_rate = 8000
        pts = 0
        for _ in range(round(hours * 3600 / _LOOP_SECONDS)):
            chunk = np.clip(loop + rng.normal(0.0, 0.02, loop.size).astype(np.float32), -1, 1)
            for i in range(0, chunk.size, 4000):
                part = np.ascontiguousarray(chunk[None, i : i + 4000])
                frame = av.AudioFrame.from_ndarray(part, format="flt", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = _RATE, pts, Fraction(1, _RATE)
                pts += part.shape[1]
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    os.replace(partial, path)
    return path


def write_long_text(path: Path, megabytes: float) -> Path:
    """Generated sentences (1 MB of them, each copy with its own line numbers so no two lines repeat)."""
    block = synth_text.document(8, 1_000_000, "en")
    partial = path.with_name(f".part-{os.getpid()}-{path.name}")
    with partial.open("w", encoding="utf-8") as out:
        written, copy = 0, 0
        while written < megabytes * 1e6:
            piece = f"[{copy}] {block}\n"[: int(megabytes * 1e6) - written]  # ASCII: one byte a character
            out.write(piece)
            written += len(piece.encode("utf-8"))
            copy += 1
    os.replace(partial, path)
    return path


def measure(path: Path, model_id: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Fingerprint `path` in a fresh process; its peak RSS, the RSS after imports, time and outcome."""
    environ = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), str(model_id)],
        capture_output=True, text=True, env=environ, check=True, timeout=3600,
    )  # fmt: skip
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def media_for(profile: Profile) -> list[Any]:
    return []  # made by `run` itself: not the per-spec writers of `media`, and only when this section runs


def run(profile: Profile, cache: MediaCache, progress: Callable[[str], None] = print) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for hours in profile.memory_audio_hours:
        path = audio_path(cache, hours)
        if not path.exists():
            progress(f"  generating {hours:g} h of audio …")
            write_long_audio(path, hours)
        variants: list[tuple[str, dict[str, str]]] = [("default limits", {})]
        if profile.name == "full":
            variants.append(("no duration limit", {"FPSCREEN_MAX_MEDIA_SECONDS": "0"}))
        for label, env in variants:
            progress(f"  audio {hours:g} h, {label} …")
            t0 = time.perf_counter()
            figures = measure(path, 13, env)
            rows.append({"input": f"audio {hours:g} h (Opus, {path.stat().st_size / 1e6:.1f} MB)", "limits": label,
                         **figures, "wall_s": time.perf_counter() - t0})  # fmt: skip
    megabytes = profile.memory_text_mb
    path = text_path(cache, megabytes)
    if not path.exists():
        progress(f"  generating {megabytes:g} MB of text …")
        write_long_text(path, megabytes)
    for label, env in (("default limits", {}), ("no character limit", {"FPSCREEN_MAX_TEXT_CHARS": "0"})):
        if label != "default limits" and megabytes > 20:
            continue  # unlimited, a 200 MB text is what took 7.8 GB: not run
        progress(f"  text {megabytes:g} MB, {label} …")
        figures = measure(path, 11, env)
        rows.append({"input": f"text {megabytes:g} MB", "limits": label, **figures})
    if megabytes > 5.0:  # what the default character limit (5 million) still admits
        limit_path = text_path(cache, 4.5)
        if not limit_path.exists():
            write_long_text(limit_path, 4.5)
        progress("  text just under the character limit …")
        rows.append({"input": "text 4.5 MB (under the default limit)", "limits": "default limits",
                     **measure(limit_path, 11)})  # fmt: skip
    return {"rows": rows, "goal_mb": 300}
