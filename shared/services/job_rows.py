"""How an authoritative MPS `FpShotJob` becomes stored rows: one job row and one row per matched slice."""

from __future__ import annotations

from urllib.parse import unquote

from shared.contracts.modalities import MODALITIES
from shared.contracts.mps import FpShot, FpShotJob, TextFpShot
from shared.ports import JobRecord, MatchRow, ObjectClaim


def job_record(job: FpShotJob, *, now: float, claim: ObjectClaim | None = None) -> JobRecord:
    config = job.fp_shot_config
    rows = match_rows(job)
    return JobRecord(
        job_id=job.id,
        state=job.state,
        user_data=job.user_data or "",
        primary_key=(config.primary_key if config else "") or (claim.primary_key if claim else ""),
        fp_db_id=(config.fp_db_id or "") if config else (claim.fp_db_id if claim else ""),
        save_type=(config.save_type if config else "") or (claim.save_type if claim else ""),
        bucket=(job.input_file.bucket if job.input_file else "") or (claim.bucket if claim else ""),
        object_key=(claim.object_key if claim else "") or (unquote(job.input_file.object) if job.input_file else ""),
        pipeline_id=job.pipeline_id or "",
        code=job.code or "",
        message=job.message or "",
        creation_time=job.creation_time or "",
        finish_time=job.finish_time or "",
        duration=float(job.duration or 0),
        match_count=_matched_items(job),
        max_similarity=max((r.item_similarity for r in rows), default=0.0),
        result_json=job.to_wire_json(),
        submitted_at=claim.created_at if claim else now,
        updated_at=now,
    )


def _matched_items(job: FpShotJob) -> int:
    result = job.fp_shot_result
    if result is None:
        return 0
    return sum(len(result.matches_of(spec.name)) for spec in MODALITIES)


def match_rows(job: FpShotJob) -> list[MatchRow]:
    """Deterministic rows: the same result always gives the same slice ids and values."""
    result = job.fp_shot_result
    if result is None or job.state != "Success":
        return []
    rows: list[MatchRow] = []
    for spec in MODALITIES:
        for item_no, shot in enumerate(result.matches_of(spec.name)):
            if spec.shape == "text":
                rows.extend(_text_rows(job.id, spec.name, item_no, shot))  # type: ignore[arg-type]
            else:
                rows.extend(_media_rows(job.id, spec.name, item_no, shot))  # type: ignore[arg-type]
    return rows


def _media_rows(job_id: str, kind: str, item_no: int, shot: FpShot) -> list[MatchRow]:
    return [
        MatchRow(
            job_id=job_id,
            slice_id=f"{kind}:{item_no:04d}:{slice_no:04d}",
            kind=kind,
            matched_key=shot.primary_key,
            item_similarity=shot.similarity,
            input_start=piece.input.start,
            input_duration=piece.input.duration,
            duplication_start=piece.duplication.start,
            duplication_duration=piece.duplication.duration,
            similarity=piece.similarity,
        )
        for slice_no, piece in enumerate(shot.slices)
    ]


def _text_rows(job_id: str, kind: str, item_no: int, shot: TextFpShot) -> list[MatchRow]:
    return [
        MatchRow(
            job_id=job_id,
            slice_id=f"{kind}:{item_no:04d}:{slice_no:04d}",
            kind=kind,
            matched_key=shot.primary_key,
            item_similarity=shot.similarity,
            input_start=piece.input_fragment.start,
            input_duration=piece.input_fragment.duration,
            duplication_start=0.0,  # MPS reports only the input side of a text slice (plus both texts)
            duplication_duration=0.0,
            similarity=piece.similarity,
            input_text=piece.input_text,
            duplication_text=piece.duplication_text,
        )
        for slice_no, piece in enumerate(shot.slices)
    ]
