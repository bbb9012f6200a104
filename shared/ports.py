"""The ports the services talk to: the MPS API and five focused store ports (`ClaimStore`, `JobStore`,
`MatchStore`, `FailedJobOutbox`, `ParkingLot`; a backend implements all five, `ResultStore`). Adapters live in
`shared.mps` and `shared.store`; services never import an SDK directly, so the same service runs against the
cloud, the local engine, or an in-test double.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from shared.contracts.mps import (
    QueryFpShotJobListRequest,
    QueryFpShotJobListResponse,
    ReportFpShotJobResultRequest,
    ReportFpShotJobResultResponse,
    SubmitFpShotJobRequest,
    SubmitFpShotJobResponse,
)
from shared.vocabulary import ClaimStatus, JobState

# --------------------------------------------------------------------------------------------- MPS


class MpsError(Exception):
    """An MPS call that failed. `retryable` is true for throttling, 5xx and transport errors.

    `maybe_accepted` is true when a non-idempotent call (SubmitFpShotJob) may have taken effect anyway: a
    timeout or broken connection after the request was sent, a 5xx, or an answer we could not read. Such a
    call is never re-sent blindly; the caller reconciles (looks the job up by UserData) first."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int | None = None,
        request_id: str | None = None,
        retryable: bool = False,
        maybe_accepted: bool = False,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.request_id = request_id
        self.retryable = retryable
        self.maybe_accepted = maybe_accepted


class MpsPort(Protocol):
    def submit_fp_shot_job(self, request: SubmitFpShotJobRequest) -> SubmitFpShotJobResponse: ...

    def query_fp_shot_job_list(self, request: QueryFpShotJobListRequest) -> QueryFpShotJobListResponse: ...

    def report_fp_shot_job_result(self, request: ReportFpShotJobResultRequest) -> ReportFpShotJobResultResponse: ...


# ------------------------------------------------------------------------------------------- store


class ClaimOutcome(str, Enum):
    ACQUIRED = "acquired"  # the caller holds the lease and must submit, then complete or release
    IN_PROGRESS = "in_progress"  # someone else holds an unexpired lease: skip, they will finish
    COMPLETED = "completed"  # already submitted: `claim.job_id` is the job


@dataclass(slots=True)
class ObjectClaim:
    """One uploaded object version, claimed before its job is submitted (Powertools-style idempotency)."""

    key: str  # idempotency key: bucket/object@version
    owner: str  # request id of the invocation holding the lease
    status: ClaimStatus
    expires_at: float  # lease expiry (epoch seconds); an expired IN_PROGRESS claim may be taken over
    bucket: str = ""
    object_key: str = ""
    primary_key: str = ""
    fp_db_id: str = ""
    save_type: str = ""
    job_id: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class ClaimResult:
    outcome: ClaimOutcome
    claim: ObjectClaim


@dataclass(slots=True)
class JobRecord:
    """A fingerprint job as last known; `state` only moves forward (Queuing < Analysing < Success|Fail)."""

    job_id: str
    state: JobState
    user_data: str = ""
    primary_key: str = ""
    fp_db_id: str = ""
    save_type: str = ""
    bucket: str = ""
    object_key: str = ""
    pipeline_id: str = ""
    code: str = ""
    message: str = ""
    creation_time: str = ""
    finish_time: str = ""
    duration: float = 0.0
    match_count: int = 0  # matched library items across video, audio and text
    max_similarity: float = 0.0
    result_json: str = ""  # the authoritative FpShotJob, as MPS sent it (wire JSON)
    submitted_at: float = 0.0  # epoch seconds
    updated_at: float = 0.0


@dataclass(slots=True)
class MatchRow:
    """One matched slice: which seconds of the upload copy which seconds of which library item."""

    job_id: str
    slice_id: str  # deterministic within the job: "<kind>:<item index>:<slice index>", e.g. "video:0003:0001"
    kind: str  # "video" | "audio" | "text" (the modality registry owns these names)
    matched_key: str  # the library item's PrimaryKey
    item_similarity: float
    input_start: float
    input_duration: float
    duplication_start: float
    duplication_duration: float
    similarity: float
    input_text: str = ""
    duplication_text: str = ""


@dataclass(slots=True)
class FailedJob:
    """Outbox row: a failed job waiting to be reported with ReportFpShotJobResult."""

    job_id: str
    code: str = ""
    message: str = ""
    user_data: str = ""
    failed_at: float = 0.0
    reported_at: float | None = None
    attempts: int = 0
    last_error: str = ""
    claim_owner: str = ""  # the reporter run holding this row (claim_failed) until claim_expires_at
    claim_expires_at: float = 0.0


@dataclass(slots=True)
class ParkedMessage:
    """A message that could not be processed, kept with its reason instead of being retried forever."""

    message_id: str  # MNS message id, else a hash of the body
    source: str  # e.g. "mns:topic-name"
    reason: str
    body: str
    parked_at: float = 0.0
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class VerdictRecord:
    """A screened upload's verdict: the policy's decision from the match evidence, a reviewer's decision on
    top of it, and the actions applied for it (`shared.verdicts`, `shared.services.actions`)."""

    job_id: str
    object_key: str = ""
    bucket: str = ""
    fp_db_id: str = ""
    verdict: str = ""  # the policy's verdict: block | review | allow
    rule: str = ""  # the policy rule that decided (or "no-match", "below-thresholds", "allow-list:…")
    decided_item: str = ""  # the library item whose evidence decided
    policy_name: str = ""
    policy_version: str = ""  # content hash of the policy that decided
    evidence: dict[str, Any] = field(default_factory=dict)  # shared.verdicts.evidence.Evidence.to_dict()
    review_decision: str = ""  # confirm | dismiss | allowlist ("" until a reviewer decides)
    reviewer: str = ""
    reviewed_at: float = 0.0
    review_note: str = ""
    final_verdict: str = ""  # what the actions follow: the reviewer's decision applied to `verdict`
    actions: dict[str, Any] = field(default_factory=dict)  # what was applied, and for which final verdict
    submitted_at: float = 0.0  # the upload's job, for date filters
    evaluated_at: float = 0.0
    updated_at: float = 0.0


class ClaimStore(Protocol):
    """Object claims: one lease per uploaded object version and library, so each is submitted once."""

    def claim_object(self, claim: ObjectClaim, *, now: float) -> ClaimResult:
        """Insert `claim` if the key is new, or take over an expired IN_PROGRESS lease; else report who has it."""
        ...

    def complete_object(self, key: str, owner: str, job_id: str, *, now: float) -> bool:
        """Mark the claim COMPLETED with its job id; only the lease owner may. False if the lease was lost."""
        ...

    def release_object(self, key: str, owner: str) -> bool:
        """Drop an IN_PROGRESS lease held by `owner` (nothing reached MPS) so a retry can claim it at once."""
        ...

    def suspend_object(self, key: str, owner: str, *, now: float) -> bool:
        """Keep `owner`'s IN_PROGRESS claim as MAYBE_SUBMITTED with its lease expired at `now`: the submit may
        have reached MPS, so the next delivery takes the claim over and reconciles by UserData first.
        False if `owner` no longer holds the lease."""
        ...

    def get_object(self, key: str) -> ObjectClaim | None: ...


class JobStore(Protocol):
    """Fingerprint jobs as last known."""

    def save_job(self, job: JobRecord) -> bool:
        """Insert or advance a job under `shared.vocabulary.overwrite_rule` (a state never moves backwards);
        a write the rule forbids is ignored (returns False)."""
        ...

    def get_job(self, job_id: str) -> JobRecord | None: ...

    def jobs_in_states(self, states: Collection[JobState], *, updated_before: float, limit: int) -> list[JobRecord]:
        """Jobs in one of `states` not updated since `updated_before`, least recently updated first."""
        ...

    def recent_jobs(self, limit: int = 100) -> list[JobRecord]:
        """Newest first (by submitted_at), for review tools."""
        ...

    def jobs_for_item(self, primary_key: str) -> list[JobRecord]:
        """The jobs of one PrimaryKey (a library item's own job: its length, its object), newest first; none for ""."""
        ...


class MatchStore(Protocol):
    """A job's matched slices."""

    def replace_matches(self, job_id: str, rows: list[MatchRow]) -> None:
        """Make the job's match rows exactly `rows` (rewriting the same result gives the same rows)."""
        ...

    def matches_for_job(self, job_id: str) -> list[MatchRow]: ...


class FailedJobOutbox(Protocol):
    """Failed jobs waiting to be reported. The outbox only records; when to retry or give up is the caller's."""

    def add_failed(self, failed: FailedJob) -> bool:
        """Enqueue once: False if the job is already in the outbox (reported or not)."""
        ...

    def pending_failed(self, limit: int, *, max_attempts: int | None = None) -> list[FailedJob]:
        """Unreported failed jobs, oldest first; with `max_attempts`, only those tried fewer times than that."""
        ...

    def claim_failed(self, job_id: str, owner: str, *, now: float, lease_seconds: float) -> bool:
        """Take an unreported row for `owner` until `now + lease_seconds` with a conditional write, so two
        reporter runs never report the same job: True if the row was free (never claimed, or its lease ran
        out) or already `owner`'s; False if it is reported, unknown or held by another run."""
        ...

    def release_failed(self, job_id: str, owner: str) -> bool:
        """Give an unreported row back (its report was refused, so nothing reached MPS): clears the claim, so a
        later run neither waits for the lease nor mistakes it for a run that died mid-report."""
        ...

    def mark_failed_reported(self, job_id: str, *, now: float) -> bool:
        """Set reported_at once; False if it was already reported."""
        ...

    def record_failed_attempt(self, job_id: str, error: str) -> None:
        """Count one failed report (a no-op for a job not in the outbox)."""
        ...

    def get_failed(self, job_id: str) -> FailedJob | None: ...


class ParkingLot(Protocol):
    """Messages that could not be processed, kept with their reason for review."""

    def park_message(self, message: ParkedMessage) -> bool:
        """Keep an unprocessable message; False if the same message id is already parked."""
        ...

    def parked_messages(self, limit: int = 100) -> list[ParkedMessage]:
        """Newest first."""
        ...


class VerdictStore(Protocol):
    """Verdicts per job, for reviewers and actions."""

    def save_verdict(self, verdict: VerdictRecord) -> None:
        """Insert or replace the job's verdict (last writer wins: one writer per job at a time)."""
        ...

    def get_verdict(self, job_id: str) -> VerdictRecord | None: ...

    def recent_verdicts(self, limit: int = 100) -> list[VerdictRecord]:
        """Newest first (by submitted_at)."""
        ...

    def verdicts_for_object(self, object_key: str) -> list[VerdictRecord]:
        """Every verdict of one object key (its uploads over time), newest first; none for ""."""
        ...


class ResultStore(ClaimStore, JobStore, MatchStore, FailedJobOutbox, ParkingLot, VerdictStore, Protocol):
    """Everything one store backend (`shared.store`: SQLite, Tablestore) provides. Services ask for the focused
    ports they use; every write is idempotent and conditional writes make concurrent calls safe."""
