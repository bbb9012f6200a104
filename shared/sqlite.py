"""A SQLite database shared by the threads of a process (and by other processes on the same file).

Every thread gets its own connection, opened in autocommit mode so that transactions are exactly the ones
`write()` and `read()` begin; the file is in WAL mode, so readers never block the writer, and a busy timeout
makes a writer wait for the lock instead of failing. `write()` is `BEGIN IMMEDIATE`: it takes the write lock up
front, so a read-then-write inside it cannot interleave with another writer (thread or process).

`":memory:"` (or `one_connection=True`) keeps one connection that all threads share under `lock`: an in-memory
database lives in its connection, and a caller may want one lock for its own state and the database.

Standard library only: `shared/` also runs in the FC runtime (Python 3.10).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

MEMORY = ":memory:"
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


class SqliteDatabase:
    """Per-thread connections to one SQLite file, explicit transactions, and a `close()` that closes them all."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "NORMAL",
        foreign_keys: bool = False,
        busy_timeout: float = 30.0,
        row_factory: Callable[[sqlite3.Cursor, tuple[Any, ...]], Any] | None = None,
        one_connection: bool = False,
        closed_error: Callable[[], BaseException] | None = None,
    ) -> None:
        """`synchronous`: NORMAL is durable at WAL checkpoints (survives a process crash, not a power cut); FULL
        syncs every commit. `closed_error` makes the exception raised on use after `close()`."""
        if synchronous.upper() not in _SYNCHRONOUS:  # it is spliced into a PRAGMA
            raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, not {synchronous!r}")
        self.path = str(path)
        self._synchronous = synchronous.upper()
        self._foreign_keys = foreign_keys
        self._busy_timeout = busy_timeout
        self._row_factory = row_factory
        self._memory = self.path == MEMORY
        self._one = one_connection or self._memory
        self._closed_error = closed_error or (lambda: RuntimeError(f"the database {self.path} is closed"))
        # Guards the bookkeeping below; with one shared connection it also serialises every use of it. Re-entrant,
        # so a caller may hold it around write()/read() (and build a Condition on it).
        self.lock = threading.RLock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._closed = False
        if not self._memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------------------------ connections

    @property
    def closed(self) -> bool:
        return self._closed

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (with one shared connection: use it under `lock`)."""
        if self._closed:
            raise self._closed_error()
        if os.getpid() != self._pid:
            self._forget_parent()
        if self._one:
            with self.lock:
                if self._closed:
                    raise self._closed_error()
                if not self._connections:
                    self._connections.append(self._connect())
                return self._connections[0]
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        conn = self._connect()  # outside the lock: switching a new file to WAL may wait for other processes
        with self.lock:
            if self._closed:  # closed meanwhile: close() could not see this one, so nobody else would close it
                conn.close()
                raise self._closed_error()
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    def _forget_parent(self) -> None:
        # Forked: the parent's connections (and their locks) must not be used, nor closed, from here.
        with self.lock:
            if os.getpid() != self._pid:
                self._pid, self._local, self._connections = os.getpid(), threading.local(), []

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: autocommit, so transactions are exactly the BEGINs written below.
        # check_same_thread=False so close() may run on any thread (and so one connection may be shared).
        # timeout= is SQLite's busy timeout: wait that long for another connection's lock.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            if self._row_factory is not None:
                conn.row_factory = self._row_factory
            if not self._memory:  # an in-memory database has no journal file to speak of, nor anything to sync
                self._enable_wal(conn)
                conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            if self._foreign_keys:
                conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        # WAL is a property of the file, set once. Switching needs an exclusive lock and SQLite reports
        # "database is locked" at once rather than calling the busy handler, so processes that open a new
        # file together retry here, within the busy timeout.
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.005
        while conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return  # WAL now, or the file system can't do it (the pragma then keeps the old mode)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.1)

    def _exclusive(self) -> Any:
        return self.lock if self._one else nullcontext()

    # ----------------------------------------------------------------------------------- transactions

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; IMMEDIATE takes the write lock up front so a read-then-write cannot race."""
        with self._exclusive():
            conn = self.connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (e.g. on a full disk)
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot across several SELECTs."""
        with self._exclusive():
            conn = self.connection()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def autocommit(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection for statements that are each their own transaction (one shared connection is
        held exclusively meanwhile, so fetch results inside the block)."""
        with self._exclusive():
            yield self.connection()

    # -------------------------------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close every thread's connection; any later use raises `closed_error()`."""
        with self.lock:
            self._closed = True
            connections, self._connections = self._connections, []
            self._local = threading.local()
            for conn in connections:
                with contextlib.suppress(sqlite3.ProgrammingError):  # in use by another thread right now
                    conn.close()

    def __enter__(self) -> SqliteDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
