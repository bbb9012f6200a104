"""Speed and scale benchmarks behind `scripts/bench` (figures are printed and saved, never asserted).

- `media`: the synthetic inputs (videos at 360p/720p/1080p, music, text, burst clips), written once into a cache
  directory and shared by every section, so all figures of one run are measured on the same files.
- `modalities`: video fingerprinting time / PyAV full-decode time and x realtime; audio x realtime; text MB/s.
- `scale`: query latency (p50/p95) and index memory at several library sizes, and how both grow.
- `pipeline`: the local stack end to end: upload -> stored result latency, and a burst of uploads (jobs/minute,
  exactly one job and one stored result per upload), as deployed and with the MPS client's rate limit lifted.
- `peers`: vPDQ's hashing time on the same videos, as a ratio to ours.
- `report`: rich tables, JSON, and the Markdown the README carries; `timing`: interleaved medians, CPU time.

`Profile` holds every size; `FULL` is the documented run (< 10 min on 2 cores), `QUICK` the CI smoke run.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class VideoSize:
    label: str
    width: int
    height: int
    seconds: float


@dataclass(frozen=True)
class Profile:
    name: str
    videos: tuple[VideoSize, ...]  # fingerprint-vs-decode files; `pipeline_video` is one of them
    reps: int  # timed runs per measurement (medians)
    audio_seconds: float
    audio_formats: tuple[str, ...]  # file suffixes
    text_chars: int  # per language (en, zh)
    scale_hours: tuple[float, ...]
    scale_modalities: tuple[str, ...]
    scale_queries: int  # copy queries (and as many unrelated ones) per modality
    scale_query_seconds: float
    scale_reps: int  # searches of each query per library size
    pipeline_video: str  # label of the video uploaded for the latency figure
    pipeline_reps: int
    burst: int  # uploads in the burst
    burst_seconds: float
    peer_videos: tuple[str, ...]  # labels vPDQ hashes
    # Rounds of the video speed measurement go on past `reps` until they have taken this long (at most 4x `reps`):
    # a 360p clip decodes in a quarter second, and three samples of that scatter by +-10 % on a shared machine.
    video_min_seconds: float = 0.0
    memory_audio_hours: tuple[float, ...] = (1.0, 4.0)  # long audio fingerprinted for peak memory
    memory_text_mb: float = 200.0
    # Largest audio library measured (a persisted index: ~0.37 GiB mapped and ~1 min of build per 1,000 h).
    scale_audio_max_hours: float = 10000.0


FULL = Profile(
    name="full",
    videos=(
        # Synthesising these (x264 on 2 cores) is most of a fresh run's time: 720p is the pipeline's 60 s clip,
        # the others are shorter, which a fingerprint/decode ratio does not depend on.
        VideoSize("360p", 640, 360, 30.0),
        VideoSize("720p", 1280, 720, 60.0),
        VideoSize("1080p", 1920, 1080, 15.0),
    ),
    reps=3,
    video_min_seconds=12.0,
    audio_seconds=60.0,
    audio_formats=(".mp3", ".m4a", ".flac"),
    text_chars=3_000_000,
    scale_hours=(10.0, 100.0, 1000.0, 10000.0),
    scale_modalities=("video", "audio"),
    scale_queries=3,
    scale_query_seconds=60.0,
    scale_reps=4,
    pipeline_video="720p",
    pipeline_reps=3,
    burst=200,
    burst_seconds=3.0,
    peer_videos=("720p",),
)

QUICK = Profile(
    name="quick",
    videos=(VideoSize("360p", 640, 360, 4.0),),
    reps=1,
    audio_seconds=10.0,
    audio_formats=(".mp3",),
    text_chars=100_000,
    scale_hours=(1.0, 10.0),
    scale_modalities=("video", "audio"),
    scale_queries=1,
    scale_query_seconds=20.0,
    scale_reps=2,
    pipeline_video="360p",
    pipeline_reps=1,
    burst=8,
    burst_seconds=2.0,
    peer_videos=("360p",),
    memory_audio_hours=(0.05,),  # 3 min: past the whole-file threshold, so the two-pass stream runs
    memory_text_mb=2.0,
)


def load_script(name: str) -> ModuleType:
    """Import a colleague's `scripts/<name>.py` (not a package) to reuse its helpers instead of copying them."""
    if name in sys.modules:
        return sys.modules[name]
    path = REPO_ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
