"""The serverless pipeline on one machine (`engine.localstack`): latency of one upload, throughput of a burst.

The stack runs in this process (bucket -> OSS trigger -> submit_on_upload -> engine -> MNS -> store_results ->
SQLite), with two engine workers, as `fpscreen up` runs it. A small library goes in first (the source of the
latency clip, so that upload is screened as a copy, and one unrelated item).

- Latency: the clip is uploaded alone, `reps` times under new keys; each time from `upload()` to the moment
  store_results wrote its final row (the row's `updated_at`), split at the claim submit_on_upload made.
- Burst: `n` small clips uploaded back to back; jobs/minute from the first upload to the last stored row. Then
  the bookkeeping is checked once everything is idle: every upload has exactly one engine job and one stored
  result (no duplicate, no loss), and nothing was dead-lettered or parked.

The burst runs twice. First as deployed: template.yml gives each function instance an MPS client limited to
FPSCREEN_MPS_QPS = 10 calls/s, and here all functions share one process, hence one limiter; every job costs two
calls (SubmitFpShotJob, then QueryFpShotJobList in store_results), so that run cannot exceed 5 jobs/s. Then the
same clips under new keys with the limit lifted, which shows what the engine itself sustains.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.benchmarks import Profile
from engine.benchmarks.media import MediaCache, Spec, VideoSpec, video_spec
from engine.benchmarks.timing import percentile
from engine.localstack.fc_runtime import RetrySchedule
from engine.localstack.stack import LocalStack, StackPaths, StackSettings
from shared.config import ENV_MPS_QPS
from shared.ports import JobRecord
from shared.vocabulary import FINAL_STATES

FINAL = FINAL_STATES
TIMEOUT = 600.0
LIFTED_QPS = "10000"


def _rows(stack: LocalStack) -> dict[str, JobRecord]:
    """The stored result row of each object key (the newest, should there be several)."""
    rows: dict[str, JobRecord] = {}
    for job in reversed(stack.results_store().recent_jobs(100_000)):
        rows[job.object_key] = job
    return rows


def _final(stack: LocalStack, keys: list[str]) -> bool:
    rows = _rows(stack)
    return all(key in rows and rows[key].state in FINAL for key in keys)


def _idle(stack: LocalStack) -> bool:
    """No invocation queued or running, no engine job unfinished, no notification owed."""
    busy = {k: v for k, v in stack.state.counts().items() if k not in ("done", "dead")}
    jobs = stack.engine.jobs.store
    unfinished = jobs.count("Queuing") + jobs.count("Analysing")
    return not busy and not unfinished and not stack.engine.pending_notifications()


def _upload_and_wait(stack: LocalStack, path: Path, key: str) -> dict[str, Any]:
    uploaded = time.time()
    stack.upload(path, key)
    if not stack.wait(lambda: _final(stack, [key]), timeout=TIMEOUT):
        raise TimeoutError(f"{key}: no stored result within {TIMEOUT:.0f} s")
    row = _rows(stack)[key]
    return {
        "latency_s": row.updated_at - uploaded,
        "to_submit_s": row.submitted_at - uploaded,  # upload -> trigger -> submit_on_upload's claim
        "state": row.state,
        "matches": row.match_count,
    }


def latency(stack: LocalStack, clip: Path, seconds: float, reps: int) -> dict[str, Any]:
    runs = [_upload_and_wait(stack, clip, f"uploads/latency-{r}{clip.suffix}") for r in range(reps)]
    return {
        "clip_seconds": seconds,
        "clip_mb": round(clip.stat().st_size / 1e6, 2),
        "latency_s": statistics.median(r["latency_s"] for r in runs),
        "latency_min_s": min(r["latency_s"] for r in runs),
        "latency_max_s": max(r["latency_s"] for r in runs),
        "to_submit_s": statistics.median(r["to_submit_s"] for r in runs),
        "verdicts": [("copy" if r["matches"] else "clean") if r["state"] == "Success" else "failed" for r in runs],
        "reps": reps,
    }


def burst(stack: LocalStack, clips: list[Path], seconds_each: float, prefix: str) -> dict[str, Any]:
    keys = [f"{prefix}{i:04d}{p.suffix}" for i, p in enumerate(clips)]
    sent: dict[str, float] = {}
    first = time.time()
    for key, path in zip(keys, clips, strict=True):
        sent[key] = time.time()
        stack.upload(path, key)
    upload_s = time.time() - first
    done = stack.wait(lambda: _final(stack, keys) and _idle(stack), timeout=TIMEOUT)
    rows = _rows(stack)
    stored = [rows[k] for k in keys if k in rows and rows[k].state in FINAL]
    last = max((r.updated_at for r in stored), default=time.time())
    per_job = [rows[k].updated_at - sent[k] for k in keys if k in rows and rows[k].state in FINAL]
    # The bookkeeping, from both sides: the engine's job table and the results store.
    engine_jobs = Counter(
        json.loads(job.params["Input"]).get("Object", "")
        for job in stack.engine.jobs.store.page("FpShot", limit=1_000_000)
    )
    results = Counter(job.object_key for job in stack.results_store().recent_jobs(1_000_000))
    return {
        "uploads": len(keys),
        "clip_seconds_each": seconds_each,
        "mps_qps": os.environ.get(ENV_MPS_QPS, ""),
        "upload_s": upload_s,
        "total_s": last - first,
        "jobs_per_minute": len(stored) / (last - first) * 60 if stored and last > first else 0.0,
        "job_latency_p50_s": percentile(per_job, 50),
        "job_latency_p95_s": percentile(per_job, 95),
        "completed": done,
        "stored": len(stored),
        "succeeded": sum(r.state == "Success" for r in stored),
        "engine_duplicates": sum(engine_jobs[k] > 1 for k in keys),
        "engine_missing": sum(engine_jobs[k] == 0 for k in keys),
        "result_duplicates": sum(results[k] > 1 for k in keys),
        "lost": sum(results[k] == 0 or k not in rows or rows[k].state not in FINAL for k in keys),
        "dead_letters": len(stack.state.dead_letters()),
        "parked": len(stack.results_store().parked_messages(1000)),
    }


# -- the section --------------------------------------------------------------------------------------------

_LIBRARY_OTHER = VideoSpec(41, 20.0, 320, 240, fps=15.0, render_div=2)


def _clip(profile: Profile) -> tuple[VideoSpec, float]:
    size = next(v for v in profile.videos if v.label == profile.pipeline_video)
    return video_spec(size), size.seconds


def _library(profile: Profile) -> dict[str, VideoSpec]:
    clip, seconds = _clip(profile)
    # The clip's own pictures at library quality: the latency upload is screened as a copy of it.
    source = VideoSpec(clip.seed, seconds, 320, 240, fps=15.0, render_div=2)
    return {"library/source.mp4": source, "library/other.mp4": _LIBRARY_OTHER}


def _burst(profile: Profile) -> list[VideoSpec]:
    return [VideoSpec(5000 + i, profile.burst_seconds, 320, 240, fps=15.0, render_div=2) for i in range(profile.burst)]


def media_for(profile: Profile) -> list[Spec]:
    return [_clip(profile)[0], *_library(profile).values(), *_burst(profile)]


def run(profile: Profile, cache: MediaCache, workdir: Path, progress: Callable[[str], None] = print) -> dict[str, Any]:
    root = workdir / "stack"
    shutil.rmtree(root, ignore_errors=True)
    stack = LocalStack(
        StackSettings(
            StackPaths.under(root), retry=RetrySchedule(base=0.5, cap=5.0), mns_retry_scale=0.05, log_file=True
        )
    )
    logger = logging.getLogger("fpscreen")
    handlers, propagate = list(logger.handlers), logger.propagate
    started = time.perf_counter()
    try:
        stack.start()
        start_s = time.perf_counter() - started
        library = {key: cache.path(spec) for key, spec in _library(profile).items()}
        progress(f"  library: {len(library)} items …")
        for key, path in library.items():
            stack.upload(path, key)
        if not stack.wait(lambda: _final(stack, list(library)), timeout=TIMEOUT):
            raise TimeoutError("the library items were not stored in time")
        clip, seconds = _clip(profile)
        progress(f"  latency: {profile.pipeline_video} {seconds:g} s clip × {profile.pipeline_reps} …")
        lat = latency(stack, cache.path(clip), seconds, profile.pipeline_reps)
        clips = [cache.path(spec) for spec in _burst(profile)]
        progress(f"  burst of {profile.burst} uploads, as deployed ({ENV_MPS_QPS}={os.environ.get(ENV_MPS_QPS)}) …")
        deployed = burst(stack, clips, profile.burst_seconds, "uploads/burst/")
        progress(f"  burst of {profile.burst} uploads, MPS client limit lifted …")
        deployed_qps = os.environ.get(ENV_MPS_QPS)
        os.environ[ENV_MPS_QPS] = LIFTED_QPS  # read per invocation: the functions' next runtime has the new limit
        try:
            lifted = burst(stack, clips, profile.burst_seconds, "uploads/burst-lifted/")
        finally:
            if deployed_qps is None:
                os.environ.pop(ENV_MPS_QPS, None)
            else:
                os.environ[ENV_MPS_QPS] = deployed_qps
        return {
            "stack_start_s": start_s,
            "engine_workers": stack.engine_workers,
            "latency": lat,
            "burst": deployed,
            "burst_lifted": lifted,
        }
    finally:
        stack.stop()
        # The stack sent the process's fpscreen logs to its (now removed) directory: put them back.
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in logger.handlers:
                logger.addHandler(handler)
        logger.propagate = propagate
        shutil.rmtree(root, ignore_errors=True)
