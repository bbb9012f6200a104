"""Publishing `AliyunFpShotJobNotify` to MNS through the official `aliyun-mns-sdk`, reliably (an outbox).

A finished job of a pipeline with a `NotifyConfig` gets an `outbox` row in the same transaction that records its
final state (`jobs.JobStore.finish`), so a notification can never be lost between the two. The `Notifier` thread
publishes pending rows — topic: `Topic.publish_message(TopicMessage(body))`; queue:
`Queue.send_message(Message(body))`, base64-encoded by the SDK's default, which consumers decode defensively —
and marks the row sent and the job `notified_at` only after MNS accepted it. Transient failures are retried with
capped exponential backoff, forever (MNS may come back, a topic may be created later), and after a restart; a
failure no retry can cure (MNS refuses the message itself: `InvalidArgument`, too large) is permanent: the row
is given up on with its reason (`last_error`), and the function's sweep still fetches the result.

Body (flat, PascalCase, as `shared.contracts.notify` parses it), small as MPS's own:
`{"Type":"FpShot","JobId","State","UserData","Code","Message"}`. The result (matched items and slices, which for
texts hold the matched passages and can run past MNS's 64 KB) is never in it: the consumer fetches the job
with `QueryFpShotJobList`, which is authoritative anyway.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.service.db import ServiceClosed, ServiceDb, utc_text
from shared.credentials import Credentials
from shared.retry import Backoff as Backoff  # re-exported: engine.service.app and the tests use it from here

log = logging.getLogger(__name__)

NOTIFY_TYPE = "FpShot"
CONNECT_TIMEOUT_SECONDS = 5
MAX_MESSAGE_CHARS = 1000  # an error Message is informational: bounded so the body stays a few hundred bytes
# MNS error types that say the message itself is refused: the same body can never be accepted.
PERMANENT_ERRORS = frozenset({"InvalidArgument", "MessageTooLarge", "RequestEntityTooLarge", "MalformedXML"})


@dataclass(frozen=True, slots=True)
class Notification:
    target_kind: str  # "topic" | "queue"
    target_name: str
    body: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    job_id: str
    target_kind: str
    target_name: str
    body: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    sent_at: str | None


def fp_shot_notify_body(
    job_id: str,
    state: str,
    *,
    user_data: str | None = None,
    code: str | None = None,
    message: str | None = None,
) -> str:
    """The notification: which job, in which state; never the result (see the module docstring)."""
    body: dict[str, Any] = {"Type": NOTIFY_TYPE, "JobId": job_id, "State": state}
    if user_data:
        body["UserData"] = user_data
    if code:
        body["Code"] = code
    if message:
        body["Message"] = message[:MAX_MESSAGE_CHARS]
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def enqueue(db: sqlite3.Connection, job_id: str, notification: Notification) -> None:
    """Add the outbox row; call inside the transaction that finishes the job."""
    db.execute(
        "INSERT OR REPLACE INTO outbox (job_id, target_kind, target_name, body, created_at) VALUES (?, ?, ?, ?, ?)",
        (job_id, notification.target_kind, notification.target_name, notification.body, utc_text()),
    )


def _row(row: tuple) -> OutboxRow:
    return OutboxRow(row[0], row[1], row[2], row[3], int(row[4]), float(row[5]), row[6], row[7])


_ROW_COLUMNS = "job_id, target_kind, target_name, body, attempts, next_attempt_at, last_error, sent_at"


class Outbox:
    def __init__(self, db: ServiceDb) -> None:
        self._db = db

    def due(self, now: float, limit: int = 50) -> list[OutboxRow]:
        rows = self._db.connection().execute(
            f"SELECT {_ROW_COLUMNS} FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, created_at LIMIT ?",
            (now, limit),
        )
        return [_row(row) for row in rows]

    def next_due_at(self) -> float | None:
        row = self._db.connection().execute("SELECT MIN(next_attempt_at) FROM outbox WHERE sent_at IS NULL").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def get(self, job_id: str) -> OutboxRow | None:
        row = self._db.connection().execute(f"SELECT {_ROW_COLUMNS} FROM outbox WHERE job_id = ?", (job_id,)).fetchone()
        return _row(row) if row else None

    def pending_count(self) -> int:
        return int(self._db.connection().execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0])

    def mark_sent(self, job_id: str) -> None:
        now = utc_text()
        with self._db.write() as db:
            db.execute("UPDATE outbox SET sent_at = ?, last_error = NULL WHERE job_id = ?", (now, job_id))
            db.execute("UPDATE jobs SET notified_at = ? WHERE id = ?", (now, job_id))

    def give_up(self, job_id: str, error: str) -> None:
        """Stop trying a row MNS can never accept; `last_error` keeps why (the job stays un-notified)."""
        with self._db.write() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, sent_at = ? WHERE job_id = ?",
                (f"gave up: {error}"[:2000], utc_text(), job_id),
            )

    def mark_failed(self, job_id: str, error: str, next_attempt_at: float) -> None:
        with self._db.write() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE job_id = ?",
                (error[:2000], next_attempt_at, job_id),
            )


Publisher = Callable[[str, str, str], None]  # (target_kind, target_name, body); raises on failure


class MnsPublisher:
    """Publishes with the official SDK. One `Account` (one keep-alive connection), rebuilt after any failure."""

    def __init__(self, endpoint: str, credentials: Credentials) -> None:
        self.endpoint = endpoint
        self._credentials = credentials
        self._account: Any = None

    def __call__(self, target_kind: str, target_name: str, body: str) -> None:
        from mns.queue import Message
        from mns.topic import TopicMessage

        account = self._get_account()
        try:
            if target_kind == "topic":
                account.get_topic(target_name).publish_message(TopicMessage(body))
            elif target_kind == "queue":
                account.get_queue(target_name).send_message(Message(body))  # SDK default: base64 body
            else:
                raise ValueError(f"unknown notification target kind {target_kind!r}")
        except BaseException:
            self._account = None  # a broken keep-alive connection must not poison the next attempt
            raise

    def _get_account(self) -> Any:
        if self._account is None:
            from mns.account import Account

            creds = self._credentials
            account = Account(self.endpoint, creds.access_key_id, creds.access_key_secret, creds.security_token or "")
            account.mns_client.set_connection_timeout(CONNECT_TIMEOUT_SECONDS)
            self._account = account
        return self._account


def is_permanent(exc: BaseException) -> bool:
    """MNS refused the message itself (size, bad argument): retrying the same body cannot succeed."""
    return getattr(exc, "type", None) in PERMANENT_ERRORS


def describe_error(exc: BaseException) -> str:
    # MNSExceptionBase subclasses carry `type`/`message`; fall back to the class name and text.
    kind = getattr(exc, "type", None) or type(exc).__name__
    text = getattr(exc, "message", None) or str(exc)
    return f"{kind}: {text}"


class Notifier:
    """The outbox drainer: one background thread, woken when a row is added, sleeping until the next retry."""

    def __init__(
        self,
        outbox: Outbox,
        publisher: Publisher | None,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._backoff = backoff or Backoff(base=1.0, cap=60.0)
        self._clock = clock
        self._cond = threading.Condition()
        self._dirty = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._publisher is None:
            pending = self._outbox.pending_count()
            if pending:
                log.warning("%d notification(s) pending but no MNS endpoint is configured: kept for later", pending)
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="mps-notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        with self._cond:
            self._dirty = True
            self._cond.notify_all()

    def wait_for(self, job_id: str, timeout: float, *, failed_attempts: int | None = None) -> OutboxRow | None:
        """Block until the job's notification was published (or, with `failed_attempts`, until that many
        publishes failed); the row, or None on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                row = self._outbox.get(job_id)
                if row is not None and (
                    row.sent_at is not None or (failed_attempts is not None and row.attempts >= failed_attempts)
                ):
                    return row
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
            try:
                self._drain()
                next_at = self._outbox.next_due_at()
            except (ServiceClosed, sqlite3.ProgrammingError):
                return
            except Exception:  # the loop must survive anything; the rows stay pending
                log.exception("notification outbox drain failed")
                next_at = self._clock() + self._backoff.base
            with self._cond:
                if self._stopping:
                    return
                if not self._dirty:
                    # Sleep until the next retry is due (or 60 s as a safety net), unless woken by a new row.
                    wait = 60.0 if next_at is None else max(0.0, next_at - self._clock())
                    self._cond.wait(min(wait, 60.0))
                self._dirty = False

    def _drain(self) -> None:
        assert self._publisher is not None
        for row in self._outbox.due(self._clock()):
            with self._cond:
                if self._stopping:
                    return
            try:
                self._publisher(row.target_kind, row.target_name, row.body)
            except Exception as exc:
                if is_permanent(exc):
                    log.error(
                        "MNS refuses the notification of job %s for good: %s", row.job_id, describe_error(exc)
                    )
                    self._outbox.give_up(row.job_id, describe_error(exc))
                    with self._cond:
                        self._cond.notify_all()
                    continue
                delay = self._backoff.delay(row.attempts + 1)
                log.warning(
                    "publishing the notification of job %s to %s %s failed (attempt %d, next in %.1fs): %s",
                    row.job_id, row.target_kind, row.target_name, row.attempts + 1, delay, describe_error(exc),
                )  # fmt: skip
                self._outbox.mark_failed(row.job_id, describe_error(exc), self._clock() + delay)
                with self._cond:
                    self._cond.notify_all()
                continue
            self._outbox.mark_sent(row.job_id)
            with self._cond:
                self._cond.notify_all()  # wake wait_for()
