"""SQLite specifics: the file it creates, WAL, persistence, and claims raced by threads and processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import pytest

from shared.ports import ClaimOutcome
from shared.store import schema
from shared.store.sqlite import SqliteStore

from .mp_worker import claim_in_process
from .records import make_claim, make_job


def test_creates_the_schema_tables_with_their_keys_in_wal_mode(sqlite_path: Path) -> None:
    SqliteStore(sqlite_path).close()
    with sqlite3.connect(sqlite_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {spec.name for spec in schema.TABLES}
        for spec in schema.TABLES:
            info = raw.execute(f'PRAGMA table_info("{spec.name}")').fetchall()
            keys = [row[1] for row in sorted((r for r in info if r[5] > 0), key=lambda r: r[5])]
            assert keys == list(spec.key_names), spec.name
            assert [row[1] for row in info] == list(schema.columns_of(spec)), spec.name


def test_data_survives_reopening_and_opening_twice_is_harmless(sqlite_path: Path) -> None:
    with SqliteStore(sqlite_path) as first:
        first.save_job(make_job("j1", "Analysing"))
    with SqliteStore(sqlite_path) as again, SqliteStore(sqlite_path) as other:
        assert again.get_job("j1") == make_job("j1", "Analysing")
        assert other.save_job(make_job("j1", "Queuing")) is False


def test_a_closed_store_refuses_work(sqlite_path: Path) -> None:
    store = SqliteStore(sqlite_path)
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.get_job("j1")


def test_in_memory_store_is_shared_by_its_threads_and_private_to_it() -> None:
    store, other = SqliteStore(":memory:"), SqliteStore(":memory:")
    store.save_job(make_job("j1", "Queuing"))
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(store.get_job("j1")))
    worker.start()
    worker.join()
    assert seen == [make_job("j1", "Queuing")]
    assert other.get_job("j1") is None


def test_separate_store_instances_in_threads_yield_one_owner(sqlite_path: Path) -> None:
    # Like several FC instances on one file: each thread opens its own store (and connection).
    n = 6
    barrier = threading.Barrier(n)
    outcomes: list[ClaimOutcome] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        with SqliteStore(sqlite_path) as own:
            barrier.wait(timeout=30)
            outcome = own.claim_object(make_claim("k1", f"req-{i}", now=1000), now=1000).outcome
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert Counter(outcomes) == {ClaimOutcome.ACQUIRED: 1, ClaimOutcome.IN_PROGRESS: n - 1}


def test_processes_claiming_one_key_yield_one_owner(sqlite_path: Path) -> None:
    # spawn: fresh interpreters, no connection inherited; the file doesn't exist yet, so the processes
    # also race to create it, switch it to WAL and create the tables.
    ctx = multiprocessing.get_context("spawn")
    n = 4
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [
        ctx.Process(target=claim_in_process, args=(str(sqlite_path), "k1", f"proc-{i}", 1000.0, barrier, results))
        for i in range(n)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in range(n)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    counts = Counter(outcome for _, outcome, _ in outcomes)
    assert counts == {ClaimOutcome.ACQUIRED.value: 1, ClaimOutcome.IN_PROGRESS.value: n - 1}
    winner = next(owner for owner, outcome, _ in outcomes if outcome == ClaimOutcome.ACQUIRED.value)
    assert {holder for _, _, holder in outcomes} == {winner}
    with SqliteStore(sqlite_path) as store:
        assert store.get_object("k1").owner == winner  # type: ignore[union-attr]
