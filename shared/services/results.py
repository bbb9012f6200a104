"""Store results: turn a job notification into the authoritative job (QueryFpShotJobList) and its rows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from shared.contracts.events import MnsTopicMessage
from shared.contracts.mps import FpShotJob, QueryFpShotJobListRequest
from shared.contracts.notify import NotifyParseError, parse_fp_shot_job_notify
from shared.log import get_logger
from shared.ports import ClaimStore, FailedJob, FailedJobOutbox, JobStore, MatchStore, MpsPort, ParkingLot
from shared.services.job_rows import job_record, match_rows
from shared.services.parking import park
from shared.services.submit import claim_key_from_user_data
from shared.vocabulary import FAIL, MAX_QUERY_JOB_IDS, RecordStatus

log = get_logger("fpscreen.results")


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    job_id: str
    status: RecordStatus
    state: str = ""
    reason: str = ""


def chunks(ids: list[str], size: int = MAX_QUERY_JOB_IDS) -> Iterable[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


class RecorderStores(ClaimStore, JobStore, MatchStore, FailedJobOutbox, ParkingLot, Protocol):
    """What recording a job touches: its claim (read, to trace bucket and key), its row, its matches, the
    failed-job outbox, and the parking lot for unreadable notifications."""


class ResultRecorder:
    def __init__(self, mps: MpsPort, store: RecorderStores, *, clock: Callable[[], float] = time.time) -> None:
        self._mps = mps
        self._store = store
        self._clock = clock

    def handle_message(self, message: MnsTopicMessage) -> RecordOutcome:
        try:
            notify = parse_fp_shot_job_notify(message.body)
        except NotifyParseError as exc:
            return self.park(message, exc.reason)
        log.info("notification", extra={"job_id": notify.job_id, "notified_state": notify.state})
        [outcome] = self.record_jobs([notify.job_id])
        if outcome.status == "missing":
            # MPS does not know the job it notified about (another account's pipeline, a deleted job, not an
            # FpShot job): keep the message with the reason instead of dropping it with a log line.
            parked = self.park(message, f"job {notify.job_id} is unknown to QueryFpShotJobList ({outcome.reason})")
            return RecordOutcome(notify.job_id, "parked", reason=parked.reason)
        return outcome

    def park(self, message: MnsTopicMessage, reason: str) -> RecordOutcome:
        park(
            self._store,
            source=f"mns:{message.topic_name or ''}",
            body=message.body,
            reason=reason,
            now=self._clock(),
            message_id=message.message_id,
            attrs=message.attrs,
        )
        return RecordOutcome("", "parked", reason=reason)

    def record_jobs(self, job_ids: list[str]) -> list[RecordOutcome]:
        """Fetch the authoritative jobs (≤10 ids per call) and store them; outcomes follow `job_ids`' order."""
        by_id: dict[str, RecordOutcome] = {}
        unique = list(dict.fromkeys(job_ids))
        for batch in chunks(unique):
            response = self._mps.query_fp_shot_job_list(QueryFpShotJobListRequest(job_ids=batch))
            for job in response.jobs:
                by_id[job.id] = self.apply(job)
            for missing in response.missing_ids:
                log.warning("job unknown to MPS", extra={"job_id": missing})
                by_id[missing] = RecordOutcome(missing, "missing", reason="NonExistIds")
        return [by_id.get(job_id, RecordOutcome(job_id, "missing", reason="not returned")) for job_id in job_ids]

    def apply(self, job: FpShotJob) -> RecordOutcome:
        """Store one authoritative job. Safe to repeat, and safe against stale or reordered deliveries."""
        now = self._clock()
        if job.unknown_state is not None:
            log.warning("unknown job state: treated as not final", extra={"job_id": job.id, "state": job.unknown_state})
        claim_key = claim_key_from_user_data(job.user_data)
        claim = self._store.get_object(claim_key) if claim_key else None
        record = job_record(job, now=now, claim=claim)
        known = self._store.get_job(job.id)
        if known is not None:
            record.submitted_at = known.submitted_at or record.submitted_at
        if not job.is_final:
            changed = self._store.save_job(record)
            return RecordOutcome(job.id, "pending" if changed else "unchanged", job.state)
        # Matches first: a reader that sees a final job row also sees all of its matches.
        self._store.replace_matches(job.id, match_rows(job))
        changed = self._store.save_job(record)
        if job.state == FAIL:
            self._store.add_failed(
                FailedJob(
                    job_id=job.id,
                    code=job.code or "",
                    message=job.message or "",
                    user_data=job.user_data or "",
                    failed_at=now,
                )
            )
        log.info(
            "job stored",
            extra={"job_id": job.id, "state": job.state, "matches": record.match_count, "changed": changed},
        )
        return RecordOutcome(job.id, "stored" if changed else "unchanged", job.state)
