"""`python -m tests.faults.stack_child DATA_DIR [KILL_POINT]`: the local stack, as `fpscreen up` runs it, that
SIGKILLs itself the first time it reaches KILL_POINT (after writing the point's name to DATA_DIR/killed-at).

Kill points wrap the real code paths (nothing in the product knows about them):
  before-submit       an invocation holds the claim and is about to call SubmitFpShotJob
  after-submit        SubmitFpShotJob answered: the job exists at MPS, nothing is recorded yet
  before-complete     the Queuing row is saved, the claim is not yet marked complete
  before-store-result store_results is about to write a finished job's matches and row
  before-publish      the engine (MPS) is about to publish a job's notification to MNS
  after-report        ReportFpShotJobResult answered, the outbox row is not yet marked reported
It also fires the timer every half second besides the template's schedule, so timer runs overlap.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.localstack.fc_runtime import RetrySchedule
from engine.localstack.stack import LocalStack, StackPaths, StackSettings

KILL_POINTS = (
    "before-submit",
    "after-submit",
    "before-complete",
    "before-store-result",
    "before-publish",
    "after-report",
)


_dying = threading.Lock()


def _die(data_dir: Path, point: str) -> None:
    # Two threads can reach the point at once: the first writes the marker and kills; the others wait for it.
    _dying.acquire()
    marker = data_dir / "killed-at"
    marker.write_text(point)
    with marker.open("rb") as f:
        os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


Hook = Callable[[], None]


def _wrap(owner: Any, name: str, *, before: Hook | None = None, after: Hook | None = None) -> None:
    real = getattr(owner, name)

    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if before is not None:
            before()
        result = real(*args, **kwargs)
        if after is not None:
            after()
        return result

    setattr(owner, name, wrapper)


def arm(point: str, data_dir: Path) -> None:
    from engine.service.notify import MnsPublisher
    from shared.mps.client import _BaseMpsClient
    from shared.store.sqlite import SqliteStore

    def die() -> None:
        _die(data_dir, point)

    targets: dict[str, tuple[Any, str, str]] = {
        "before-submit": (_BaseMpsClient, "submit_fp_shot_job", "before"),
        "after-submit": (_BaseMpsClient, "submit_fp_shot_job", "after"),
        "before-complete": (SqliteStore, "complete_object", "before"),
        "before-store-result": (SqliteStore, "replace_matches", "before"),
        "before-publish": (MnsPublisher, "__call__", "before"),
        "after-report": (_BaseMpsClient, "report_fp_shot_job_result", "after"),
    }
    owner, name, when = targets[point]
    _wrap(owner, name, **{when: die})


def main() -> None:
    data_dir = Path(sys.argv[1])
    if len(sys.argv) > 2:
        arm(sys.argv[2], data_dir)
    settings = StackSettings(
        StackPaths.under(data_dir),
        retry=RetrySchedule(base=0.1, cap=0.5),
        mns_retry_scale=0.01,
        claim_lease_seconds=2.0,  # a killed invocation's claim is taken over 2 s after the restart
        log_file=True,  # JSON logs to DATA_DIR/stack.log: stdout is a pipe nobody drains after start-up
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalStack(settings) as stack:
        os.environ["FPSCREEN_STUCK_AFTER_SECONDS"] = "1"  # sweep lost notifications at once
        print(f"stack up: engine {stack.engine.url}", flush=True)
        while not stop.wait(0.5):
            stack.tick_timers()


if __name__ == "__main__":
    main()
