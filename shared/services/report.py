"""Report failed jobs (ReportFpShotJobResult) and sweep jobs whose notification never came."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from shared.config import Settings
from shared.contracts.mps import ReportFpShotJobResultRequest
from shared.log import get_logger
from shared.ports import FailedJobOutbox, MpsError, MpsPort
from shared.services.results import RecorderStores, ResultRecorder
from shared.vocabulary import FAIL, MAX_QUERY_JOB_IDS, NON_FINAL_STATES

log = get_logger("fpscreen.report")

SWEEP_BATCH = 100
REPORT_PAGE = 100


class ReporterStores(RecorderStores, FailedJobOutbox, Protocol):
    """What the reporter uses: the outbox, and what re-recording swept jobs needs."""


@dataclass(slots=True)
class ReportSummary:
    swept: int = 0
    reported: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stopped_early: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "swept": self.swept,
            "reported": self.reported,
            "failed": self.failed,
            "stopped_early": self.stopped_early,
        }


class FailedJobReporter:
    def __init__(
        self,
        mps: MpsPort,
        store: ReporterStores,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
    ) -> None:
        self._mps = mps
        self._store = store
        self._settings = settings
        self._clock = clock
        self._owner = owner or uuid.uuid4().hex  # this run: two timer runs at once claim different rows
        self._recorder = ResultRecorder(mps, store, clock=clock)

    def run(self, *, deadline: float) -> ReportSummary:
        """Sweep, then report, stopping cleanly once `deadline` (epoch seconds) is reached; the next timer
        tick resumes where this one stopped because progress lives in the store, not in memory."""
        summary = ReportSummary()
        summary.swept = self.sweep(deadline=deadline, summary=summary)
        if not summary.stopped_early:
            self.report(deadline=deadline, summary=summary)
        return summary

    def sweep(self, *, deadline: float, summary: ReportSummary) -> int:
        now = self._clock()
        stuck = self._store.jobs_in_states(
            NON_FINAL_STATES, updated_before=now - self._settings.stuck_after_seconds, limit=SWEEP_BATCH
        )
        swept = 0
        for start in range(0, len(stuck), MAX_QUERY_JOB_IDS):
            if self._clock() >= deadline:
                summary.stopped_early = True
                break
            batch = stuck[start : start + MAX_QUERY_JOB_IDS]
            try:
                outcomes = self._recorder.record_jobs([job.job_id for job in batch])
            except MpsError as exc:
                log.warning("sweep query failed", extra={"code": exc.code, "error": exc.message})
                break
            for job, outcome in zip(batch, outcomes, strict=True):
                if outcome.status in {"unchanged", "missing"}:
                    # Still not final (or unknown to MPS): touch it so it waits a full period again.
                    job.updated_at = self._clock()
                    self._store.save_job(job)
            swept += len(batch)
        if swept:
            log.info("swept stuck jobs", extra={"count": swept})
        return swept

    def report(self, *, deadline: float, summary: ReportSummary) -> None:
        # Giving up is this service's call: a job tried report_max_attempts times is no longer asked for.
        pending = self._store.pending_failed(REPORT_PAGE, max_attempts=self._settings.report_max_attempts)
        for item in pending:
            now = self._clock()
            if now >= deadline:
                summary.stopped_early = True
                return
            # Claim the row before calling MPS: another run that read it too gets False here and skips it.
            lease = self._settings.claim_lease_seconds
            if not self._store.claim_failed(item.job_id, self._owner, now=now, lease_seconds=lease):
                log.info("outbox row held by another run", extra={"job_id": item.job_id})
                continue
            if item.claim_owner and item.claim_owner != self._owner:
                # A run claimed it and never came back (killed, or slower than its lease): its report may have
                # reached MPS, which offers no way to ask. Report at most once: close the row, say why.
                why = f"outcome unknown: reporter run {item.claim_owner} stopped mid-report; not resent"
                self._store.record_failed_attempt(item.job_id, why)
                if self._store.mark_failed_reported(item.job_id, now=self._clock()):
                    summary.failed.append(item.job_id)
                    log.warning("report outcome unknown: not resent", extra={"job_id": item.job_id})
                continue
            request = ReportFpShotJobResultRequest(
                job_id=item.job_id,
                result=item.code or FAIL,
                details=json.dumps({"Message": item.message, "UserData": item.user_data}, ensure_ascii=False),
            )
            try:
                self._mps.report_fp_shot_job_result(request)
            except MpsError as exc:
                self._store.record_failed_attempt(item.job_id, f"{exc.code}: {exc.message}")
                if exc.maybe_accepted:
                    # MPS may have recorded it and has no way to ask: report at most once, so count it as
                    # done; the row keeps the error (`last_error`) to explain a report MPS may lack.
                    self._store.mark_failed_reported(item.job_id, now=self._clock())
                    summary.failed.append(item.job_id)
                    log.warning("report outcome unknown: not resent", extra={"job_id": item.job_id, "code": exc.code})
                    continue
                # Refused: give the row back at once so the next tick (another run) may try again.
                self._store.release_failed(item.job_id, self._owner)
                summary.failed.append(item.job_id)
                log.warning("report failed", extra={"job_id": item.job_id, "code": exc.code, "error": exc.message})
                if exc.retryable:
                    summary.stopped_early = True  # throttled: back off until the next tick
                    return
                continue
            if self._store.mark_failed_reported(item.job_id, now=self._clock()):
                summary.reported.append(item.job_id)
                log.info("failed job reported", extra={"job_id": item.job_id, "code": item.code})
