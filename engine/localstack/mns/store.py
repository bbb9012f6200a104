"""Durable state of the local MNS endpoint: queues, messages, topics, subscriptions and pending pushes, in SQLite.

One connection in WAL mode, serialised by one re-entrant lock: every operation is a short transaction, and
long polls wait on a `Condition` bound to that lock (one per queue / per push target), so a receive returns
as soon as a send, a delayed message or an expired visibility timeout makes a message available.

Semantics follow MNS (reference §6, Part 2 §4; error codes from the MNS error-code table):
  * receive hides a message for the queue's VisibilityTimeout and hands out a fresh receipt handle; an earlier
    handle is then `ReceiptHandleError`, a handle past its NextVisibleTime (or of a deleted message)
    `MessageNotExist`. Undeleted messages come back: at-least-once.
  * a publish fans out inside its own transaction: into the endpoint queue directly when it can, otherwise into
    `deliveries`, from which the server's push threads deliver, retry and finally dead-letter.
The store knows no wire format: what a topic pushes into a queue is rendered by the `Render` the caller passes.
Times on the wire are epoch milliseconds (CreateTime/LastModifyTime: seconds), as MNS sends them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.sqlite import SqliteDatabase

QUEUE_DEFAULTS: dict[str, int] = {
    "VisibilityTimeout": 30,
    "DelaySeconds": 0,
    "MaximumMessageSize": 65536,
    "MessageRetentionPeriod": 345600,
    "PollingWaitSeconds": 0,
}
QUEUE_LIMITS: dict[str, tuple[int, int]] = {
    "VisibilityTimeout": (1, 43200),
    "DelaySeconds": (0, 604800),
    "MaximumMessageSize": (1024, 65536),
    "MessageRetentionPeriod": (60, 1296000),
    "PollingWaitSeconds": (0, 30),
}
TOPIC_DEFAULTS: dict[str, int] = {"MaximumMessageSize": 65536, "MessageRetentionPeriod": 86400}
TOPIC_LIMITS: dict[str, tuple[int, int]] = {"MaximumMessageSize": (1024, 65536)}
NOTIFY_STRATEGIES = ("BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY")
CONTENT_FORMATS = ("XML", "JSON", "SIMPLIFIED")
DEFAULT_PRIORITY = 8
MAX_BATCH = 16
MAX_TAG = 16

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_QUEUE_ENDPOINT = re.compile(r"acs:mns:[^:]*:[^:]*:/?queues/([A-Za-z][A-Za-z0-9-]*)")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY, VisibilityTimeout INTEGER NOT NULL, DelaySeconds INTEGER NOT NULL,
    MaximumMessageSize INTEGER NOT NULL, MessageRetentionPeriod INTEGER NOT NULL,
    PollingWaitSeconds INTEGER NOT NULL, logging_enabled INTEGER NOT NULL DEFAULT 0,
    create_time INTEGER NOT NULL, last_modify_time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, message_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL, body_md5 TEXT NOT NULL, priority INTEGER NOT NULL, enqueue_time INTEGER NOT NULL,
    first_dequeue_time INTEGER NOT NULL DEFAULT 0, dequeue_count INTEGER NOT NULL DEFAULT 0,
    visible_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, receipt_handle TEXT);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, visible_at);
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY, MaximumMessageSize INTEGER NOT NULL, MessageRetentionPeriod INTEGER NOT NULL,
    logging_enabled INTEGER NOT NULL DEFAULT 0, create_time INTEGER NOT NULL, last_modify_time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
    topic TEXT NOT NULL, name TEXT NOT NULL, endpoint TEXT NOT NULL, kind TEXT NOT NULL,
    notify_strategy TEXT NOT NULL, content_format TEXT NOT NULL, filter_tag TEXT NOT NULL,
    create_time INTEGER NOT NULL, last_modify_time INTEGER NOT NULL, PRIMARY KEY (topic, name));
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, subscription TEXT NOT NULL,
    message_id TEXT NOT NULL, body TEXT NOT NULL, message_tag TEXT NOT NULL, body_md5 TEXT NOT NULL,
    publish_time INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL,
    last_error TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (topic, subscription, next_attempt);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, subscription TEXT NOT NULL,
    message_id TEXT NOT NULL, body TEXT NOT NULL, message_tag TEXT NOT NULL, body_md5 TEXT NOT NULL,
    publish_time INTEGER NOT NULL, attempts INTEGER NOT NULL, last_error TEXT NOT NULL, dead_at INTEGER NOT NULL);
"""


class MnsError(Exception):
    """An MNS error response: `code` is what the SDK raises as `MNSServerException.type`."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class QueueInfo:
    name: str
    attributes: dict[str, int]  # QUEUE_DEFAULTS keys
    logging_enabled: bool
    create_time: int
    last_modify_time: int
    active: int = 0
    inactive: int = 0
    delayed: int = 0


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    attributes: dict[str, int]  # TOPIC_DEFAULTS keys
    logging_enabled: bool
    create_time: int
    last_modify_time: int
    message_count: int = 0


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    body: str
    delay_seconds: int | None = None
    priority: int | None = None


@dataclass(frozen=True, slots=True)
class QueueMessage:
    message_id: str
    body: str
    body_md5: str
    priority: int
    enqueue_time: int
    first_dequeue_time: int
    dequeue_count: int
    next_visible_time: int
    receipt_handle: str | None  # None for peeks


@dataclass(frozen=True, slots=True)
class Subscription:
    topic: str
    name: str
    endpoint: str
    kind: str  # "queue" (acs:mns:…:queues/q) or "local" (an in-process callback of the server)
    notify_strategy: str
    content_format: str
    filter_tag: str
    create_time: int
    last_modify_time: int

    @property
    def queue(self) -> str | None:
        match = _QUEUE_ENDPOINT.fullmatch(self.endpoint)
        return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One published message on its way to one subscription."""

    id: int
    topic: str
    subscription: str
    message_id: str
    body: str
    message_tag: str
    body_md5: str
    publish_time: int
    attempts: int = 0
    next_attempt: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    subscription: str
    message_id: str
    body: str
    message_tag: str
    body_md5: str
    publish_time: int
    attempts: int
    last_error: str
    dead_at: int


def now_ms() -> int:
    return int(time.time() * 1000)


def body_md5(body: str) -> str:
    """MessageBodyMD5 / MessageMD5: upper-case hex MD5 of the body exactly as sent (base64 text included)."""
    return hashlib.md5(body.encode("utf-8")).hexdigest().upper()


def check_name(name: str, kind: str) -> None:
    if not 1 <= len(name) <= 256:
        raise MnsError(
            "QueueNameLengthError" if kind == "queue" else "InvalidArgument",
            f"The length of the {kind} name should be between 1 and 256.",
        )
    if not _NAME.fullmatch(name):
        raise MnsError(
            "InvalidQueueName" if kind == "queue" else "InvalidArgument",
            f"The {kind} name you provided is invalid: {name!r}.",
        )


def check_range(field: str, value: int, limits: Mapping[str, tuple[int, int]]) -> None:
    low, high = limits[field]
    if not low <= value <= high:
        raise MnsError("InvalidArgument", f"The value of {field} should between {low} and {high}.")


Render = Callable[["Subscription", "Delivery"], str]  # the queue message body a push produces


def _new_message_id(now: int) -> str:
    return f"{secrets.token_hex(8).upper()}-1-{now:X}-{secrets.token_hex(4).upper()}"


def _parse_handle(handle: str) -> int:
    seq, sep, token = handle.partition("-")
    try:
        if sep and token:
            return int(seq, 16)
    except ValueError:
        pass
    raise MnsError("ReceiptHandleError", "The receipt handle you provide is not valid.")


class MnsStore:
    """Thread-safe; every public method is one transaction (receive: one per attempt while it long-polls)."""

    def __init__(self, path: str | Path) -> None:
        # One connection shared by all threads under the database's re-entrant lock, which the waiters' Conditions
        # use too. WAL + NORMAL: survives a process crash. 5 s: sqlite3's default busy timeout, as before.
        self._db = SqliteDatabase(
            path,
            busy_timeout=5.0,
            row_factory=sqlite3.Row,
            one_connection=True,
            closed_error=lambda: MnsError("ServiceUnavailable", "The local MNS server is shutting down.", 503),
        )
        self._lock = self._db.lock
        self._conds: dict[tuple[str, ...], threading.Condition] = {}
        self._closing = False
        self._db.connection().executescript(_SCHEMA)

    # -- lifecycle & signalling -------------------------------------------------------------------------------

    def begin_close(self) -> None:
        """Wake every waiter (long polls, push threads) so they return at once; later calls fail."""
        with self._lock:
            self._closing = True
            for cond in self._conds.values():
                cond.notify_all()

    def close(self) -> None:
        self.begin_close()
        self._db.close()

    @property
    def closing(self) -> bool:
        return self._closing

    def _cond(self, key: tuple[str, ...]) -> threading.Condition:
        cond = self._conds.get(key)
        if cond is None:
            cond = self._conds[key] = threading.Condition(self._lock)
        return cond

    def wake(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._cond(key).notify_all()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closing:
                raise MnsError("ServiceUnavailable", "The local MNS server is shutting down.", 503)
            with self._db.write() as db:
                yield db

    # -- queues ---------------------------------------------------------------------------------------------

    def _queue_row(self, db: sqlite3.Connection, name: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM queues WHERE name=?", (name,)).fetchone()
        if row is None:
            raise MnsError("QueueNotExist", "The queue name you provided is not exist.", 404)
        return row

    def create_queue(self, name: str, attributes: Mapping[str, int], logging_enabled: bool = False) -> bool:
        """True if created; False if it already existed with the same attributes (else QueueAlreadyExist)."""
        check_name(name, "queue")
        attrs = {**QUEUE_DEFAULTS, **attributes}
        for key, value in attrs.items():
            check_range(key, value, QUEUE_LIMITS)
        with self._tx() as db:
            row = db.execute("SELECT * FROM queues WHERE name=?", (name,)).fetchone()
            if row is not None:
                if any(row[key] != value for key, value in attrs.items()):
                    raise MnsError("QueueAlreadyExist", "The queue you want to create is already exist.", 409)
                return False
            now = int(time.time())
            db.execute(
                f"INSERT INTO queues (name, {', '.join(attrs)}, logging_enabled, create_time, last_modify_time) "
                f"VALUES (?, {', '.join('?' * len(attrs))}, ?, ?, ?)",
                (name, *attrs.values(), int(logging_enabled), now, now),
            )
            return True

    def set_queue_attributes(self, name: str, attributes: Mapping[str, int], logging_enabled: bool | None) -> None:
        for key, value in attributes.items():
            check_range(key, value, QUEUE_LIMITS)
        with self._tx() as db:
            self._queue_row(db, name)
            for key, value in attributes.items():  # keys come from QUEUE_LIMITS, never from the request
                db.execute(f"UPDATE queues SET {key}=? WHERE name=?", (value, name))
            if logging_enabled is not None:
                db.execute("UPDATE queues SET logging_enabled=? WHERE name=?", (int(logging_enabled), name))
            db.execute("UPDATE queues SET last_modify_time=? WHERE name=?", (int(time.time()), name))
            self._cond(("queue", name)).notify_all()  # a shorter PollingWait/visibility may matter to waiters

    def get_queue(self, name: str) -> QueueInfo:
        with self._tx() as db:
            return self._queue_info(db, self._queue_row(db, name))

    def _queue_info(self, db: sqlite3.Connection, row: sqlite3.Row) -> QueueInfo:
        now = now_ms()
        db.execute("DELETE FROM messages WHERE queue=? AND expires_at<=?", (row["name"], now))
        active, inactive, delayed = db.execute(
            "SELECT COALESCE(SUM(visible_at<=?1), 0), COALESCE(SUM(visible_at>?1 AND dequeue_count>0), 0), "
            "COALESCE(SUM(visible_at>?1 AND dequeue_count=0), 0) FROM messages WHERE queue=?2",
            (now, row["name"]),
        ).fetchone()
        return QueueInfo(
            name=row["name"],
            attributes={key: row[key] for key in QUEUE_DEFAULTS},
            logging_enabled=bool(row["logging_enabled"]),
            create_time=row["create_time"],
            last_modify_time=row["last_modify_time"],
            active=active,
            inactive=inactive,
            delayed=delayed,
        )

    def delete_queue(self, name: str) -> None:
        with self._tx() as db:
            self._queue_row(db, name)
            db.execute("DELETE FROM messages WHERE queue=?", (name,))
            db.execute("DELETE FROM queues WHERE name=?", (name,))
            self._cond(("queue", name)).notify_all()  # long polls on it answer QueueNotExist now

    def list_queues(self, prefix: str = "", marker: str = "", limit: int = 1000) -> tuple[list[QueueInfo], str]:
        with self._tx() as db:
            rows = self._page(db, "queues", prefix, marker, limit)
            infos = [self._queue_info(db, row) for row in rows[:limit]]
            return infos, rows[limit]["name"] if len(rows) > limit else ""

    @staticmethod
    def _page(db: sqlite3.Connection, table: str, prefix: str, marker: str, limit: int) -> list[sqlite3.Row]:
        # NextMarker is the first name of the next page: opaque to clients, inclusive here.
        return db.execute(
            f"SELECT * FROM {table} WHERE substr(name, 1, ?)=? AND name>=? ORDER BY name LIMIT ?",
            (len(prefix), prefix, marker, limit + 1),
        ).fetchall()

    # -- messages -------------------------------------------------------------------------------------------

    def _insert_message(self, db: sqlite3.Connection, queue: sqlite3.Row, msg: OutgoingMessage) -> tuple[str, str]:
        size = len(msg.body.encode("utf-8"))
        if not 1 <= size <= queue["MaximumMessageSize"]:
            raise MnsError(
                "InvalidArgument", f"The length of message should between 1 and {queue['MaximumMessageSize']} bytes."
            )
        delay = queue["DelaySeconds"] if msg.delay_seconds is None else msg.delay_seconds
        check_range("DelaySeconds", delay, QUEUE_LIMITS)
        priority = DEFAULT_PRIORITY if msg.priority is None else msg.priority
        if not 1 <= priority <= 16:
            raise MnsError("InvalidArgument", "The value of Priority should between 1 and 16.")
        now = now_ms()
        message_id, md5 = _new_message_id(now), body_md5(msg.body)
        db.execute(
            "INSERT INTO messages (queue, message_id, body, body_md5, priority, enqueue_time, visible_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                queue["name"],
                message_id,
                msg.body,
                md5,
                priority,
                now,
                now + delay * 1000,
                now + queue["MessageRetentionPeriod"] * 1000,
            ),
        )
        self._cond(("queue", queue["name"])).notify_all()
        return message_id, md5

    def send(self, queue: str, msg: OutgoingMessage) -> tuple[str, str]:
        """→ (MessageId, MessageBodyMD5)."""
        with self._tx() as db:
            return self._insert_message(db, self._queue_row(db, queue), msg)

    def send_batch(self, queue: str, msgs: Sequence[OutgoingMessage]) -> list[tuple[str, str] | MnsError]:
        """Per-entry results: valid entries are enqueued even when others fail (as MNS reports them one by one)."""
        if not 1 <= len(msgs) <= MAX_BATCH:
            raise MnsError("InvalidArgument", f"The count of message should between 1 and {MAX_BATCH}.")
        with self._tx() as db:
            row = self._queue_row(db, queue)
            results: list[tuple[str, str] | MnsError] = []
            for msg in msgs:
                try:
                    results.append(self._insert_message(db, row, msg))
                except MnsError as exc:
                    results.append(exc)
            return results

    def receive(self, queue: str, count: int = 1, wait_seconds: float | None = None) -> list[QueueMessage]:
        """Up to `count` visible messages, waiting up to `wait_seconds` (None: the queue's PollingWaitSeconds)."""
        with self._lock:
            deadline: float | None = None
            cond = self._cond(("queue", queue))
            while True:
                with self._tx() as db:
                    row = self._queue_row(db, queue)
                    got = self._take(db, row, count)
                    next_visible = db.execute(
                        "SELECT MIN(visible_at) FROM messages WHERE queue=?", (queue,)
                    ).fetchone()[0]
                if got:
                    return got
                if deadline is None:
                    wait = row["PollingWaitSeconds"] if wait_seconds is None else wait_seconds
                    deadline = time.monotonic() + wait
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closing:
                    return []
                if next_visible is not None:  # wake when a hidden or delayed message becomes visible
                    remaining = min(remaining, max(0.0, (next_visible - now_ms()) / 1000) + 0.001)
                cond.wait(remaining)

    def _take(self, db: sqlite3.Connection, queue: sqlite3.Row, count: int) -> list[QueueMessage]:
        now = now_ms()
        db.execute("DELETE FROM messages WHERE queue=? AND expires_at<=?", (queue["name"], now))
        rows = db.execute(
            "SELECT * FROM messages WHERE queue=? AND visible_at<=? ORDER BY priority, seq LIMIT ?",
            (queue["name"], now, count),
        ).fetchall()
        taken = []
        visible_at = now + queue["VisibilityTimeout"] * 1000
        for row in rows:
            handle = f"{row['seq']:x}-{secrets.token_hex(12)}"
            first = row["first_dequeue_time"] or now
            db.execute(
                "UPDATE messages SET dequeue_count=dequeue_count+1, first_dequeue_time=?, visible_at=?, "
                "receipt_handle=? WHERE seq=?",
                (first, visible_at, handle, row["seq"]),
            )
            taken.append(
                QueueMessage(
                    row["message_id"],
                    row["body"],
                    row["body_md5"],
                    row["priority"],
                    row["enqueue_time"],
                    first,
                    row["dequeue_count"] + 1,
                    visible_at,
                    handle,
                )
            )
        return taken

    def peek(self, queue: str, count: int = 1) -> list[QueueMessage]:
        """Visible messages without changing their state (no handle, no long poll), as PeekMessage."""
        with self._tx() as db:
            self._queue_row(db, queue)
            now = now_ms()
            db.execute("DELETE FROM messages WHERE queue=? AND expires_at<=?", (queue, now))
            rows = db.execute(
                "SELECT * FROM messages WHERE queue=? AND visible_at<=? ORDER BY priority, seq LIMIT ?",
                (queue, now, count),
            ).fetchall()
            return [
                QueueMessage(
                    r["message_id"],
                    r["body"],
                    r["body_md5"],
                    r["priority"],
                    r["enqueue_time"],
                    r["first_dequeue_time"],
                    r["dequeue_count"],
                    r["visible_at"],
                    None,
                )
                for r in rows
            ]

    def _held(self, db: sqlite3.Connection, queue: str, handle: str) -> sqlite3.Row:
        """The message `handle` currently holds, or the MNS error for a stale/expired/unknown handle."""
        row = db.execute("SELECT * FROM messages WHERE queue=? AND seq=?", (queue, _parse_handle(handle))).fetchone()
        if row is None:
            raise MnsError("MessageNotExist", "Message not exist.", 404)
        if row["receipt_handle"] != handle:  # re-received or visibility changed since: a newer handle exists
            raise MnsError("ReceiptHandleError", "The receipt handle you provide is not valid.")
        if row["visible_at"] <= now_ms():  # past NextVisibleTime the handle has expired (MNS DeleteMessage docs)
            raise MnsError("MessageNotExist", "Message not exist.", 404)
        return row

    def delete(self, queue: str, handle: str) -> None:
        with self._tx() as db:
            self._queue_row(db, queue)
            db.execute("DELETE FROM messages WHERE seq=?", (self._held(db, queue, handle)["seq"],))

    def delete_batch(self, queue: str, handles: Sequence[str]) -> list[tuple[str, MnsError]]:
        """Deletes what it can; returns the (handle, error) pairs of the rest."""
        if not 1 <= len(handles) <= MAX_BATCH:
            raise MnsError("InvalidArgument", f"The count of receipt handle should between 1 and {MAX_BATCH}.")
        with self._tx() as db:
            self._queue_row(db, queue)
            errors = []
            for handle in handles:
                try:
                    db.execute("DELETE FROM messages WHERE seq=?", (self._held(db, queue, handle)["seq"],))
                except MnsError as exc:
                    errors.append((handle, exc))
            return errors

    def change_visibility(self, queue: str, handle: str, visibility_timeout: int) -> tuple[str, int]:
        """→ (new ReceiptHandle, NextVisibleTime); the old handle stops working."""
        check_range("VisibilityTimeout", visibility_timeout, QUEUE_LIMITS)
        with self._tx() as db:
            self._queue_row(db, queue)
            row = self._held(db, queue, handle)
            new_handle = f"{row['seq']:x}-{secrets.token_hex(12)}"
            visible_at = now_ms() + visibility_timeout * 1000
            db.execute(
                "UPDATE messages SET receipt_handle=?, visible_at=? WHERE seq=?", (new_handle, visible_at, row["seq"])
            )
            self._cond(("queue", queue)).notify_all()  # waiters recompute when this message reappears
            return new_handle, visible_at

    # -- topics & subscriptions -----------------------------------------------------------------------------

    def _topic_row(self, db: sqlite3.Connection, name: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM topics WHERE name=?", (name,)).fetchone()
        if row is None:
            raise MnsError("TopicNotExist", "The topic name you provided is not exist.", 404)
        return row

    def create_topic(self, name: str, attributes: Mapping[str, int], logging_enabled: bool = False) -> bool:
        check_name(name, "topic")
        attrs = {**TOPIC_DEFAULTS, **attributes}
        for key, value in attributes.items():
            check_range(key, value, TOPIC_LIMITS)
        with self._tx() as db:
            row = db.execute("SELECT * FROM topics WHERE name=?", (name,)).fetchone()
            if row is not None:
                if any(row[key] != value for key, value in attrs.items()):
                    raise MnsError("TopicAlreadyExist", "The topic you want to create is already exist.", 409)
                return False
            now = int(time.time())
            db.execute(
                "INSERT INTO topics (name, MaximumMessageSize, MessageRetentionPeriod, logging_enabled, create_time,"
                " last_modify_time) VALUES (?, ?, ?, ?, ?, ?)",
                (name, attrs["MaximumMessageSize"], attrs["MessageRetentionPeriod"], int(logging_enabled), now, now),
            )
            return True

    def set_topic_attributes(self, name: str, attributes: Mapping[str, int], logging_enabled: bool | None) -> None:
        for key, value in attributes.items():
            check_range(key, value, TOPIC_LIMITS)
        with self._tx() as db:
            self._topic_row(db, name)
            if "MaximumMessageSize" in attributes:
                db.execute(
                    "UPDATE topics SET MaximumMessageSize=? WHERE name=?", (attributes["MaximumMessageSize"], name)
                )
            if logging_enabled is not None:
                db.execute("UPDATE topics SET logging_enabled=? WHERE name=?", (int(logging_enabled), name))
            db.execute("UPDATE topics SET last_modify_time=? WHERE name=?", (int(time.time()), name))

    def get_topic(self, name: str) -> TopicInfo:
        with self._tx() as db:
            return self._topic_info(db, self._topic_row(db, name))

    @staticmethod
    def _topic_info(db: sqlite3.Connection, row: sqlite3.Row) -> TopicInfo:
        pending = db.execute("SELECT COUNT(*) FROM deliveries WHERE topic=?", (row["name"],)).fetchone()[0]
        return TopicInfo(
            row["name"],
            {key: row[key] for key in TOPIC_DEFAULTS},
            bool(row["logging_enabled"]),
            row["create_time"],
            row["last_modify_time"],
            pending,
        )

    def delete_topic(self, name: str) -> None:
        with self._tx() as db:
            self._topic_row(db, name)
            subs = [r["name"] for r in db.execute("SELECT name FROM subscriptions WHERE topic=?", (name,))]
            for table in ("deliveries", "subscriptions"):
                db.execute(f"DELETE FROM {table} WHERE topic=?", (name,))
            db.execute("DELETE FROM topics WHERE name=?", (name,))
            for sub in subs:
                self._cond(("local", name, sub)).notify_all()
            self._cond(("pending", name)).notify_all()

    def list_topics(self, prefix: str = "", marker: str = "", limit: int = 1000) -> tuple[list[TopicInfo], str]:
        with self._tx() as db:
            rows = self._page(db, "topics", prefix, marker, limit)
            infos = [self._topic_info(db, row) for row in rows[:limit]]
            return infos, rows[limit]["name"] if len(rows) > limit else ""

    def subscribe(self, sub: Subscription, *, replace: bool = False) -> bool:
        """True if created. An existing one with other settings is SubscriptionAlreadyExist unless `replace`."""
        check_name(sub.name, "subscription")
        if sub.notify_strategy not in NOTIFY_STRATEGIES:
            raise MnsError("InvalidArgument", f"NotifyStrategy must be one of {', '.join(NOTIFY_STRATEGIES)}.")
        if sub.content_format not in CONTENT_FORMATS:
            raise MnsError("InvalidArgument", f"NotifyContentFormat must be one of {', '.join(CONTENT_FORMATS)}.")
        if len(sub.filter_tag) > MAX_TAG:
            raise MnsError("InvalidArgument", f"The length of FilterTag should not be larger than {MAX_TAG}.")
        if sub.kind == "queue" and sub.queue is None:
            raise MnsError(
                "InvalidArgument",
                f"Unsupported endpoint {sub.endpoint!r}: this local MNS pushes only to "
                "queues (acs:mns:<region>:<account>:queues/<name>).",
            )
        settings = ("endpoint", "kind", "notify_strategy", "content_format", "filter_tag")
        with self._tx() as db:
            self._topic_row(db, sub.topic)
            row = db.execute("SELECT * FROM subscriptions WHERE topic=? AND name=?", (sub.topic, sub.name)).fetchone()
            if row is not None and all(row[key] == getattr(sub, key) for key in settings):
                return False
            if row is not None and not replace:
                raise MnsError("SubscriptionAlreadyExist", "The subscription you want to create is already exist.", 409)
            now = int(time.time())
            created = row["create_time"] if row is not None else now
            db.execute(
                "INSERT OR REPLACE INTO subscriptions (topic, name, endpoint, kind, notify_strategy, content_format,"
                " filter_tag, create_time, last_modify_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sub.topic, sub.name, *(getattr(sub, key) for key in settings), created, now),
            )
            return row is None

    def set_subscription_strategy(self, topic: str, name: str, notify_strategy: str) -> None:
        if notify_strategy not in NOTIFY_STRATEGIES:
            raise MnsError("InvalidArgument", f"NotifyStrategy must be one of {', '.join(NOTIFY_STRATEGIES)}.")
        with self._tx() as db:
            self._subscription(db, topic, name)
            db.execute(
                "UPDATE subscriptions SET notify_strategy=?, last_modify_time=? WHERE topic=? AND name=?",
                (notify_strategy, int(time.time()), topic, name),
            )

    def _subscription(self, db: sqlite3.Connection, topic: str, name: str) -> Subscription:
        self._topic_row(db, topic)
        row = db.execute("SELECT * FROM subscriptions WHERE topic=? AND name=?", (topic, name)).fetchone()
        if row is None:
            raise MnsError("SubscriptionNotExist", "The subscription name you provided is not exist.", 404)
        return Subscription(*row)

    def get_subscription(self, topic: str, name: str) -> Subscription:
        with self._tx() as db:
            return self._subscription(db, topic, name)

    def unsubscribe(self, topic: str, name: str) -> None:
        with self._tx() as db:
            self._subscription(db, topic, name)
            db.execute("DELETE FROM deliveries WHERE topic=? AND subscription=?", (topic, name))
            db.execute("DELETE FROM subscriptions WHERE topic=? AND name=?", (topic, name))
            self._cond(("local", topic, name)).notify_all()  # its push thread sees it gone and stops
            self._cond(("pending", topic)).notify_all()

    def list_subscriptions(
        self, topic: str, prefix: str = "", marker: str = "", limit: int = 1000
    ) -> tuple[list[Subscription], str]:
        with self._tx() as db:
            self._topic_row(db, topic)
            rows = db.execute(
                "SELECT * FROM subscriptions WHERE topic=? AND substr(name, 1, ?)=? AND name>=? ORDER BY name LIMIT ?",
                (topic, len(prefix), prefix, marker, limit + 1),
            ).fetchall()
            subs = [Subscription(*r) for r in rows[:limit]]
            return subs, rows[limit]["name"] if len(rows) > limit else ""

    # -- publish & push -------------------------------------------------------------------------------------

    def publish(self, topic: str, body: str, message_tag: str, render: Render) -> tuple[str, str]:
        """Fan out atomically; → (MessageId, MessageBodyMD5). FilterTag: a tagged subscription gets only that tag."""
        if len(message_tag) > MAX_TAG:
            raise MnsError("InvalidArgument", f"The length of MessageTag should not be larger than {MAX_TAG}.")
        with self._tx() as db:
            row = self._topic_row(db, topic)
            if not 1 <= len(body.encode("utf-8")) <= row["MaximumMessageSize"]:
                raise MnsError(
                    "InvalidArgument", f"The length of message should between 1 and {row['MaximumMessageSize']} bytes."
                )
            now = now_ms()
            d = Delivery(0, topic, "", _new_message_id(now), body, message_tag, body_md5(body), now)
            for sub_row in db.execute("SELECT * FROM subscriptions WHERE topic=?", (topic,)).fetchall():
                sub = Subscription(*sub_row)
                if sub.filter_tag and sub.filter_tag != message_tag:
                    continue
                if sub.kind == "queue":
                    try:  # straight into the queue, so a consumer sees it as soon as publish returns
                        self._push_to_queue(db, sub, d, render)
                        continue
                    except MnsError:
                        pass  # e.g. the queue is missing: retried by the push thread, then dead-lettered
                db.execute(
                    "INSERT INTO deliveries (topic, subscription, message_id, body, message_tag, body_md5,"
                    " publish_time, next_attempt) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (topic, sub.name, d.message_id, body, message_tag, d.body_md5, now, now),
                )
                self._cond(("local", topic, sub.name) if sub.kind == "local" else ("dispatch",)).notify_all()
            return d.message_id, d.body_md5

    def _push_to_queue(self, db: sqlite3.Connection, sub: Subscription, d: Delivery, render: Render) -> None:
        self._insert_message(db, self._queue_row(db, sub.queue or ""), OutgoingMessage(render(sub, d)))

    def push_to_queue(self, d: Delivery, render: Render) -> None:
        """Retry of a queue push: enqueue and drop the delivery in one transaction (so exactly one copy lands)."""
        with self._tx() as db:
            self._push_to_queue(db, self._subscription(db, d.topic, d.subscription), d, render)
            db.execute("DELETE FROM deliveries WHERE id=?", (d.id,))
            self._cond(("pending", d.topic)).notify_all()

    def next_delivery(self, key: tuple[str, ...], stop: threading.Event) -> tuple[Delivery, Subscription] | None:
        """Block until a delivery for `key` is due: ("local", topic, sub) or ("dispatch",) for queue endpoints.
        None when `stop` is set, the store closes, or a local subscription disappears."""
        if key[0] == "local":
            where, args = "s.topic=? AND s.name=?", key[1:]
        else:
            where, args = "s.kind='queue'", ()
        with self._lock:
            cond = self._cond(key)
            while not stop.is_set() and not self._closing:
                db = self._db.connection()  # the shared connection: ours alone while the lock is held
                if (
                    key[0] == "local"
                    and db.execute("SELECT 1 FROM subscriptions s WHERE " + where, args).fetchone() is None
                ):
                    return None
                row = db.execute(
                    "SELECT d.* FROM deliveries d JOIN subscriptions s ON s.topic=d.topic AND s.name=d.subscription"
                    f" WHERE {where} ORDER BY d.next_attempt, d.id LIMIT 1",
                    args,
                ).fetchone()
                now = now_ms()
                if row is not None and row["next_attempt"] <= now:
                    sub = db.execute(
                        "SELECT * FROM subscriptions WHERE topic=? AND name=?", (row["topic"], row["subscription"])
                    ).fetchone()
                    return Delivery(*row[:10]), Subscription(*sub)
                cond.wait(None if row is None else (row["next_attempt"] - now) / 1000)
            return None

    def complete_delivery(self, d: Delivery) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM deliveries WHERE id=?", (d.id,))
            self._cond(("pending", d.topic)).notify_all()

    def fail_delivery(self, d: Delivery, error: str, retry_in: float | None) -> None:
        """Schedule the next attempt in `retry_in` seconds, or (None) move the message to the dead letters."""
        with self._tx() as db:
            if retry_in is not None:
                db.execute(
                    "UPDATE deliveries SET attempts=attempts+1, next_attempt=?, last_error=? WHERE id=?",
                    (now_ms() + int(retry_in * 1000), error, d.id),
                )
                return
            db.execute("DELETE FROM deliveries WHERE id=?", (d.id,))
            db.execute(
                "INSERT INTO dead_letters (topic, subscription, message_id, body, message_tag, body_md5, publish_time,"
                " attempts, last_error, dead_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    d.topic,
                    d.subscription,
                    d.message_id,
                    d.body,
                    d.message_tag,
                    d.body_md5,
                    d.publish_time,
                    d.attempts + 1,
                    error,
                    now_ms(),
                ),
            )
            self._cond(("pending", d.topic)).notify_all()

    def wait_no_pending(self, topic: str, subscription: str | None = None, timeout: float | None = None) -> bool:
        """Block until `topic` (or one subscription of it) has no pushes left to make (delivered or dead-lettered);
        False on timeout. Waits on a condition signalled by every completion, so it returns at once."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            cond = self._cond(("pending", topic))
            while self.pending_deliveries(topic, subscription):
                remaining = None if deadline is None else deadline - time.monotonic()
                if self._closing or (remaining is not None and remaining <= 0):
                    return False
                cond.wait(remaining)
            return True

    def pending_deliveries(self, topic: str, subscription: str | None = None) -> list[Delivery]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT * FROM deliveries WHERE topic=? AND subscription=COALESCE(?, subscription) ORDER BY id",
                (topic, subscription),
            ).fetchall()
            return [Delivery(*r[:10]) for r in rows]

    def dead_letters(self, topic: str | None = None) -> list[DeadLetter]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT * FROM dead_letters WHERE topic=COALESCE(?, topic) ORDER BY id", (topic,)
            ).fetchall()
            return [DeadLetter(*r[1:]) for r in rows]
