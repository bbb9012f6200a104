"""Run in child processes by test_sqlite.py (spawned, so it must be importable, not a test module)."""

from __future__ import annotations

from typing import Any

from shared.store.sqlite import SqliteStore

from .records import make_claim


def claim_in_process(path: str, key: str, owner: str, now: float, barrier: Any, results: Any) -> None:
    """Open the store (a fresh file for the first process to get there), wait for the others, claim."""
    store = SqliteStore(path)
    try:
        barrier.wait(timeout=60)
        result = store.claim_object(make_claim(key, owner, now=now), now=now)
        results.put((owner, result.outcome.value, result.claim.owner))
    finally:
        store.close()
