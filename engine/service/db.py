"""The service's own SQLite database (`<data_dir>/service.db`): jobs, reports, pipelines and the notification outbox.

Kept apart from the library database (`fpscreen.db`, owned by `engine.library`) so neither schema constrains the
other. One connection per thread; `synchronous=FULL` because a submission must be on disk before its `JobId` is
returned (WAL + NORMAL would survive a process crash but not a power cut).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

SERVICE_DB_FILE = "service.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order: paging and the worker's FIFO
    id           TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,                      -- FpShot | FpFileDelete | FpDBDelete | FpImport
    state        TEXT NOT NULL,                      -- Queuing | Analysing | Success | Fail
    pipeline_id  TEXT,
    user_data    TEXT,
    params       TEXT NOT NULL,                      -- JSON: the validated request, as the job needs it
    result       TEXT,                               -- JSON: what the finished job reports
    code         TEXT,
    message      TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,         -- times a worker picked it (restarts re-run it)
    created_at   TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT,
    notified_at  TEXT                                -- set only once the MNS publish succeeded
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_by_kind ON jobs (kind, seq);
CREATE TABLE IF NOT EXISTS reports (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      TEXT NOT NULL,
    result      TEXT NOT NULL,
    details     TEXT,
    reported_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pipelines (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    state         TEXT NOT NULL,
    speed         TEXT NOT NULL,
    speed_level   INTEGER,
    role          TEXT,
    notify_config TEXT,                              -- JSON {"Topic"|"QueueName"|"MqTopic"|"MqTag": ...}
    created_at    TEXT NOT NULL
);
-- The outbox: one row per notification owed; a row is written in the same transaction that finishes its job.
CREATE TABLE IF NOT EXISTS outbox (
    job_id          TEXT PRIMARY KEY,
    target_kind     TEXT NOT NULL,                   -- topic | queue
    target_name     TEXT NOT NULL,
    body            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,         -- epoch seconds
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sent_at, next_attempt_at);
"""


def utc_text(epoch: float | None = None) -> str:
    """MPS time format: `2017-01-10T12:00:00Z` (UTC, seconds)."""
    moment = datetime.now(UTC) if epoch is None else datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ServiceClosed(RuntimeError):
    """The database was closed: the service is stopping, nothing more is written."""


class ServiceDb:
    """Per-thread SQLite connections to `service.db`, with explicit read and write transactions."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._guard = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        self.connection().executescript(_SCHEMA)

    def connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            with self._guard:
                if self._closed:
                    raise ServiceClosed(f"{self.path} is closed")
                db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                self._connections.append(db)
            self._local.db = db
        elif self._closed:
            raise ServiceClosed(f"{self.path} is closed")
        return db

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """IMMEDIATE: the write lock is taken up front, so read-then-write inside cannot race another writer."""
        db = self.connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        db = self.connection()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._guard:
            self._closed = True
            connections, self._connections = self._connections, []
        for db in connections:
            with contextlib.suppress(sqlite3.ProgrammingError):  # in use by a thread right now
                db.close()
