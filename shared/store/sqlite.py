"""The results store on an embedded SQLite file (local runs, the engine, tests).

Concurrency: one connection per thread (and per process), WAL so readers never block the writer, a busy
timeout so a writer waits for the lock instead of failing, and every conditional write is one SQL statement
(`... WHERE <condition>`, upserts with `DO UPDATE ... WHERE`) or runs inside `BEGIN IMMEDIATE`, which takes the
write lock up front so a read-modify-write can't interleave with another process's.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any

from shared.ports import (
    ClaimOutcome,
    ClaimResult,
    FailedJob,
    JobRecord,
    MatchRow,
    ObjectClaim,
    ParkedMessage,
    VerdictRecord,
)
from shared.sqlite import MEMORY as MEMORY  # re-exported: SqliteStore(MEMORY)
from shared.sqlite import SqliteDatabase
from shared.store import schema
from shared.store.schema import COMPLETED, IN_PROGRESS, MAYBE_SUBMITTED, TableSpec
from shared.vocabulary import JobState, overwrite_rule

_SQL_TYPES = {"str": "TEXT", "int": "INTEGER", "float": "REAL", "json": "TEXT"}
# Secondary indexes for the scans the protocol offers (stuck jobs, recent jobs, pending outbox, parked list).
_INDEXES = (
    'CREATE INDEX IF NOT EXISTS "fp_jobs_state_updated" ON "fp_jobs" ("state", "updated_at")',
    'CREATE INDEX IF NOT EXISTS "fp_jobs_submitted" ON "fp_jobs" ("submitted_at")',
    'CREATE INDEX IF NOT EXISTS "fp_failed_jobs_pending" ON "fp_failed_jobs" ("reported", "failed_at")',
    'CREATE INDEX IF NOT EXISTS "fp_parked_messages_parked" ON "fp_parked_messages" ("parked_at")',
    'CREATE INDEX IF NOT EXISTS "fp_verdicts_submitted" ON "fp_verdicts" ("submitted_at")',
    'CREATE INDEX IF NOT EXISTS "fp_jobs_item" ON "fp_jobs" ("primary_key")',
    'CREATE INDEX IF NOT EXISTS "fp_verdicts_object" ON "fp_verdicts" ("object_key")',
)


def _q(name: str) -> str:
    return f'"{name}"'


def create_table_sql(spec: TableSpec) -> str:
    columns = schema.columns_of(spec)
    keys = set(spec.key_names)
    body = [f"{_q(n)} {_SQL_TYPES[kind]}{' NOT NULL' if n in keys else ''}" for n, kind in columns.items()]
    body.append(f"PRIMARY KEY ({', '.join(_q(n) for n in spec.key_names)})")
    return f"CREATE TABLE IF NOT EXISTS {_q(spec.name)} ({', '.join(body)}) WITHOUT ROWID"


def _insert_sql(spec: TableSpec, conflict: str = "") -> tuple[str, list[str]]:
    names = list(schema.columns_of(spec))
    sql = (
        f"INSERT INTO {_q(spec.name)} ({', '.join(_q(n) for n in names)}) "
        f"VALUES ({', '.join(':' + n for n in names)}) {conflict}"
    )
    return sql, names


class SqliteStore:
    """`ResultStore` on a SQLite file; `path=":memory:"` keeps one private in-memory database."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        # A file gets one connection per thread and lets SQLite's own locking arbitrate (between processes too);
        # an in-memory database lives in one connection, which threads share under a lock.
        self._db = SqliteDatabase(
            path,
            busy_timeout=busy_timeout,
            row_factory=sqlite3.Row,
            closed_error=lambda: RuntimeError(f"the store on {path} is closed"),
        )
        with self._db.write() as conn:
            for spec in schema.TABLES:
                conn.execute(create_table_sql(spec))
                # A file made by an older version lacks columns added since: add them (NULL = the default).
                have = {row[1] for row in conn.execute(f"PRAGMA table_info({_q(spec.name)})")}
                for name, kind in schema.columns_of(spec).items():
                    if name not in have:
                        conn.execute(f"ALTER TABLE {_q(spec.name)} ADD COLUMN {_q(name)} {_SQL_TYPES[kind]}")
            for sql in _INDEXES:
                conn.execute(sql)

    # ------------------------------------------------------------------------------ connections

    def _execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """One autocommitted statement; returns the number of rows it changed."""
        with self._db.autocommit() as conn:
            return conn.execute(sql, params).rowcount

    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._db.autocommit() as conn:
            return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- object claims

    def claim_object(self, claim: ObjectClaim, *, now: float) -> ClaimResult:
        lease = replace(claim, status=IN_PROGRESS, job_id=None)
        sql, names = _insert_sql(schema.OBJECTS)
        updates = ", ".join(f"{_q(n)} = excluded.{_q(n)}" for n in names if n != "key")
        # Insert, or take over an IN_PROGRESS lease that has expired; anything else leaves the row alone.
        upsert = (
            f'{sql} ON CONFLICT ("key") DO UPDATE SET {updates} '
            f'WHERE "status" IN (\'{IN_PROGRESS}\', \'{MAYBE_SUBMITTED}\') AND "expires_at" <= :now'
        )
        with self._db.write() as conn:  # the follow-up read sees exactly the state the upsert saw
            if conn.execute(upsert, {**schema.encode(lease), "now": now}).rowcount == 1:
                return ClaimResult(ClaimOutcome.ACQUIRED, lease)
            row = conn.execute('SELECT * FROM "fp_objects" WHERE "key" = ?', (claim.key,)).fetchone()
        existing = schema.decode(ObjectClaim, dict(row))
        outcome = ClaimOutcome.COMPLETED if existing.status == COMPLETED else ClaimOutcome.IN_PROGRESS
        return ClaimResult(outcome, existing)

    def complete_object(self, key: str, owner: str, job_id: str, *, now: float) -> bool:
        # Only the owner; completing twice with the same job id is an idempotent success.
        changed = self._execute(
            'UPDATE "fp_objects" SET "status" = ?, "job_id" = ?, "updated_at" = ? '
            'WHERE "key" = ? AND "owner" = ? AND ("status" = ? OR "job_id" = ?)',
            (COMPLETED, job_id, float(now), key, owner, IN_PROGRESS, job_id),
        )
        return changed == 1

    def release_object(self, key: str, owner: str) -> bool:
        changed = self._execute(
            'DELETE FROM "fp_objects" WHERE "key" = ? AND "owner" = ? AND "status" = ?',
            (key, owner, IN_PROGRESS),
        )
        return changed == 1

    def suspend_object(self, key: str, owner: str, *, now: float) -> bool:
        changed = self._execute(
            'UPDATE "fp_objects" SET "status" = ?, "expires_at" = ?, "updated_at" = ? '
            'WHERE "key" = ? AND "owner" = ? AND "status" = ?',
            (MAYBE_SUBMITTED, float(now), float(now), key, owner, IN_PROGRESS),
        )
        return changed == 1

    def get_object(self, key: str) -> ObjectClaim | None:
        rows = self._select('SELECT * FROM "fp_objects" WHERE "key" = ?', (key,))
        return schema.decode(ObjectClaim, dict(rows[0])) if rows else None

    # ------------------------------------------------------------------------------------- jobs

    def save_job(self, job: JobRecord) -> bool:
        rank, allow_equal = overwrite_rule(job.state)
        sql, names = _insert_sql(schema.JOBS)
        updates = ", ".join(f"{_q(n)} = excluded.{_q(n)}" for n in names if n != "job_id")
        op = "<=" if allow_equal else "<"
        upsert = f'{sql} ON CONFLICT ("job_id") DO UPDATE SET {updates} WHERE "state_rank" {op} {rank:d}'
        return self._execute(upsert, schema.encode(job)) == 1

    def get_job(self, job_id: str) -> JobRecord | None:
        rows = self._select('SELECT * FROM "fp_jobs" WHERE "job_id" = ?', (job_id,))
        return schema.decode(JobRecord, dict(rows[0])) if rows else None

    def jobs_in_states(self, states: Collection[JobState], *, updated_before: float, limit: int) -> list[JobRecord]:
        if not states or limit <= 0:
            return []
        marks = ", ".join("?" for _ in states)
        rows = self._select(
            f'SELECT * FROM "fp_jobs" WHERE "state" IN ({marks}) AND "updated_at" < ? '
            'ORDER BY "updated_at", "job_id" LIMIT ?',
            (*states, float(updated_before), limit),
        )
        return [schema.decode(JobRecord, dict(r)) for r in rows]

    def recent_jobs(self, limit: int = 100) -> list[JobRecord]:
        if limit <= 0:
            return []
        rows = self._select('SELECT * FROM "fp_jobs" ORDER BY "submitted_at" DESC, "job_id" DESC LIMIT ?', (limit,))
        return [schema.decode(JobRecord, dict(r)) for r in rows]

    def jobs_for_item(self, primary_key: str) -> list[JobRecord]:
        if not primary_key:
            return []  # no PrimaryKey names no item
        rows = self._select(
            'SELECT * FROM "fp_jobs" WHERE "primary_key" = ? ORDER BY "submitted_at" DESC, "job_id" DESC',
            (primary_key,),
        )
        return [schema.decode(JobRecord, dict(r)) for r in rows]

    # ---------------------------------------------------------------------------------- matches

    def replace_matches(self, job_id: str, rows: list[MatchRow]) -> None:
        schema.check_match_rows(job_id, rows)
        sql, _ = _insert_sql(schema.MATCHES)
        with self._db.write() as conn:  # readers see the old rows or the new ones, never a mix
            conn.execute('DELETE FROM "fp_matches" WHERE "job_id" = ?', (job_id,))
            conn.executemany(sql, [schema.encode(r) for r in rows])

    def matches_for_job(self, job_id: str) -> list[MatchRow]:
        rows = self._select('SELECT * FROM "fp_matches" WHERE "job_id" = ? ORDER BY "slice_id"', (job_id,))
        return [schema.decode(MatchRow, dict(r)) for r in rows]

    # --------------------------------------------------------------------------- failed outbox

    def add_failed(self, failed: FailedJob) -> bool:
        sql, _ = _insert_sql(schema.FAILED_JOBS, 'ON CONFLICT ("job_id") DO NOTHING')
        return self._execute(sql, schema.encode(failed)) == 1

    def pending_failed(self, limit: int, *, max_attempts: int | None = None) -> list[FailedJob]:
        if limit <= 0:
            return []
        below = "" if max_attempts is None else f'AND "attempts" < {int(max_attempts):d} '
        rows = self._select(
            f'SELECT * FROM "fp_failed_jobs" WHERE "reported" = 0 {below}ORDER BY "failed_at", "job_id" LIMIT ?',
            (limit,),
        )
        return [schema.decode(FailedJob, dict(r)) for r in rows]

    def claim_failed(self, job_id: str, owner: str, *, now: float, lease_seconds: float) -> bool:
        changed = self._execute(
            'UPDATE "fp_failed_jobs" SET "claim_owner" = ?, "claim_expires_at" = ? '
            'WHERE "job_id" = ? AND "reported" = 0 AND ("claim_expires_at" <= ? OR "claim_owner" = ?)',
            (owner, float(now + lease_seconds), job_id, float(now), owner),
        )
        return changed == 1

    def release_failed(self, job_id: str, owner: str) -> bool:
        changed = self._execute(
            'UPDATE "fp_failed_jobs" SET "claim_owner" = \'\', "claim_expires_at" = 0.0 '
            'WHERE "job_id" = ? AND "reported" = 0 AND "claim_owner" = ?',
            (job_id, owner),
        )
        return changed == 1

    def mark_failed_reported(self, job_id: str, *, now: float) -> bool:
        changed = self._execute(
            'UPDATE "fp_failed_jobs" SET "reported" = 1, "reported_at" = ? WHERE "job_id" = ? AND "reported" = 0',
            (float(now), job_id),
        )
        return changed == 1

    def record_failed_attempt(self, job_id: str, error: str) -> None:
        # A job that isn't in the outbox has nothing to count: a no-op, as on Tablestore.
        self._execute(
            'UPDATE "fp_failed_jobs" SET "attempts" = "attempts" + 1, "last_error" = ? WHERE "job_id" = ?',
            (error, job_id),
        )

    def get_failed(self, job_id: str) -> FailedJob | None:
        rows = self._select('SELECT * FROM "fp_failed_jobs" WHERE "job_id" = ?', (job_id,))
        return schema.decode(FailedJob, dict(rows[0])) if rows else None

    # -------------------------------------------------------------------------- parked messages

    def park_message(self, message: ParkedMessage) -> bool:
        sql, _ = _insert_sql(schema.PARKED_MESSAGES, 'ON CONFLICT ("message_id") DO NOTHING')
        return self._execute(sql, schema.encode(message)) == 1

    def parked_messages(self, limit: int = 100) -> list[ParkedMessage]:
        """Newest first."""
        if limit <= 0:
            return []
        rows = self._select(
            'SELECT * FROM "fp_parked_messages" ORDER BY "parked_at" DESC, "message_id" DESC LIMIT ?', (limit,)
        )
        return [schema.decode(ParkedMessage, dict(r)) for r in rows]

    # --------------------------------------------------------------------------------- verdicts

    def save_verdict(self, verdict: VerdictRecord) -> None:
        sql, _ = _insert_sql(schema.VERDICTS)
        self._execute(sql.replace("INSERT INTO", "INSERT OR REPLACE INTO", 1), schema.encode(verdict))

    def get_verdict(self, job_id: str) -> VerdictRecord | None:
        rows = self._select('SELECT * FROM "fp_verdicts" WHERE "job_id" = ?', (job_id,))
        return schema.decode(VerdictRecord, dict(rows[0])) if rows else None

    def recent_verdicts(self, limit: int = 100) -> list[VerdictRecord]:
        if limit <= 0:
            return []
        rows = self._select('SELECT * FROM "fp_verdicts" ORDER BY "submitted_at" DESC, "job_id" DESC LIMIT ?', (limit,))
        return [schema.decode(VerdictRecord, dict(r)) for r in rows]

    def verdicts_for_object(self, object_key: str) -> list[VerdictRecord]:
        if not object_key:
            return []
        rows = self._select(
            'SELECT * FROM "fp_verdicts" WHERE "object_key" = ? ORDER BY "submitted_at" DESC, "job_id" DESC',
            (object_key,),
        )
        return [schema.decode(VerdictRecord, dict(r)) for r in rows]
