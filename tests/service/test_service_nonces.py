"""Signature nonces are remembered durably: a replay is refused after the engine restarts, and only within the
window in which the request's timestamp is still valid."""

from __future__ import annotations

import threading
from pathlib import Path

from engine.service.db import ServiceDb
from engine.service.nonces import PURGE_EVERY, DurableNonceLedger
from tests.service.conftest import Oss, make_service, raw_call, signed_rpc_query


def test_a_replay_after_a_restart_is_refused(tmp_path: Path, oss: Oss) -> None:
    query = signed_rpc_query("ListFpShotDB", {}, nonce="nonce-across-restarts")
    with make_service(tmp_path / "data", oss, workers=0) as first:
        assert raw_call(first, query)[0] == 200
    with make_service(tmp_path / "data", oss, workers=0) as restarted:
        status, body = raw_call(restarted, query)  # byte for byte, to a new process state on the same data
        assert (status, body["Code"]) == (400, "SignatureNonceUsed")
        assert raw_call(restarted, signed_rpc_query("ListFpShotDB", {}, nonce="a-new-nonce"))[0] == 200


def test_the_ledger_forgets_a_nonce_only_once_it_expired(tmp_path: Path) -> None:
    ledger = DurableNonceLedger(ServiceDb(tmp_path / "service.db"))
    assert ledger.add("ak\nn1", expires_at=100.0, now=10.0)
    assert not ledger.add("ak\nn1", expires_at=120.0, now=99.0)  # still live: a replay
    assert ledger.add("ak\nn1", expires_at=300.0, now=100.0)  # expired: its request is refused as stale anyway
    assert not ledger.add("ak\nn1", expires_at=400.0, now=250.0)  # the takeover extended it
    assert ledger.add("other-ak\nn1", expires_at=100.0, now=10.0)  # nonces are per access key


def test_expired_nonces_are_purged_so_the_table_stays_one_window(tmp_path: Path) -> None:
    ledger = DurableNonceLedger(ServiceDb(tmp_path / "service.db"))
    for i in range(PURGE_EVERY - 1):
        ledger.add(f"ak\nold-{i}", expires_at=50.0, now=10.0)
    assert len(ledger) == PURGE_EVERY - 1
    ledger.add("ak\nnew", expires_at=500.0, now=100.0)  # the PURGE_EVERY-th add deletes what expired
    assert len(ledger) == 1


def test_two_threads_cannot_both_accept_one_nonce(tmp_path: Path) -> None:
    db = ServiceDb(tmp_path / "service.db")
    ledger = DurableNonceLedger(db)
    start = threading.Barrier(8)
    accepted: list[bool] = []
    lock = threading.Lock()

    def race() -> None:
        start.wait()
        result = ledger.add("ak\nraced", expires_at=1000.0, now=1.0)
        with lock:
            accepted.append(result)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(accepted) == [False] * 7 + [True]
