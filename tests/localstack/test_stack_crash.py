"""SIGKILL the stack in the middle of a batch of uploads, start it again: every upload ends with exactly one
job and one stored result — none lost, none doubled."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from engine.localstack.stack import StackPaths, upload_file
from engine.service.app import LOCAL_ACCESS_KEY_ID, LOCAL_ACCESS_KEY_SECRET
from shared.contracts.mps import QueryFpShotJobListRequest
from shared.credentials import Credentials
from shared.mps import MpsClient
from shared.store.sqlite import SqliteStore

UP = [sys.executable, "-c", "from engine.cli import app; app()"]


def _start(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*UP, "--data-dir", str(data_dir), "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: SIGKILL takes every thread and child with it
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("stack up:"):
                return proc, line.split("engine ", 1)[1].split()[0]
            if not line and proc.poll() is not None:
                break
    proc.kill()
    raise AssertionError(f"stack did not come up: {proc.stdout.read() if proc.stdout else ''}")


def _final_jobs(store: SqliteStore) -> dict[str, list[str]]:
    """Upload key → its job states, for every job the store knows."""
    out: dict[str, list[str]] = {}
    for job in store.recent_jobs(1000):
        out.setdefault(job.object_key, []).append(job.state)
    return out


def _wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    # Another process does the work: there is no in-process event to wait on, so poll the shared database.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_sigkill_mid_batch_loses_and_doubles_nothing(tmp_path: Path, burst_media: list[Path]) -> None:
    data = tmp_path / "data"
    paths = StackPaths.under(data)
    keys = [f"uploads/burst-{i}.mp4" for i in range(len(burst_media))]

    first, _ = _start(data)
    try:
        for media, key in zip(burst_media, keys, strict=True):
            upload_file(paths, media, key)
        store = SqliteStore(paths.results)
        # let some of the batch through, then pull the plug mid-flight
        assert _wait_for(lambda: len(_final_jobs(store)) >= 2, timeout=90)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)

    second, engine_url = _start(data)
    try:
        store = SqliteStore(paths.results)

        def all_final() -> bool:
            jobs = _final_jobs(store)
            return all(k in jobs and all(s in ("Success", "Fail") for s in jobs[k]) for k in keys)

        assert _wait_for(all_final, timeout=180)
        jobs = _final_jobs(store)
        assert {k: len(jobs[k]) for k in keys} == dict.fromkeys(keys, 1)
        assert all(jobs[k] == ["Success"] for k in keys)

        # the engine (MPS) side: exactly one job per upload, whatever was retried or re-driven
        mps = MpsClient(Credentials(LOCAL_ACCESS_KEY_ID, LOCAL_ACCESS_KEY_SECRET), endpoint=engine_url)
        per_object: Counter[str] = Counter()
        token = None
        while True:
            page = mps.query_fp_shot_job_list(
                QueryFpShotJobListRequest(
                    state="All",
                    start_of_job_created_time_range="2000-01-01T00:00:00Z",
                    end_of_job_created_time_range="2100-01-01T00:00:00Z",
                    maximum_page_size=100,
                    next_page_token=token,
                )
            )
            per_object.update(job.input_file.object for job in page.jobs if job.input_file)
            token = page.next_page_token
            if not token or not page.jobs:
                break
        assert {k: per_object[k] for k in keys} == dict.fromkeys(keys, 1)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=30)
