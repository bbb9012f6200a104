"""Search at scale: query latency (p50/p95) of 60 s clips and index memory at several library sizes.

Each size gets a fresh index: synthetic bulk items (the colleagues' generators, `scripts/bench_video.py`'s
`random_items`: 1-hour items of uniformly random frame hashes at 2 frames/s; audio: `landmark_sampler`, 3-minute
items whose landmark hashes follow the real items' stored statistics at their stored density) plus a
few real items fingerprinted from files. Queries are copies of the real items (video: rescaled, re-encoded at
150 kb/s, mirrored, another frame rate; audio: MP3 64k + 10 dB noise) and as many unrelated clips, each searched
`reps` times after a warm-up search; every search is one latency sample.

Memory is what the index allocated and still holds after the build (tracemalloc: NumPy reports its buffers to it),
with the index's own `memory_bytes()` estimate beside it.

Video and audio indexes are persisted as a production library's are (`attach` + `save`), then searched as a
restarted engine searches them: loaded afresh from disk, memory-mapped. Their memory is the mapped arrays plus the
heap the load allocated, and the cold start is measured in a new process: interpreter start -> index mapped ->
the first 60 s query answered (the page cache is warm: the engine restarted, not the machine).
"""

from __future__ import annotations

import gc
import itertools
import json
import math
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from engine.audio import AudioFingerprint, AudioIndex, AudioModality
from engine.audio.landmarks import join_hash, split_hash
from engine.audio.params import FRAME_SECONDS
from engine.benchmarks import REPO_ROOT, Profile, load_script
from engine.benchmarks.media import AudioSpec, MediaCache, Spec, VideoSpec
from engine.benchmarks.timing import percentile
from engine.core import Fingerprint, ModalityIndex
from engine.video import VideoFingerprint, VideoIndex, VideoModality

AUDIO_ITEM_SECONDS = 180.0
VIDEO_ITEM_HOURS = 1.0
BULK_ID = 1_000_000  # bulk item ids start here; real items are 1..n
AUDIO_BULK_PENDING = 1 << 25  # landmarks a bulk-loaded audio index buffers before sorting them into a run


@dataclass
class QuerySet:
    real: dict[int, Fingerprint]  # item id -> fingerprint, added to every library
    copies: list[tuple[Fingerprint, int]]  # (query, the real item it copies)
    unrelated: list[Fingerprint]


def _search_all(index: ModalityIndex[Any], queries: QuerySet, reps: int) -> dict[str, Any]:
    everything = [q for q, _ in queries.copies] + queries.unrelated
    for query in everything:  # warm-up: the first search also turns queued additions into index blocks
        index.search(query, max_items=10)
    latencies: list[float] = []
    found = false_hits = 0
    for rep in range(reps):
        for k, query in enumerate(everything):
            start = time.perf_counter()
            result = index.search(query, max_items=10)
            latencies.append(time.perf_counter() - start)
            if rep == 0 and k < len(queries.copies):
                found += bool(result) and result[0].item_id == queries.copies[k][1]
            elif rep == 0:
                false_hits += bool(result)
    return {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "max_ms": max(latencies) * 1000,
        "searches": len(latencies),
        "copies_found": found,
        "copies": len(queries.copies),
        "unrelated_hits": false_hits,
        "unrelated": len(queries.unrelated),
    }


def _measure(
    hours: float,
    build: Callable[[ModalityIndex[Any]], dict[str, Any]],
    new_index: Callable[[], Any],
    queries: QuerySet,
    reps: int,
) -> dict[str, Any]:
    gc.collect()
    index = new_index()
    tracemalloc.start()
    started = time.perf_counter()
    info = build(index)
    for item_id, fp in queries.real.items():
        index.add(item_id, fp)
    index.flush()
    build_s = time.perf_counter() - started - info.pop("synthesis_s", 0.0)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    row = {
        "hours": hours,
        "items": len(index),
        **info,
        "build_s": build_s,
        "memory_mib": held / 2**20,
        "peak_mib": peak / 2**20,
        "estimate_mib": index.memory_bytes() / 2**20,
        "bytes_per_hour": held / hours,
        **_search_all(index, queries, reps),
    }
    del index
    gc.collect()
    return row


# Run in a new process: what a restarted engine does before its first answer (imports included). Formatted with
# the modality's package and its fingerprint and index classes.
_COLD_START = """
import json, resource, sys, time
started = time.perf_counter()
from pathlib import Path
from {package} import {fingerprint} as Fingerprint, {index} as Index
imported = time.perf_counter()
index = Index()
index.attach(Path(sys.argv[1]))
loaded = time.perf_counter()
query = Fingerprint.from_bytes(Path(sys.argv[2]).read_bytes())
found = [m.item_id for m in index.search(query, max_items=10)]
answered = time.perf_counter()
print(json.dumps({{"import_s": imported - started, "load_s": loaded - imported, "search_s": answered - loaded,
                  "found": found, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def cold_start(directory: Path, query: VideoFingerprint | AudioFingerprint) -> dict[str, Any]:
    """A new Python process maps the persisted index in `directory` and answers `query`: wall time from process
    start to its exit, with the child's own split (imports, load, first search) and its peak RSS."""
    query_path = directory.parent / "cold-query.bin"
    query_path.write_bytes(query.to_bytes())
    script = _COLD_START.format(package=type(query).__module__.rsplit(".", 1)[0], fingerprint=type(query).__name__,
                                index=type(query).__name__.replace("Fingerprint", "Index"))  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script, str(directory), str(query_path)], capture_output=True,
                          text=True, check=True, cwd=REPO_ROOT)  # fmt: skip
    total = time.perf_counter() - started
    child = json.loads(done.stdout.strip().splitlines()[-1])
    return {"cold_start_s": total, **{f"cold_{k}": v for k, v in child.items()}}


IndexT = TypeVar("IndexT", VideoIndex, AudioIndex)


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _reload(cls: type[IndexT], directory: Path) -> tuple[IndexT, float, int]:
    """A new index of `cls` attached to `directory`, as a restarted engine loads it: (index, seconds to load, heap
    bytes the load allocated)."""
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    loaded = cls()
    loaded.attach(directory)
    load_s = time.perf_counter() - started
    heap, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return loaded, load_s, heap


def _measure_persisted(hours: float, items: list[tuple[int, VideoFingerprint]], queries: QuerySet,
                       reps: int) -> dict[str, Any]:  # fmt: skip
    """Build and save the library's video index, then load it back (mapped) and measure that one."""
    with tempfile.TemporaryDirectory(prefix="fpscreen-scale-") as tmp:
        directory = Path(tmp) / "video"
        gc.collect()
        index = VideoIndex()
        index.attach(directory)
        tracemalloc.start()
        started = time.perf_counter()
        index.add_many(items)
        for item_id, fp in queries.real.items():
            index.add(item_id, fp)
        index.flush()
        build_s = time.perf_counter() - started
        built_heap, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        save_s = _timed(index.save)
        del index
        loaded, load_s, heap = _reload(VideoIndex, directory)
        mapped = loaded.memory_bytes()
        row = {
            "hours": hours,
            "items": len(loaded),
            "units_m": sum(len(fp) for _, fp in items) / 1e6,
            "unit": "frames",
            "build_s": build_s,
            "save_s": save_s,
            "load_s": load_s,
            "built_heap_mib": built_heap / 2**20,
            "peak_mib": peak / 2**20,
            # What a loaded index holds: its arrays (mapped from disk; the page cache keeps what searches touch)
            # and the heap the load allocated.
            "memory_mib": mapped / 2**20,
            "heap_mib": heap / 2**20,
            "estimate_mib": mapped / 2**20,
            "disk_mib": loaded.disk_bytes() / 2**20,
            "bytes_per_hour": mapped / hours,
            **_search_all(loaded, queries, reps),
        }
        del loaded
        gc.collect()
        row |= cold_start(directory, queries.copies[0][0])
        row["cold_found_copy"] = row.pop("cold_found")[:1] == [queries.copies[0][1]]
    return row


def video_scale(
    hours_list: tuple[float, ...], queries: QuerySet, reps: int, progress: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    bench_video = load_script("bench_video")
    rows = []
    for hours in hours_list:
        progress(f"  video library of {hours:g} h …")
        items: list[tuple[int, VideoFingerprint]] = list(bench_video.random_items(hours, VIDEO_ITEM_HOURS, seed=5))
        rows.append(_measure_persisted(hours, items, queries, reps))
        del items
    return rows


def landmark_sampler(real: list[AudioFingerprint], rng: np.random.Generator) -> Callable[[int], np.ndarray]:
    """Synthetic landmark hashes: f1, df and dt drawn independently from the marginals of what an index holds of
    the real items (what `scripts/bench_audio.py`'s `hash_sampler` draws), by lookup in each marginal's inverse CDF
    on a 2^16 grid: ~10x faster than `rng.choice`, which 346 M landmarks (10,000 h) need."""
    f1, df, dt = split_hash(np.concatenate([fp.library_landmarks()[0] for fp in real]))
    grid = (np.arange(1 << 16) + 0.5) / (1 << 16)
    tables = []
    for part in (f1, df, dt):
        cdf = np.cumsum(np.bincount(part) / part.size)
        tables.append(np.minimum(np.searchsorted(cdf, grid, "right"), cdf.size - 1).astype(np.uint32))

    def draw(n: int) -> np.ndarray:
        a, b, c = (t[rng.integers(0, 1 << 16, n, dtype=np.uint16)] for t in tables)
        return join_hash(a, b, c).astype(np.uint32)

    return draw


def new_bulk_audio_index() -> AudioIndex:
    """An audio index for bulk loads: it buffers 32 M landmarks a run (the default 4 M would merge each landmark
    ~8 times at 10,000 h)."""
    return AudioIndex(pending_max=AUDIO_BULK_PENDING)


def add_audio_background(index: AudioIndex, real: list[AudioFingerprint], hours: float, seed: int = 1) -> float:
    """Add `hours` of 3-minute synthetic items to `index` under ids from BULK_ID: landmarks drawn from what an index
    holds of the `real` items (`landmark_sampler`), at their stored density, times uniform. Returns the seconds
    spent drawing them (the rest is the index's own building)."""
    density = sum(fp.library_landmarks()[0].size for fp in real) / sum(fp.duration for fp in real)  # stored a second
    per_item = int(density * AUDIO_ITEM_SECONDS)
    frames = int(AUDIO_ITEM_SECONDS / FRAME_SECONDS)
    n_items = max(1, math.ceil(hours * 3600 / AUDIO_ITEM_SECONDS))
    rng = np.random.default_rng(seed)
    draw = landmark_sampler(real, rng)
    synthesis = 0.0
    for start in range(0, n_items, 2000):  # items drawn per NumPy call
        count = min(2000, n_items - start)
        t0 = time.perf_counter()
        hashes = draw(count * per_item).reshape(count, per_item)
        # uint16 frames (an item has 11,250): NumPy sorts them by radix
        times = np.sort(rng.integers(0, frames, (count, per_item), dtype=np.uint16), axis=1, kind="stable")
        synthesis += time.perf_counter() - t0
        for k in range(count):
            index.add_landmarks(BULK_ID + start + k, hashes[k], times[k], AUDIO_ITEM_SECONDS)
        del hashes, times
    return synthesis


def _measure_audio_persisted(hours: float, queries: QuerySet, reps: int) -> dict[str, Any]:
    """Build and save a library's audio index of `hours` (3-minute synthetic items at the real stored density,
    plus the real items), then load it back (mapped) and measure that one, as `_measure_persisted` does video."""
    real: list[AudioFingerprint] = [fp for fp in queries.real.values() if isinstance(fp, AudioFingerprint)]
    with tempfile.TemporaryDirectory(prefix="fpscreen-scale-") as tmp:
        directory = Path(tmp) / "audio"
        gc.collect()
        index = new_bulk_audio_index()
        index.attach(directory)
        started = time.perf_counter()
        synthesis = add_audio_background(index, real, hours)
        for item_id, fp in queries.real.items():
            index.add(item_id, fp)
        index.flush()
        build_s = time.perf_counter() - started - synthesis
        save_s = _timed(index.save)
        n_runs = index.n_runs
        del index
        loaded, load_s, heap = _reload(AudioIndex, directory)
        mapped = loaded.memory_bytes()
        row = {
            "hours": hours,
            "items": len(loaded),
            "units_m": loaded.n_postings / 1e6,
            "unit": "landmarks",
            "runs": n_runs,
            "build_s": build_s,
            "synthesis_s": synthesis,
            "save_s": save_s,
            "load_s": load_s,
            "memory_mib": mapped / 2**20,
            "heap_mib": heap / 2**20,
            "estimate_mib": mapped / 2**20,
            "disk_mib": loaded.disk_bytes() / 2**20,
            "bytes_per_landmark": mapped / max(loaded.n_postings, 1),
            "bytes_per_hour": mapped / hours,
            **_search_all(loaded, queries, reps),
        }
        del loaded
        gc.collect()
        copy, source = queries.copies[0]
        assert isinstance(copy, AudioFingerprint)
        row |= cold_start(directory, copy)
        row["cold_found_copy"] = row.pop("cold_found")[:1] == [source]
    return row


def audio_scale(
    hours_list: tuple[float, ...], queries: QuerySet, reps: int, progress: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    rows = []
    for hours in hours_list:
        progress(f"  audio library of {hours:g} h …")
        rows.append(_measure_audio_persisted(hours, queries, reps))
    return rows


def growth(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How each cost multiplies from one library size to the next, and its exponent b in `cost ~ hours^b`
    over that step (1 = linear, 0 = flat)."""
    steps = []
    for small, big in itertools.pairwise(rows):
        step: dict[str, Any] = {"from_hours": small["hours"], "to_hours": big["hours"]}
        span = math.log(big["hours"] / small["hours"])
        # (build times of small libraries are ~0: no ratio)
        for metric in ("p50_ms", "p95_ms", "memory_mib", "cold_start_s"):
            if small.get(metric, 0) > 0 and big.get(metric, 0) > 0:
                factor = big[metric] / small[metric]
                step[metric] = {"factor": factor, "exponent": math.log(factor) / span}
        steps.append(step)
    return steps


# -- the section --------------------------------------------------------------------------------------------


def _video_specs(profile: Profile) -> tuple[list[VideoSpec], list[VideoSpec], list[VideoSpec]]:
    q = profile.scale_query_seconds
    n = range(profile.scale_queries)
    real = [VideoSpec(200 + i, q + 20.0, 320, 240, fps=15.0, render_div=2) for i in n]
    copies = [
        VideoSpec(200 + i, q, 400, 300, fps=25.0, start=5.0 + 5 * i, render_div=2, bitrate=150_000, hflip=True)
        for i in n
    ]
    unrelated = [VideoSpec(300 + i, q, 320, 240, fps=15.0, render_div=2) for i in n]
    return real, copies, unrelated


def _audio_specs(profile: Profile) -> tuple[list[AudioSpec], list[AudioSpec], list[AudioSpec]]:
    q = profile.scale_query_seconds
    n = range(profile.scale_queries)
    real = [AudioSpec(1000 + i, q + 30.0, rate=22050) for i in n]
    copies = [
        AudioSpec(1000 + i, q, rate=22050, bitrate=64_000, source_seconds=q + 30.0, start=5.0 + 7 * i, noise_db=10.0)
        for i in n
    ]
    unrelated = [AudioSpec(2000 + i, q, rate=22050, bitrate=64_000) for i in n]
    return real, copies, unrelated


def media_for(profile: Profile) -> list[Spec]:
    specs: list[Spec] = []
    if "video" in profile.scale_modalities:
        specs += [s for group in _video_specs(profile) for s in group]
    if "audio" in profile.scale_modalities:
        specs += [s for group in _audio_specs(profile) for s in group]
    return specs


def _queries(modality: Any, cache: MediaCache, specs: tuple[list[Spec], list[Spec], list[Spec]]) -> QuerySet:
    def extract(spec: Spec) -> Fingerprint:
        fp = modality.extract(cache.path(spec))
        if fp is None:
            raise RuntimeError(f"{spec.filename}: no {modality.name} track")
        return fp

    real, copies, unrelated = specs
    return QuerySet(
        real={i + 1: extract(s) for i, s in enumerate(real)},
        copies=[(extract(s), i + 1) for i, s in enumerate(copies)],
        unrelated=[extract(s) for s in unrelated],
    )


def run(profile: Profile, cache: MediaCache, progress: Callable[[str], None] = print) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sections = {
        "video": (VideoModality(), _video_specs, video_scale),
        "audio": (AudioModality(), _audio_specs, audio_scale),
    }
    for name in profile.scale_modalities:
        modality, specs, measure = sections[name]
        queries = _queries(modality, cache, specs(profile))
        hours = tuple(h for h in profile.scale_hours if name == "video" or h <= profile.scale_audio_max_hours)
        rows = measure(hours, queries, profile.scale_reps, progress)
        out[name] = {"query_seconds": profile.scale_query_seconds, "rows": rows, "growth": growth(rows)}
    return out
