"""SIGKILL the local stack at six different moments of an upload's life, one after another on the same data,
with fresh uploads each time, then let a clean run finish: every upload ends with exactly one MPS job, one
stored result and at most one report, nothing lost, and whatever was set aside says why."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.localstack.stack import StackPaths, upload_file
from engine.localstack.state import StackState
from engine.service.app import LOCAL_ACCESS_KEY_ID, LOCAL_ACCESS_KEY_SECRET
from engine.service.db import ServiceDb
from engine.service.jobs import JobStore
from shared.credentials import Credentials
from shared.mps import MpsClient
from shared.store.sqlite import SqliteStore
from tests.faults.checks import all_final, assert_exactly_once, failed_settled
from tests.faults.stack_child import KILL_POINTS

ROOT = Path(__file__).resolve().parents[2]


def _start(data_dir: Path, kill_at: str | None) -> tuple[subprocess.Popen[str], str]:
    """Start the child; its engine URL once it is up, or "" if it was killed while starting (the engine
    publishes notifications left by the previous run before the stack is up: a kill point can fire there)."""
    args = [sys.executable, "-m", "tests.faults.stack_child", str(data_dir), *([kill_at] if kill_at else [])]
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("stack up:"):
                return proc, line.split("engine ", 1)[1].split()[0]
            if not line and proc.poll() is not None:
                if kill_at and proc.returncode == -signal.SIGKILL:
                    return proc, ""
                break
    proc.kill()
    raise AssertionError(f"stack did not come up: {proc.stdout.read()}")


def _wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    # The work happens in another process: there is no in-process event to wait on, so poll its database.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_sigkill_at_six_moments_loses_and_doubles_nothing(
    tmp_path: Path, clips: list[Path], corrupt: Path
) -> None:
    data = tmp_path / "data"
    paths = StackPaths.under(data)
    data.mkdir(parents=True)
    keys: list[str] = []
    for n, point in enumerate(KILL_POINTS):
        # Fresh work for every run, so each moment is reached: a good clip and a broken file (a failed job).
        for source, key in ((clips[n % len(clips)], f"uploads/run{n}-clip.mp4"), (corrupt, f"uploads/run{n}-bad.mp4")):
            upload_file(paths, source, key)
            keys.append(key)
        marker = data / "killed-at"
        marker.unlink(missing_ok=True)
        proc, _ = _start(data, point)
        try:
            assert proc.wait(timeout=90) == -signal.SIGKILL, f"the stack was not killed at {point}"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        assert marker.read_text() == point

    final, engine_url = _start(data, None)
    try:
        store = SqliteStore(paths.results)
        assert _wait_for(lambda: all_final(store, keys) and failed_settled(store), timeout=120), [
            (j.object_key, j.state) for j in store.recent_jobs(100)
        ]
        mps = MpsClient(Credentials(LOCAL_ACCESS_KEY_ID, LOCAL_ACCESS_KEY_SECRET), endpoint=engine_url)
        engine_db = ServiceDb(paths.engine / "service.db")
        state = StackState(paths.state)
        try:
            reports = JobStore(engine_db)
            found = assert_exactly_once(
                store, mps, keys, lambda job_id: len(reports.reports(job_id)), state.dead_letters()
            )
        finally:
            state.close()
            engine_db.close()
        # The kill after a report answered leaves one report whose outcome the reporter could not record:
        # it is closed (not resent) and explained.
        assert all(p.kind != "dead letter" for p in found), found
    finally:
        os.killpg(final.pid, signal.SIGTERM)
        final.wait(timeout=30)
