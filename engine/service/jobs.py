"""The durable job table and the worker pool that runs it.

State machine (every job kind): `Queuing` → `Analysing` → `Success` | `Fail`, forward only.
- `JobStore.create` commits the row (SQLite, synchronous=FULL) before the action answers with the `JobId`.
- A worker *claims* the oldest `Queuing` job in one UPDATE (→ `Analysing`, `attempts + 1`), runs it outside any
  transaction, then `finish` moves it from `Analysing` to its final state — in the same transaction as the
  notification outbox row, so a finished job always has its notification owed.
- Recovery at start-up: nothing can be `Analysing` while no worker runs, so such rows were interrupted by a stop
  or a crash. They go back to `Queuing` (with the `Queuing` ones, they are simply picked again), unless they were
  already tried `max_attempts` times: then they fail with `InternalError` instead of crashing the service forever.

Tests and callers wait on `JobRunner.wait_for_job`, driven by a condition variable notified on every state change.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from engine.service import notify
from engine.service.db import ServiceClosed, ServiceDb, utc_text
from shared.vocabulary import ANALYSING, FINAL_STATES, QUEUING
from shared.vocabulary import FAIL as FAIL  # re-exported with SUCCESS: executors and actions read jobs.SUCCESS
from shared.vocabulary import SUCCESS as SUCCESS

log = logging.getLogger(__name__)

FP_SHOT, FILE_DELETE, DB_DELETE, IMPORT = "FpShot", "FpFileDelete", "FpDBDelete", "FpImport"
JOB_KINDS: frozenset[str] = frozenset({FP_SHOT, FILE_DELETE, DB_DELETE, IMPORT})
DEFAULT_MAX_ATTEMPTS = 3
_IDLE_POLL_SECONDS = 5.0  # safety net only: workers are woken by submissions

_COLUMNS = (
    "seq, id, kind, state, pipeline_id, user_data, params, result, code, message, attempts, "
    "created_at, started_at, finished_at, notified_at"
)


@dataclass(frozen=True, slots=True)
class EmulatedJob:
    """A job of the emulated MPS (any kind); not `shared.ports.JobRecord`, the FC functions' stored job row."""

    seq: int
    id: str
    kind: str
    state: str
    pipeline_id: str | None
    user_data: str | None
    params: dict[str, Any]
    result: dict[str, Any] | None
    code: str | None
    message: str | None
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    notified_at: str | None

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


def _record(row: tuple) -> EmulatedJob:
    return EmulatedJob(
        seq=int(row[0]),
        id=row[1],
        kind=row[2],
        state=row[3],
        pipeline_id=row[4],
        user_data=row[5],
        params=json.loads(row[6]),
        result=json.loads(row[7]) if row[7] else None,
        code=row[8],
        message=row[9],
        attempts=int(row[10]),
        created_at=row[11],
        started_at=row[12],
        finished_at=row[13],
        notified_at=row[14],
    )


@dataclass(frozen=True, slots=True)
class JobFinish:
    """How a run ended: the final state, what to report, and the notification owed (if any)."""

    state: str
    result: dict[str, Any] | None = None
    code: str | None = None
    message: str | None = None
    notification: notify.Notification | None = None


class JobHandler(Protocol):
    def run(self, job: EmulatedJob) -> JobFinish: ...

    def failed(self, job: EmulatedJob, code: str, message: str) -> JobFinish: ...


class JobStore:
    def __init__(self, db: ServiceDb) -> None:
        self._db = db

    def create(
        self, kind: str, params: dict[str, Any], *, pipeline_id: str | None = None, user_data: str | None = None
    ) -> EmulatedJob:
        if kind not in JOB_KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        job_id = uuid.uuid4().hex  # 32 lowercase hex, the shape of MPS job ids
        with self._db.write() as db:
            db.execute(
                "INSERT INTO jobs (id, kind, state, pipeline_id, user_data, params, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, kind, QUEUING, pipeline_id, user_data, json.dumps(params, ensure_ascii=False), utc_text()),
            )
        record = self.get(job_id)
        assert record is not None
        return record

    def get(self, job_id: str, kind: str | None = None) -> EmulatedJob | None:
        row = self._db.connection().execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        record = _record(row) if row else None
        return record if record is not None and (kind is None or record.kind == kind) else None

    def get_many(self, job_ids: Collection[str], kind: str) -> dict[str, EmulatedJob]:
        if not job_ids:
            return {}
        marks = ",".join("?" * len(job_ids))
        rows = self._db.connection().execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE kind = ? AND id IN ({marks})", (kind, *job_ids)
        )
        return {row[1]: _record(row) for row in rows}

    def page(
        self,
        kind: str,
        *,
        state: str | None = None,
        pipeline_id: str | None = None,
        created_from: str | None = None,
        created_to: str | None = None,
        from_seq: int = 0,
        limit: int = 10,
    ) -> list[EmulatedJob]:
        """Jobs of `kind` matching the filters, oldest first, starting at `from_seq` (inclusive)."""
        where, args = ["kind = ?", "seq >= ?"], [kind, from_seq]
        for clause, value in (
            ("state = ?", state),
            ("pipeline_id = ?", pipeline_id),
            ("created_at >= ?", created_from),  # same fixed-width UTC format: text order is time order
            ("created_at <= ?", created_to),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        rows = self._db.connection().execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?", (*args, limit)
        )
        return [_record(row) for row in rows]

    def recent(self, kind: str, limit: int) -> list[EmulatedJob]:
        rows = self._db.connection().execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE kind = ? ORDER BY seq DESC LIMIT ?", (kind, limit)
        )
        return [_record(row) for row in rows]

    def claim_next(self) -> EmulatedJob | None:
        """Move the oldest `Queuing` job to `Analysing` and return it (None when there is none)."""
        with self._db.write() as db:  # IMMEDIATE: no other worker can claim the same row in between
            row = db.execute("SELECT seq FROM jobs WHERE state = ? ORDER BY seq LIMIT 1", (QUEUING,)).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = ?, started_at = ?, attempts = attempts + 1 WHERE seq = ?",
                (ANALYSING, utc_text(), row[0]),
            )
            claimed = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE seq = ?", (row[0],)).fetchone()
        return _record(claimed)

    def finish(self, job_id: str, outcome: JobFinish) -> EmulatedJob | None:
        """`Analysing` → final, with the outbox row in the same transaction. None if the job was not `Analysing`."""
        if outcome.state not in FINAL_STATES:
            raise ValueError(f"{outcome.state!r} is not a final state")
        with self._db.write() as db:
            changed = db.execute(
                "UPDATE jobs SET state = ?, result = ?, code = ?, message = ?, finished_at = ?"
                " WHERE id = ? AND state = ?",
                (
                    outcome.state,
                    json.dumps(outcome.result, ensure_ascii=False) if outcome.result is not None else None,
                    outcome.code,
                    outcome.message,
                    utc_text(),
                    job_id,
                    ANALYSING,
                ),
            ).rowcount
            if changed and outcome.notification is not None:
                notify.enqueue(db, job_id, outcome.notification)
        return self.get(job_id) if changed else None

    def interrupted(self) -> list[EmulatedJob]:
        rows = self._db.connection().execute(f"SELECT {_COLUMNS} FROM jobs WHERE state = ? ORDER BY seq", (ANALYSING,))
        return [_record(row) for row in rows]

    def requeue(self, job_id: str) -> bool:
        with self._db.write() as db:
            return bool(
                db.execute(
                    "UPDATE jobs SET state = ?, started_at = NULL WHERE id = ? AND state = ?",
                    (QUEUING, job_id, ANALYSING),
                ).rowcount
            )

    def count(self, state: str) -> int:
        return int(self._db.connection().execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0])

    def add_report(self, job_id: str, result: str, details: str | None) -> str | None:
        """Record a `ReportFpShotJobResult` if the job failed (the API takes feedback on failed jobs only).

        Returns the job's state (the report was stored only if it is `Fail`), or None if no fingerprint job has
        that id."""
        with self._db.write() as db:
            row = db.execute("SELECT state FROM jobs WHERE id = ? AND kind = ?", (job_id, FP_SHOT)).fetchone()
            if row is None:
                return None
            if row[0] == FAIL:
                db.execute(
                    "INSERT INTO reports (job_id, result, details, reported_at) VALUES (?, ?, ?, ?)",
                    (job_id, result, details, utc_text()),
                )
            return str(row[0])

    def reports(self, job_id: str) -> list[tuple[str, str | None, str]]:
        rows = self._db.connection().execute(
            "SELECT result, details, reported_at FROM reports WHERE job_id = ? ORDER BY seq", (job_id,)
        )
        return [(row[0], row[1], row[2]) for row in rows]


class JobRunner:
    """A pool of worker threads over a `JobStore`. `workers=0` accepts jobs without running them."""

    def __init__(
        self,
        store: JobStore,
        handler: JobHandler,
        *,
        workers: int = 2,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        on_finished: Callable[[EmulatedJob], None] | None = None,
    ) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self.store = store
        self._handler = handler
        self._workers = workers
        self._max_attempts = max_attempts
        self._on_finished = on_finished
        self._cond = threading.Condition()
        self._dirty = False
        self._stopping = False
        self._abandoned = False  # set when stop() gave up waiting: late results are not written
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.recover()
        self._stopping = self._abandoned = False
        for index in range(self._workers):
            thread = threading.Thread(target=self._loop, name=f"mps-worker-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def recover(self) -> tuple[int, int]:
        """Re-queue jobs a stop or crash caught mid-analysis; fail those already tried `max_attempts` times."""
        requeued = failed = 0
        for job in self.store.interrupted():
            if job.attempts >= self._max_attempts:
                message = f"The job was interrupted {job.attempts} times while being analysed; giving up."
                self._finish(job, self._handler.failed(job, "InternalError", message))
                failed += 1
            elif self.store.requeue(job.id):
                requeued += 1
        if requeued or failed:
            log.info("recovered interrupted jobs: %d re-queued, %d failed", requeued, failed)
        return requeued, failed

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop taking jobs and wait for running ones; True if all workers ended within `timeout`."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t for t in self._threads if t.is_alive()]
        with self._cond:
            if alive:
                # Their jobs stay `Analysing` in the table and are re-run by the next start.
                self._abandoned = True
                log.warning("%d worker(s) still busy at stop; their jobs will be re-run after a restart", len(alive))
        self._threads = []
        return not alive

    # ------------------------------------------------------------------------------------------ jobs

    def submit(
        self, kind: str, params: dict[str, Any], *, pipeline_id: str | None = None, user_data: str | None = None
    ) -> EmulatedJob:
        record = self.store.create(kind, params, pipeline_id=pipeline_id, user_data=user_data)
        with self._cond:
            self._dirty = True
            self._cond.notify_all()
        return record

    def wait_for_job(self, job_id: str, states: Collection[str] = FINAL_STATES, timeout: float = 30.0) -> EmulatedJob:
        """Block until the job is in one of `states`; raises `TimeoutError` (with the last state) or `KeyError`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                record = self.store.get(job_id)
                if record is None:
                    raise KeyError(job_id)
                if record.state in states:
                    return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"job {job_id} is still {record.state} after {timeout}s")
                self._cond.wait(remaining)

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
            try:
                job = self.store.claim_next()
            except (ServiceClosed, sqlite3.ProgrammingError):
                return
            except sqlite3.Error:
                log.exception("claiming a job failed")
                job = None
            if job is not None:
                self._changed()
                self._run(job)
                continue
            with self._cond:
                if not self._dirty and not self._stopping:
                    self._cond.wait(_IDLE_POLL_SECONDS)
                self._dirty = False

    def _run(self, job: EmulatedJob) -> None:
        try:
            outcome = self._handler.run(job)
        except Exception as exc:  # a bug or an unexpected library error: the job fails, the worker lives on
            log.exception("job %s (%s) crashed", job.id, job.kind)
            outcome = self._handler.failed(job, "InternalError", f"{type(exc).__name__}: {exc}")
        self._finish(job, outcome)

    def _finish(self, job: EmulatedJob, outcome: JobFinish) -> None:
        with self._cond:
            if self._abandoned:
                return  # the service stopped without us: leave the job Analysing, the next start re-runs it
            try:
                record = self.store.finish(job.id, outcome)
            except (ServiceClosed, sqlite3.ProgrammingError):
                return
            self._cond.notify_all()
        if record is not None and self._on_finished is not None:
            self._on_finished(record)
