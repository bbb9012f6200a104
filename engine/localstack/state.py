"""The local stack's durable state (one SQLite file): which object versions have been announced, and the queue
of asynchronous function invocations (FC's async invoke: at-least-once, retried, dead-lettered).

Announcing an object and queueing its invocations happen in one transaction, so a SIGKILL at any moment
leaves either both or neither: on restart nothing is lost and nothing is announced twice.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from engine.localstack.bucket import StoredObject
from shared.sqlite import SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS announced (
    bucket TEXT NOT NULL, key TEXT NOT NULL, etag TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE TABLE IF NOT EXISTS invocations (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    payload BLOB NOT NULL,
    status TEXT NOT NULL,            -- pending | running | done | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    next_at REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    expires_at REAL NOT NULL,        -- MaxAsyncEventAgeInSeconds
    created_at REAL NOT NULL,
    finished_at REAL,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS invocations_ready ON invocations (status, next_at);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class QueuedInvocation:
    """An async invocation waiting in the local FC's queue; the handler's own view is `shared.runtime.Invocation`."""

    id: str
    function: str
    payload: bytes
    attempts: int  # attempts already made before this one
    max_attempts: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class Enqueue:
    function: str
    payload: bytes
    max_attempts: int = 4  # 1 + FC's default MaxAsyncRetryAttempts (3)
    max_age: float = 86400.0  # FC's default MaxAsyncEventAgeInSeconds


class StackState:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._clock = time.time
        self._db = SqliteDatabase(self.path)
        self._db.connection().executescript(_SCHEMA)  # executescript manages its own transaction

    # ------------------------------------------------------------------------------ settings

    def get_setting(self, name: str) -> str | None:
        row = self._db.connection().execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_setting(self, name: str, value: str) -> None:
        with self._db.write() as db:
            db.execute("INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)", (name, value))

    # ------------------------------------------------------------------------------- objects

    def known_objects(self, bucket: str) -> dict[str, tuple[int, int]]:
        rows = self._db.connection().execute("SELECT key, size, mtime_ns FROM announced WHERE bucket = ?", (bucket,))
        return {key: (size, mtime_ns) for key, size, mtime_ns in rows}

    def announce(self, obj: StoredObject, mtime_ns: int, invocations: list[Enqueue]) -> bool:
        """Record `obj`'s version as announced and queue its invocations, atomically.

        False (and nothing queued) if this exact version was announced before."""
        now = self._clock()
        with self._db.write() as db:
            row = db.execute(
                "SELECT etag FROM announced WHERE bucket = ? AND key = ?", (obj.bucket, obj.key)
            ).fetchone()
            fresh = row is None or row[0] != obj.etag
            db.execute(
                "INSERT OR REPLACE INTO announced (bucket, key, etag, size, mtime_ns) VALUES (?, ?, ?, ?, ?)",
                (obj.bucket, obj.key, obj.etag, obj.size, mtime_ns),
            )
            if fresh:
                for item in invocations:
                    self._insert(db, item, now)
            return fresh

    # ----------------------------------------------------------------------------- invocations

    @staticmethod
    def _insert(db: sqlite3.Connection, item: Enqueue, now: float) -> str:
        invocation_id = uuid.uuid4().hex
        db.execute(
            "INSERT INTO invocations (id, function, payload, status, max_attempts, next_at, expires_at, created_at)"
            " VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
            (invocation_id, item.function, item.payload, item.max_attempts, now, now + item.max_age, now),
        )
        return invocation_id

    def enqueue(self, item: Enqueue) -> str:
        with self._db.write() as db:
            return self._insert(db, item, self._clock())

    def recover(self) -> int:
        """At start-up every `running` row belongs to a stack that died: make it runnable again."""
        with self._db.write() as db:
            return db.execute(
                "UPDATE invocations SET status = 'pending', lease_until = 0, next_at = ? WHERE status = 'running'",
                (self._clock(),),
            ).rowcount

    def claim_next(self, functions: list[str], *, lease_seconds: float) -> QueuedInvocation | None:
        now = self._clock()
        marks = ",".join("?" * len(functions))
        with self._db.write() as db:
            row = db.execute(
                f"SELECT id, function, payload, attempts, max_attempts, expires_at FROM invocations"
                f" WHERE status = 'pending' AND next_at <= ? AND function IN ({marks})"
                f" ORDER BY next_at LIMIT 1",
                (now, *functions),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE invocations SET status = 'running', lease_until = ? WHERE id = ?", (now + lease_seconds, row[0])
            )
        return QueuedInvocation(row[0], row[1], bytes(row[2]), row[3], row[4], row[5])

    def finish(self, invocation_id: str) -> None:
        with self._db.write() as db:
            db.execute(
                "UPDATE invocations SET status = 'done', attempts = attempts + 1, finished_at = ? WHERE id = ?",
                (self._clock(), invocation_id),
            )

    def retry_at(self, invocation_id: str, when: float, error: str, *, counts: bool = True) -> None:
        """Run again at `when`; `counts=False` for "not now" answers that are no failed attempt."""
        with self._db.write() as db:
            db.execute(
                "UPDATE invocations SET status = 'pending', next_at = ?, last_error = ?,"
                " attempts = attempts + ? WHERE id = ?",
                (when, error[:2000], 1 if counts else 0, invocation_id),
            )

    def bury(self, invocation_id: str, error: str) -> None:
        """Out of attempts or too old: dead-lettered (FC's OnFailure destination)."""
        with self._db.write() as db:
            db.execute(
                "UPDATE invocations SET status = 'dead', attempts = attempts + 1, last_error = ?, finished_at = ?"
                " WHERE id = ?",
                (error[:2000], self._clock(), invocation_id),
            )

    def counts(self) -> dict[str, int]:
        rows = self._db.connection().execute("SELECT status, COUNT(*) FROM invocations GROUP BY status")
        return dict(rows.fetchall())

    def dead_letters(self) -> list[tuple[str, str, str]]:
        rows = self._db.connection().execute(
            "SELECT id, function, last_error FROM invocations WHERE status = 'dead' ORDER BY finished_at"
        )
        return list(rows.fetchall())

    def close(self) -> None:
        self._db.close()
