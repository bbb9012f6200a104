"""Parking: keep what cannot be processed, with its reason, instead of retrying it forever or dropping it."""

from __future__ import annotations

import hashlib

from shared.log import get_logger
from shared.ports import ParkedMessage, ParkingLot

log = get_logger("fpscreen.parking")


def park(
    store: ParkingLot,
    *,
    source: str,
    body: bytes | str,
    reason: str,
    now: float,
    message_id: str | None = None,
    attrs: dict[str, str] | None = None,
) -> str:
    """Store `body` for review; the id is `message_id`, else a hash of the body (so parking twice is a no-op)."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    message_id = message_id or hashlib.sha256(raw).hexdigest()[:32]
    store.park_message(
        ParkedMessage(
            message_id=message_id,
            source=source,
            reason=reason,
            body=raw.decode("utf-8", errors="replace"),
            parked_at=now,
            attrs=attrs or {},
        )
    )
    log.error("parked", extra={"message_id": message_id, "source": source, "reason": reason})
    return message_id
