"""The service's own SQLite database (`<data_dir>/service.db`): jobs, reports, pipelines and the notification outbox.

Kept apart from the library database (`fpscreen.db`, owned by `engine.library`) so neither schema constrains the
other. One connection per thread; `synchronous=FULL` because a submission must be on disk before its `JobId` is
returned (WAL + NORMAL would survive a process crash but not a power cut).
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

from shared.sqlite import SqliteDatabase

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
-- Signature nonces seen, each until its request would be refused as stale anyway (engine.service.nonces).
CREATE TABLE IF NOT EXISTS nonces (
    key        TEXT PRIMARY KEY,                     -- AccessKeyId + newline + SignatureNonce
    expires_at REAL NOT NULL                         -- epoch seconds
);
CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces (expires_at);
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
        # FULL, not NORMAL: a submission must survive a power cut once its JobId is returned.
        self._database = SqliteDatabase(
            self.path, synchronous="FULL", closed_error=lambda: ServiceClosed(f"{self.path} is closed")
        )
        self.connection().executescript(_SCHEMA)

    def connection(self) -> sqlite3.Connection:
        return self._database.connection()

    def write(self) -> AbstractContextManager[sqlite3.Connection]:
        """IMMEDIATE: the write lock is taken up front, so read-then-write inside cannot race another writer."""
        return self._database.write()

    def read(self) -> AbstractContextManager[sqlite3.Connection]:
        """One consistent snapshot across several SELECTs."""
        return self._database.read()

    @property
    def closed(self) -> bool:
        return self._database.closed

    def close(self) -> None:
        self._database.close()
