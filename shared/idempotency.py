"""Idempotent processing keyed on the event, Powertools-style: claim with a conditional write, do the work,
then mark it complete. A crash between claim and completion leaves an IN_PROGRESS lease that expires, so a
retried delivery takes it over instead of losing the work; a duplicate delivery of finished work is a no-op.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace

from shared.log import get_logger
from shared.ports import ClaimOutcome, ClaimStore, ObjectClaim
from shared.vocabulary import CLAIM_IN_PROGRESS, CLAIM_TAKEOVER_STATUSES

log = get_logger("fpscreen.idempotency")


class AlreadyInProgress(RuntimeError):
    """Another invocation holds an unexpired lease on the same key. Raised so FC's async retry comes back
    later: by then the other invocation has either finished (a no-op) or crashed (its lease has expired).
    `retry_at` (epoch seconds) is when the lease runs out."""

    def __init__(self, message: str, *, retry_at: float | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


def object_version_key(bucket: str, object_key: str, version_tag: str, fp_db_id: str | None) -> str:
    """One key per (object version, target library): fixed length and safe as a Tablestore primary key."""
    raw = f"{bucket}\n{object_key}\n{version_tag}\n{fp_db_id or ''}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:40]


def primary_key_for(bucket: str, object_key: str) -> str:
    """Deterministic MPS PrimaryKey for an object: re-uploading the same key replaces its library entry."""
    return hashlib.sha256(f"{bucket}/{object_key}".encode()).hexdigest()[:32]


class Idempotency:
    def __init__(self, store: ClaimStore, *, lease_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._lease_seconds = lease_seconds
        self._clock = clock

    def run(
        self, claim: ObjectClaim, work: Callable[[ObjectClaim | None, Callable[[], None]], str]
    ) -> tuple[str, bool]:
        """Run `work` (which returns a job id) at most once per `claim.key`.

        `work(prior, reaching_out)` receives the expired claim it took over, if any (that invocation may have
        done the work before it died or failed, and `work` can check), and calls `reaching_out()` just before
        its non-idempotent call. If `work` raises before that, the claim is released so a retry starts afresh;
        after it, the claim is kept as MAYBE_SUBMITTED, never deleted, so the retry reconciles first.
        Returns `(job_id, ran)`; `ran` is False when a previous delivery already did the work.
        """
        prior = self._store.get_object(claim.key)
        now = self._clock()
        lease = replace(claim, status=CLAIM_IN_PROGRESS, expires_at=now + self._lease_seconds, updated_at=now)
        taken_over = prior if prior is not None and prior.status in CLAIM_TAKEOVER_STATUSES else None
        if taken_over is not None and taken_over.created_at:
            # Keep the first claim's time: reconciliation searches for jobs created since then, and a chain
            # of takeovers must not move that window past the first submit.
            lease.created_at = taken_over.created_at
        if not lease.created_at:
            lease.created_at = now
        result = self._store.claim_object(lease, now=now)
        if result.outcome is ClaimOutcome.COMPLETED:
            return result.claim.job_id or "", False
        if result.outcome is ClaimOutcome.IN_PROGRESS:
            raise AlreadyInProgress(
                f"{claim.key} is being processed by {result.claim.owner} until {result.claim.expires_at:.0f}",
                retry_at=result.claim.expires_at,
            )
        reached = False

        def reaching_out() -> None:
            nonlocal reached
            reached = True

        try:
            job_id = work(taken_over, reaching_out)
        except BaseException:
            # A claim taken over from an invocation that may have submitted stays MAYBE_SUBMITTED too: releasing
            # it would erase the only sign that a job may exist.
            self._give_back(claim, maybe_done=reached or taken_over is not None)
            raise
        if not self._store.complete_object(claim.key, claim.owner, job_id, now=self._clock()):
            # Our lease expired and another delivery took over mid-flight: it reconciled by UserData first,
            # so it adopted our job unless MPS had not listed it yet. Logged so the lease can be tuned.
            log.warning("lease lost before completion", extra={"key": claim.key, "job_id": job_id})
        return job_id, True

    def _give_back(self, claim: ObjectClaim, *, maybe_done: bool) -> None:
        """After a failure: release the claim, or keep it as MAYBE_SUBMITTED. Never masks the failure: if the
        store is what failed, the lease simply runs out and the next delivery takes it over (and reconciles)."""
        try:
            if maybe_done:
                self._store.suspend_object(claim.key, claim.owner, now=self._clock())
            else:
                self._store.release_object(claim.key, claim.owner)
        except Exception as exc:
            log.warning("could not give the claim back", extra={"key": claim.key, "error": str(exc)})
