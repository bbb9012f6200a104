"""`shared.sqlite.SqliteDatabase`: per-thread connections, transactions, closing, WAL, and many openers at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.sqlite import SqliteDatabase


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    with SqliteDatabase(tmp_path / "sub" / "t.db") as database:
        database.connection().execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
        yield database


def _in_thread(fn):  # type: ignore[no-untyped-def]
    """fn() on a new thread: its result, or its exception raised here."""
    out: list[object] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=30)
    if errors:
        raise errors[0]
    return out[0]


def test_creates_the_directory_and_puts_the_file_in_wal_mode(db: SqliteDatabase, tmp_path: Path) -> None:
    assert (tmp_path / "sub" / "t.db").exists()
    assert db.connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with sqlite3.connect(tmp_path / "sub" / "t.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # a property of the file


def test_pragmas_per_connection(tmp_path: Path) -> None:
    default = SqliteDatabase(tmp_path / "a.db")
    strict = SqliteDatabase(tmp_path / "b.db", synchronous="FULL", foreign_keys=True, busy_timeout=2.5)
    for database, synchronous, foreign_keys, timeout_ms in ((default, 1, 0, 30000), (strict, 2, 1, 2500)):
        conn = database.connection()
        assert conn.isolation_level is None  # autocommit: transactions are only the explicit ones
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == synchronous
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == foreign_keys
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == timeout_ms
    with pytest.raises(ValueError, match="synchronous"):
        SqliteDatabase(tmp_path / "c.db", synchronous="FULL; DROP TABLE t")


def test_each_thread_gets_its_own_connection_and_keeps_it(db: SqliteDatabase) -> None:
    mine = db.connection()
    assert db.connection() is mine
    theirs = _in_thread(db.connection)
    assert theirs is not mine


def test_write_commits_and_rolls_back_on_error(db: SqliteDatabase) -> None:
    with db.write() as conn:
        conn.execute("INSERT INTO t VALUES ('a', 1)")
    with pytest.raises(ZeroDivisionError), db.write() as conn:
        conn.execute("INSERT INTO t VALUES ('b', 2)")
        conn.execute("UPDATE t SET v = 10 WHERE k = 'a'")
        raise ZeroDivisionError
    assert db.connection().execute("SELECT k, v FROM t").fetchall() == [("a", 1)]
    assert not db.connection().in_transaction
    # A failing statement inside rolls the whole transaction back too, and the connection stays usable.
    with pytest.raises(sqlite3.IntegrityError), db.write() as conn:
        conn.execute("INSERT INTO t VALUES ('c', 3)")
        conn.execute("INSERT INTO t VALUES ('a', 4)")
    assert _in_thread(lambda: db.connection().execute("SELECT k, v FROM t").fetchall()) == [("a", 1)]


def test_write_takes_the_write_lock_up_front(db: SqliteDatabase) -> None:
    other = SqliteDatabase(db.path, busy_timeout=0.05)
    with db.write():
        with pytest.raises(sqlite3.OperationalError, match="locked"), other.write():
            pass
        # ...while readers carry on (WAL).
        assert other.connection().execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
    other.close()


def test_read_is_one_snapshot(db: SqliteDatabase) -> None:
    with db.write() as conn:
        conn.execute("INSERT INTO t VALUES ('a', 1)")

    def add(k: str) -> None:
        with db.write() as conn:
            conn.execute("INSERT INTO t VALUES (?, 1)", (k,))

    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1
        _in_thread(lambda: add("b"))  # committed meanwhile by another thread's connection
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1
    assert db.connection().execute("SELECT COUNT(*) FROM t").fetchone()[0] == 2


def test_concurrent_writers_serialize(db: SqliteDatabase) -> None:
    # Each read-then-write increments; interleaved transactions would lose updates (or fail to upgrade a lock).
    with db.write() as conn:
        conn.execute("INSERT INTO t VALUES ('n', 0)")
    rounds, threads = 50, 4
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            barrier.wait(timeout=30)
            for _ in range(rounds):
                with db.write() as conn:
                    (value,) = conn.execute("SELECT v FROM t WHERE k = 'n'").fetchone()
                    time.sleep(0)  # let another thread run between the read and the write
                    conn.execute("UPDATE t SET v = ? WHERE k = 'n'", (value + 1,))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=bump) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert errors == []
    assert db.connection().execute("SELECT v FROM t WHERE k = 'n'").fetchone()[0] == rounds * threads


def test_close_closes_every_threads_connection_and_later_use_raises(db: SqliteDatabase) -> None:
    mine = db.connection()
    theirs = _in_thread(db.connection)
    db.close()
    assert db.closed
    for conn in (mine, theirs):
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
    for use in (db.connection, lambda: db.write().__enter__(), lambda: db.read().__enter__()):
        with pytest.raises(RuntimeError, match="closed"):
            use()
    with pytest.raises(RuntimeError, match="closed"):
        _in_thread(db.connection)  # a thread that never had a connection cannot open one either
    db.close()  # idempotent


def test_closed_error_is_the_callers(tmp_path: Path) -> None:
    class Gone(Exception):
        pass

    database = SqliteDatabase(tmp_path / "g.db", closed_error=lambda: Gone("bye"))
    database.close()
    with pytest.raises(Gone, match="bye"):
        database.connection()


def test_memory_is_one_database_shared_by_threads_and_private_to_the_instance() -> None:
    db, other = SqliteDatabase(":memory:"), SqliteDatabase(":memory:")
    with db.write() as conn:
        conn.execute("CREATE TABLE t (k TEXT)")
        conn.execute("INSERT INTO t VALUES ('a')")

    def count() -> int:
        with db.autocommit() as conn:
            return conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]

    assert _in_thread(count) == 1
    assert _in_thread(db.connection) is db.connection()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        other.connection().execute("SELECT * FROM t")
    db.close()
    with pytest.raises(RuntimeError, match="closed"):
        count()


def test_one_connection_serialises_threads_under_its_lock(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "one.db", one_connection=True)
    with db.write() as conn:
        conn.execute("CREATE TABLE t (k TEXT)")
    entered = threading.Event()

    def write() -> None:
        with db.write() as conn:
            entered.set()
            conn.execute("INSERT INTO t VALUES ('b')")

    with db.lock:  # a caller may hold the lock across calls (e.g. for a Condition); others wait
        worker = threading.Thread(target=write)
        worker.start()
        assert not entered.wait(0.2)
        with db.write() as conn:  # re-entrant
            conn.execute("INSERT INTO t VALUES ('a')")
    worker.join(timeout=30)
    assert entered.is_set()
    assert db.connection().execute("SELECT k FROM t ORDER BY rowid").fetchall() == [("a",), ("b",)]
    assert db.connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_switching_a_new_file_to_wal_waits_out_another_writer(tmp_path: Path) -> None:
    # While another connection holds the write lock of a file still in rollback-journal mode (as when processes
    # open a new file together), switching to WAL fails at once with "database is locked": SQLite does not call
    # the busy handler there. The switch must be retried within the busy timeout.
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (n INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        with SqliteDatabase(path) as db:
            assert db.connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.connection().execute("SELECT n FROM t").fetchall() == [(1,)]
    finally:
        release.join()
    holder.close()

    # ...but not forever: past the busy timeout the error stands.
    stuck = tmp_path / "stuck.db"
    writer = sqlite3.connect(stuck, isolation_level=None)
    writer.execute("CREATE TABLE t (n INTEGER)")
    writer.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        SqliteDatabase(stuck, busy_timeout=0.2).connection()
    assert 0.2 <= time.monotonic() - started < 5
    writer.execute("ROLLBACK")
    writer.close()


def _open_and_insert(path: str, n: int, barrier: object, results: object) -> None:
    barrier.wait(timeout=60)  # type: ignore[attr-defined]
    try:
        db = SqliteDatabase(path)
        with db.write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
            conn.execute("INSERT INTO t VALUES (?)", (n,))
        mode = db.connection().execute("PRAGMA journal_mode").fetchone()[0]
        db.close()
        results.put((n, mode))  # type: ignore[attr-defined]
    except BaseException as exc:
        results.put((n, repr(exc)))  # type: ignore[attr-defined]


def test_processes_opening_a_new_file_at_once_all_get_wal(tmp_path: Path) -> None:
    # Switching a new file to WAL fails at once with "database is locked" while another process holds it:
    # every opener must retry instead of failing.
    path = tmp_path / "race.db"
    ctx = multiprocessing.get_context("fork")
    n = 6
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_open_and_insert, args=(str(path), i, barrier, results)) for i in range(n)]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=120) for _ in range(n))
    for p in procs:
        p.join(timeout=60)
    assert outcomes == [(i, "wal") for i in range(n)]
    with sqlite3.connect(path) as raw:
        assert sorted(r[0] for r in raw.execute("SELECT n FROM t")) == list(range(n))


def test_a_forked_child_opens_its_own_connection(db: SqliteDatabase) -> None:
    parent = db.connection()
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()

    def child() -> None:
        conn = db.connection()
        with db.write() as tx:
            tx.execute("INSERT INTO t VALUES ('child', 1)")
        results.put(conn is not parent)

    proc = ctx.Process(target=child)
    proc.start()
    assert results.get(timeout=60) is True
    proc.join(timeout=60)
    assert db.connection() is parent
    assert parent.execute("SELECT k FROM t").fetchall() == [("child",)]
