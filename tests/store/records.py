"""Record makers for the store tests: complete records, every field set, so round trips check every column."""

from __future__ import annotations

import json

from shared.ports import FailedJob, JobRecord, MatchRow, ObjectClaim, ParkedMessage


def make_claim(key: str, owner: str, *, now: float, lease: float = 30.0) -> ObjectClaim:
    return ObjectClaim(
        key=key,
        owner=owner,
        status="IN_PROGRESS",
        expires_at=now + lease,
        bucket="media",
        object_key=f"uploads/{key}.mp4",
        primary_key=f"pk-{key}",
        fp_db_id="db-1",
        save_type="nosave",
        created_at=now,
        updated_at=now,
    )


def make_job(
    job_id: str, state: str, *, updated_at: float = 100.0, submitted_at: float = 100.0, **extra: object
) -> JobRecord:
    fields: dict[str, object] = {
        "user_data": f"ud-{job_id}",
        "primary_key": f"pk-{job_id}",
        "fp_db_id": "db-1",
        "save_type": "nosave",
        "bucket": "media",
        "object_key": f"uploads/{job_id}.mp4",
        "pipeline_id": "pipe-1",
        "creation_time": "2026-11-22T03:00:00Z",
        "duration": 12.5,
        "result_json": json.dumps({"Id": job_id}),
    }
    fields.update(extra)
    return JobRecord(job_id=job_id, state=state, submitted_at=submitted_at, updated_at=updated_at, **fields)  # type: ignore[arg-type]


def make_match(job_id: str, n: int, *, kind: str = "video", similarity: float = 0.9) -> MatchRow:
    return MatchRow(
        job_id=job_id,
        slice_id=f"{kind}:{n // 10:04d}:{n % 10:04d}",
        kind=kind,
        matched_key=f"lib-{n // 10}",
        item_similarity=similarity,
        input_start=float(n),
        input_duration=2.0,
        duplication_start=float(n) + 0.5,
        duplication_duration=2.0,
        similarity=similarity,
        input_text="hello" if kind == "text" else "",
        duplication_text="hallo" if kind == "text" else "",
    )


def make_failed(job_id: str, *, failed_at: float, reported_at: float | None = None) -> FailedJob:
    return FailedJob(
        job_id=job_id,
        code="InvalidInput",
        message="the input file is not a video",
        user_data=f"ud-{job_id}",
        failed_at=failed_at,
        reported_at=reported_at,
    )


def make_parked(message_id: str, *, parked_at: float, reason: str = "bad json") -> ParkedMessage:
    return ParkedMessage(
        message_id=message_id,
        source="mns:fp-results",
        reason=reason,
        body='{"not": "a job"}',
        parked_at=parked_at,
        attrs={"DequeueCount": "3", "PublishTime": "1700000000"},
    )
