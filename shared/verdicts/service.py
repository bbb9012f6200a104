"""Verdicts: evidence from a stored result → the library's policy → a verdict, a reviewer's decision on top,
and the actions that follow (`shared.services.actions`).

`evaluate(job_id)` runs after a job's result is stored and again whenever a policy changes (`reevaluate`):
the evidence is computed from the stored authoritative result (`JobRecord.result_json`), never by
fingerprinting again. A reviewer's decision survives re-evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, Protocol

from shared.contracts.modalities import MODALITIES
from shared.log import get_logger
from shared.ports import JobRecord, JobStore, VerdictRecord, VerdictStore
from shared.services.actions import ActionRunner
from shared.verdicts.evidence import Evidence, job_evidence, job_from_result_json
from shared.verdicts.policy import Policy, decide, policy_for
from shared.vocabulary import SUCCESS

log = get_logger("fpscreen.verdicts")

ReviewDecision = Literal["confirm", "dismiss", "allowlist"]
REVIEW_DECISIONS: tuple[str, ...] = ("confirm", "dismiss", "allowlist")
# Jobs that store into a library are library items, not screened uploads: they get no verdict.
LIBRARY_SAVE_TYPES = frozenset({"forcesave", "save", "onlysave"})


class VerdictStores(JobStore, VerdictStore, Protocol):
    """What verdicts read (jobs, with their stored results) and write (verdicts)."""


def final_verdict(verdict: str, decision: str) -> str:
    """A reviewer's decision over the policy's verdict: confirm → block, dismiss or allow-list → allow."""
    if decision == "confirm":
        return "block"
    if decision in ("dismiss", "allowlist"):
        return "allow"
    return verdict


class VerdictService:
    def __init__(
        self,
        store: VerdictStores,
        policies: Sequence[Policy],
        actions: ActionRunner | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._policies = list(policies)
        self._actions = actions
        self._clock = clock
        self._library_lengths: dict[str, float] = {}

    def library_lengths(self, primary_keys: Iterable[str]) -> dict[str, float]:
        """Lengths of the library items `primary_keys` (MPS reports none with a match), from each item's own
        stored job: one indexed look-up per item (`jobs_for_item`), cached for the service's life."""
        for key in primary_keys:
            if key and key not in self._library_lengths:
                stored = [j for j in self._store.jobs_for_item(key) if j.save_type in LIBRARY_SAVE_TYPES]
                self._library_lengths[key] = next((j.duration for j in stored if j.duration > 0), 0.0)
        return {k: v for k, v in self._library_lengths.items() if v > 0}

    def evidence_for(self, job: JobRecord) -> Evidence:
        fp_job = job_from_result_json(job.result_json)
        if fp_job is None:
            return Evidence(upload_length=job.duration, unit="s")
        matched: set[str] = set()
        if job.match_count and fp_job.fp_shot_result is not None:  # no match: no library look-up
            matched = {shot.primary_key for spec in MODALITIES for shot in fp_job.fp_shot_result.matches_of(spec.name)}
        lengths = self.library_lengths(sorted(matched))
        return job_evidence(fp_job, object_key=job.object_key, library_lengths=lengths)

    def evaluate(self, job_id: str) -> VerdictRecord | None:
        """Decide (or re-decide) the job's verdict and apply its actions; None for jobs that get no verdict."""
        job = self._store.get_job(job_id)
        if job is None or job.state != SUCCESS or job.save_type in LIBRARY_SAVE_TYPES:
            return None
        policy = policy_for(self._policies, job.fp_db_id)
        evidence = self.evidence_for(job)
        decision = decide(policy, evidence, object_key=job.object_key)
        known = self._store.get_verdict(job_id)
        now = self._clock()
        record = VerdictRecord(
            job_id=job.job_id,
            object_key=job.object_key,
            bucket=job.bucket,
            fp_db_id=job.fp_db_id,
            verdict=decision.verdict,
            rule=decision.rule,
            decided_item=decision.primary_key,
            policy_name=policy.name,
            policy_version=policy.version,
            evidence=evidence.to_dict(),
            submitted_at=job.submitted_at,
            evaluated_at=now,
            updated_at=now,
        )
        if known is not None:  # the reviewer's word and what was already done both carry over
            record.review_decision, record.reviewer = known.review_decision, known.reviewer
            record.reviewed_at, record.review_note = known.reviewed_at, known.review_note
            record.actions = dict(known.actions)
        elif decision.verdict != "allow" and self._allowlisted_by_reviewer(job):
            record.review_decision, record.reviewer = "allowlist", "(allow-listed key)"
            record.reviewed_at = now
        record.final_verdict = final_verdict(record.verdict, record.review_decision)
        return self._act(record, policy)

    def _allowlisted_by_reviewer(self, job: JobRecord) -> bool:
        """A reviewer allow-listed an earlier upload of this very key (a re-upload is allowed too)."""
        return any(
            v.review_decision == "allowlist"
            for v in self._store.verdicts_for_object(job.object_key)  # an indexed look-up, not a scan
            if v.job_id != job.job_id
        )

    def review(self, job_id: str, decision: str, *, reviewer: str, note: str = "") -> VerdictRecord:
        """Record a reviewer's decision (who, when) and let the final verdict and actions follow it."""
        if decision not in REVIEW_DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(REVIEW_DECISIONS)}, not {decision!r}")
        if not reviewer.strip():
            raise ValueError("a decision needs a reviewer")
        record = self._store.get_verdict(job_id)
        if record is None:
            record = self.evaluate(job_id)
            if record is None:
                raise LookupError(f"no verdict for job {job_id!r}")
        record.review_decision, record.reviewer = decision, reviewer.strip()
        record.reviewed_at, record.review_note = self._clock(), note
        record.final_verdict = final_verdict(record.verdict, decision)
        record.updated_at = record.reviewed_at
        log.info("review decision", extra={"job_id": job_id, "decision": decision, "reviewer": record.reviewer})
        return self._act(record, policy_for(self._policies, record.fp_db_id))

    def _act(self, record: VerdictRecord, policy: Policy) -> VerdictRecord:
        # Stored before acting, so a reader sees the verdict even while its actions are retried.
        self._store.save_verdict(record)
        if self._actions is not None:
            try:
                record = self._actions.apply(record, policy.actions)
            finally:
                self._store.save_verdict(record)  # what was applied (and any error) is recorded either way
        return record

    def reevaluate(self, limit: int = 10_000) -> list[VerdictRecord]:
        """Re-decide every screened job under the current policies (after a policy change)."""
        self._library_lengths = {}
        records = []
        for job in self._store.recent_jobs(limit):
            record = self.evaluate(job.job_id)
            if record is not None:
                records.append(record)
        return records
