"""Faults injected into a running local stack (in-process, loopback only): MPS answers lost after it accepted
(read timeouts, 503s), the results store locked right after a submit, timers firing concurrently, and
notifications duplicated, reordered and lost. Every upload still ends with exactly one job, one result and at
most one report, and whatever was set aside says why."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.localstack.fc_runtime import RetrySchedule
from engine.localstack.stack import LocalStack, StackPaths, StackSettings
from shared.mps import MpsClient
from shared.ports import JobRecord
from shared.store.sqlite import SqliteStore
from tests.faults.checks import all_final, assert_exactly_once, failed_settled
from tests.faults.proxy import FaultProxy


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[LocalStack, FaultProxy]]:
    settings = StackSettings(
        StackPaths.under(tmp_path / "data"),
        retry=RetrySchedule(base=0.1, cap=0.5),
        mns_retry_scale=0.01,
        claim_lease_seconds=2.0,
    )
    with LocalStack(settings) as running:
        proxy = FaultProxy(running.engine.url).start()
        saved = {name: os.environ.get(name) for name in ("MPS_ENDPOINT", "FPSCREEN_STUCK_AFTER_SECONDS")}
        # The functions read their settings per invocation: from now on they reach MPS through the proxy, and a
        # job whose notification never came is swept after 1 s instead of 15 minutes.
        os.environ["MPS_ENDPOINT"] = proxy.url
        os.environ["FPSCREEN_STUCK_AFTER_SECONDS"] = "1"
        try:
            yield running, proxy
        finally:
            proxy.stop()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _engine_mps(stack: LocalStack) -> MpsClient:
    return MpsClient(stack.credentials, endpoint=stack.engine.url)


def _reports(stack: LocalStack) -> Any:
    return lambda job_id: len(stack.engine.jobs.store.reports(job_id))


def _until(stack: LocalStack, done: Callable[[], bool], *, timeout: float) -> bool:
    """Fire the timers (sweep and report) until `done()`, waking whenever an invocation finishes."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        stack.tick_timers()
        stack.wait(done, timeout=0.5)
    return True


def _settle(stack: LocalStack, keys: list[str], *, timeout: float = 90) -> None:
    """Let the pipeline finish: results final (sweeping what no notification brought), every failed job settled."""
    store = stack.results_store()
    assert _until(stack, lambda: all_final(store, keys) and failed_settled(store), timeout=timeout), [
        (j.object_key, j.state) for j in store.recent_jobs(50)
    ]


def test_lost_submit_answers_and_a_locked_store_give_one_job_each(
    stack: tuple[LocalStack, FaultProxy], clips: list[Path], corrupt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running, proxy = stack
    # Three submits reach the engine and lose their answers: two as read timeouts, one as a 503.
    proxy.lose_answers("SubmitFpShotJob", "drop", "503", "drop")
    # The results store is write-locked once, right after a submit succeeded (saving the Queuing row).
    real_save = SqliteStore.save_job
    locked = threading.Event()

    def save_job(self: SqliteStore, job: JobRecord) -> bool:
        if job.state == "Queuing" and not locked.is_set():
            locked.set()
            raise sqlite3.OperationalError("database is locked")
        return real_save(self, job)

    monkeypatch.setattr(SqliteStore, "save_job", save_job)
    keys = [f"uploads/lost-{i}.mp4" for i in range(4)] + ["uploads/broken.mp4"]
    for clip, key in zip(clips, keys[:4], strict=False):
        running.upload(clip, key)
    running.upload(corrupt, "uploads/broken.mp4")
    _settle(running, keys)
    assert proxy.injected["SubmitFpShotJob"] == 3 and locked.is_set()
    found = assert_exactly_once(
        running.results_store(), _engine_mps(running), keys, _reports(running), running.state.dead_letters()
    )
    assert not [p for p in found if p.kind == "dead letter"]


def test_concurrent_timers_report_each_failed_job_once(
    stack: tuple[LocalStack, FaultProxy], clips: list[Path], corrupt: Path
) -> None:
    running, _ = stack
    keys = [f"uploads/bad-{i}.mp4" for i in range(4)] + ["uploads/good.mp4"]
    for key in keys[:4]:
        running.upload(corrupt, key)  # same bytes, four uploads: four failed jobs
    running.upload(clips[0], "uploads/good.mp4")
    store = running.results_store()
    assert running.wait(lambda: all_final(store, keys), timeout=90)
    barrier = threading.Barrier(4)

    def tick() -> None:
        barrier.wait()
        running.tick_timers()

    for _ in range(3):  # three rounds of four timer runs at once
        threads = [threading.Thread(target=tick) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    failed = [j.job_id for j in store.recent_jobs(100) if j.state == "Fail"]
    assert len(failed) == 4 and all(len(running.engine.jobs.store.reports(j)) == 1 for j in failed)
    assert_exactly_once(store, _engine_mps(running), keys, _reports(running), running.state.dead_letters())


def test_duplicated_reordered_and_lost_notifications(
    stack: tuple[LocalStack, FaultProxy], clips: list[Path], corrupt: Path
) -> None:
    running, _ = stack
    notifier = running.engine._notifier  # the engine's MNS outbox drainer
    real_publish = notifier._publisher
    lost: list[str] = []

    def lossy(kind: str, name: str, body: str) -> None:
        job_id = json.loads(body)["JobId"]
        if not lost:  # the first notification vanishes in transit: MNS accepted it, nobody ever got it
            lost.append(job_id)
            return
        real_publish(kind, name, body)
        # ... and every other one is delivered twice, the second time after a stale "Analysing" one.
        stale = json.dumps({"Type": "FpShot", "JobId": job_id, "State": "Analysing"})
        running.fc.invoke("store_results", stale.encode())
        running.fc.invoke("store_results", body.encode())

    notifier._publisher = lossy
    keys = [f"uploads/note-{i}.mp4" for i in range(3)] + ["uploads/broken.mp4"]
    for clip, key in zip(clips, keys[:3], strict=False):
        running.upload(clip, key)
    running.upload(corrupt, "uploads/broken.mp4")
    store = running.results_store()
    # A notification for a job that is not final yet (reordered ahead of the work) stores nothing final.
    assert running.wait(lambda: len(store.recent_jobs(10)) >= 1, timeout=60)
    early = store.recent_jobs(10)[-1]
    early_note = json.dumps({"JobId": early.job_id, "State": "Success"}).encode()
    out = json.loads(running.fc.invoke("store_results", early_note))
    assert out["status"] in {"pending", "unchanged", "stored"}
    # The lost one is found by the timer's sweep of jobs stuck in Queuing/Analysing.
    _settle(running, keys)
    assert lost and store.get_job(lost[0]).state in ("Success", "Fail")  # type: ignore[union-attr]
    for job in store.recent_jobs(10):
        assert len(store.matches_for_job(job.job_id)) == job.match_count or job.match_count == 0
    found = assert_exactly_once(store, _engine_mps(running), keys, _reports(running), running.state.dead_letters())
    assert not found, found
