"""Signature nonces that outlive the process: a request replayed after the engine restarts is still refused.

Each nonce is kept in `service.db` (table `nonces`) until its request would be refused as stale anyway (timestamp
plus the allowed skew), so the table holds at most one clock window of traffic. The check and the insert are one
conditional statement, so two threads (or two processes on the same data directory) cannot both accept one nonce.
"""

from __future__ import annotations

import threading

from engine.service.db import ServiceDb

PURGE_EVERY = 512  # adds between deletions of expired rows: keeps the table to one clock window without a timer


class DurableNonceLedger:
    """`NonceLedger` backed by the service database."""

    def __init__(self, db: ServiceDb) -> None:
        self._db = db
        self._adds = 0
        self._lock = threading.Lock()

    def add(self, key: str, *, expires_at: float, now: float) -> bool:
        with self._db.write() as connection:
            # Inserted, or an expired row taken over; a live row makes this a no-op (changes() == 0): a replay.
            cursor = connection.execute(
                "INSERT INTO nonces (key, expires_at) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= ?",
                (key, expires_at, now),
            )
            accepted = cursor.rowcount == 1
            with self._lock:
                self._adds += 1
                purge = self._adds % PURGE_EVERY == 0
            if purge:
                connection.execute("DELETE FROM nonces WHERE expires_at <= ?", (now,))
        return accepted

    def __len__(self) -> int:
        row = self._db.connection().execute("SELECT COUNT(*) FROM nonces").fetchone()
        return int(row[0])
