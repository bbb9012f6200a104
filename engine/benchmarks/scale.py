"""Search at scale: query latency (p50/p95) of 60 s clips and index memory at several library sizes.

Each size gets a fresh index: synthetic bulk items (the colleagues' generators, `scripts/bench_video.py`'s
`random_items`: 1-hour items of uniformly random frame hashes at 2 frames/s; `scripts/bench_audio.py`'s
`hash_sampler`: 3-minute items whose landmark hashes follow the real items' statistics at the real density) plus a
few real items fingerprinted from files. Queries are copies of the real items (video: rescaled, re-encoded at
150 kb/s, mirrored, another frame rate; audio: MP3 64k + 10 dB noise) and as many unrelated clips, each searched
`reps` times after a warm-up search; every search is one latency sample.

Memory is what the index allocated and still holds after the build (tracemalloc: NumPy reports its buffers to it),
with the index's own `memory_bytes()` estimate beside it.
"""

from __future__ import annotations

import gc
import itertools
import math
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.audio import AudioFingerprint, AudioModality
from engine.audio.params import FRAME_SECONDS
from engine.benchmarks import Profile, load_script
from engine.benchmarks.media import AudioSpec, MediaCache, Spec, VideoSpec
from engine.benchmarks.timing import percentile
from engine.core import Fingerprint, ModalityIndex
from engine.video import VideoFingerprint, VideoModality

AUDIO_ITEM_SECONDS = 180.0
VIDEO_ITEM_HOURS = 1.0
BULK_ID = 1_000_000  # bulk item ids start here; real items are 1..n


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


def video_scale(
    hours_list: tuple[float, ...], queries: QuerySet, reps: int, progress: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    bench_video = load_script("bench_video")
    rows = []
    for hours in hours_list:
        progress(f"  video library of {hours:g} h …")
        items: list[tuple[int, VideoFingerprint]] = list(bench_video.random_items(hours, VIDEO_ITEM_HOURS, seed=5))

        def build(index: Any, items: list[tuple[int, VideoFingerprint]] = items) -> dict[str, Any]:
            index.add_many(items)
            return {"units_m": sum(len(fp) for _, fp in items) / 1e6, "unit": "frames"}

        rows.append(_measure(hours, build, VideoModality().new_index, queries, reps))
        del items
    return rows


def audio_scale(
    hours_list: tuple[float, ...], queries: QuerySet, reps: int, progress: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    bench_audio = load_script("bench_audio")
    real: list[AudioFingerprint] = [fp for fp in queries.real.values() if isinstance(fp, AudioFingerprint)]
    density = sum(len(fp) for fp in real) / sum(fp.duration for fp in real)  # landmarks per second
    per_item = int(density * AUDIO_ITEM_SECONDS)
    frames = int(AUDIO_ITEM_SECONDS / FRAME_SECONDS)
    rows = []
    for hours in hours_list:
        progress(f"  audio library of {hours:g} h …")
        rng = np.random.default_rng(1)
        draw = bench_audio.hash_sampler(real, rng)
        n_items = max(1, math.ceil(hours * 3600 / AUDIO_ITEM_SECONDS))

        def build(
            index: Any, n_items: int = n_items, draw: Any = draw, rng: np.random.Generator = rng
        ) -> dict[str, Any]:
            synthesis = 0.0
            for start in range(0, n_items, 2000):  # items drawn per NumPy call
                count = min(2000, n_items - start)
                t0 = time.perf_counter()
                hashes = draw(count * per_item).reshape(count, per_item)
                times = np.sort(rng.integers(0, frames, (count, per_item), dtype=np.int64), axis=1).astype(np.uint32)
                synthesis += time.perf_counter() - t0
                for k in range(count):
                    index.add_landmarks(BULK_ID + start + k, hashes[k], times[k], AUDIO_ITEM_SECONDS)
            return {"units_m": n_items * per_item / 1e6, "unit": "landmarks", "synthesis_s": synthesis}

        rows.append(_measure(hours, build, AudioModality().new_index, queries, reps))
    return rows


def growth(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How each cost multiplies from one library size to the next, and its exponent b in `cost ~ hours^b`
    over that step (1 = linear, 0 = flat)."""
    steps = []
    for small, big in itertools.pairwise(rows):
        step: dict[str, Any] = {"from_hours": small["hours"], "to_hours": big["hours"]}
        span = math.log(big["hours"] / small["hours"])
        for metric in ("p50_ms", "p95_ms", "memory_mib"):  # (build times of small libraries are ~0: no ratio)
            if small[metric] > 0 and big[metric] > 0:
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
        rows = measure(profile.scale_hours, queries, profile.scale_reps, progress)
        out[name] = {"query_seconds": profile.scale_query_seconds, "rows": rows, "growth": growth(rows)}
    return out
