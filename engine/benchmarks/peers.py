"""vPDQ (Meta ThreatExchange, PyPI `vpdq`) hashing time on the same videos as ours, as a ratio.

Both run with their defaults: `vpdq.computeHash` at one hash per second with its default thread count (it decodes
every frame through its own libav), our `VideoModality.extract` with threaded reference-frame decoding. They are
timed in turns on the same file, so the ratio holds on a loaded machine. vPDQ is optional:
`scripts/install_peers.sh` installs it; without it the section says so and the run goes on.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.benchmarks import REPO_ROOT, Profile, VideoSize
from engine.benchmarks.media import MediaCache, Spec, video_spec
from engine.benchmarks.timing import interleaved
from engine.video import VideoModality

INSTALLER = REPO_ROOT / "scripts" / "install_peers.sh"
NOT_INSTALLED = "vpdq: not installed (run scripts/install_peers.sh)"


def vpdq_available() -> tuple[bool, str]:
    try:
        importlib.import_module("vpdq")
    except ImportError:
        return False, NOT_INSTALLED
    return True, f"vpdq {importlib.metadata.version('vpdq')}"


def vpdq_speed(files: dict[str, tuple[Path, float]], reps: int) -> dict[str, Any]:
    """`files`: label -> (path, seconds). Ratio = vPDQ time / our fingerprint time (> 1: we are faster)."""
    installed, detail = vpdq_available()
    out: dict[str, Any] = {
        "installed": installed,
        "detail": detail,
        "installer_present": INSTALLER.is_file(),
        "rows": [],
    }
    if not installed:
        return out
    import vpdq

    modality = VideoModality()
    for label, (path, seconds) in files.items():
        hashes: list[int] = []

        def run_vpdq(p: Path = path, keep: list[int] = hashes) -> None:
            keep[:] = [len(vpdq.computeHash(str(p)))]

        samples = interleaved({"ours": lambda p=path: modality.extract(p), "vpdq": run_vpdq}, reps, warmup=False)
        ours, theirs = samples["ours"].median, samples["vpdq"].median
        out["rows"].append(
            {
                "label": label,
                "seconds": seconds,
                "ours_s": ours,
                "vpdq_s": theirs,
                "ratio": theirs / ours,
                "ratio_cpu": samples["vpdq"].cpu_median / samples["ours"].cpu_median,
                "vpdq_hashes": hashes[0] if hashes else 0,
                "reps": reps,
            }
        )
    return out


def _sizes(profile: Profile) -> list[VideoSize]:
    return [v for v in profile.videos if v.label in profile.peer_videos]


def media_for(profile: Profile) -> list[Spec]:
    return [video_spec(v) for v in _sizes(profile)]


def run(profile: Profile, cache: MediaCache, progress: Callable[[str], None] = print) -> dict[str, Any]:
    progress(f"  {vpdq_available()[1]}")
    files = {v.label: (cache.path(video_spec(v)), v.seconds) for v in _sizes(profile)}
    return vpdq_speed(files, profile.reps)
