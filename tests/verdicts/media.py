"""MPS results to judge: built as QueryFpShotJobList returns them (wire JSON, numbers as strings)."""

from __future__ import annotations

from typing import Any

from shared.contracts.mps import FpShotJob


def media_shot(key: str, similarity: float, *slices: tuple[float, float, float, float]) -> dict[str, Any]:
    """`slices`: (input start, duration, library start, similarity)."""
    return {
        "PrimaryKey": key,
        "Similarity": str(similarity),
        "FpShotSlices": {
            "FpShotSlice": [
                {
                    "Input": {"Start": str(start), "Duration": str(duration)},
                    "Duplication": {"Start": str(dup), "Duration": str(duration)},
                    "Similarity": str(sim),
                }
                for start, duration, dup, sim in slices
            ]
        },
    }


def text_shot(key: str, *slices: tuple[float, float, str, str, float]) -> dict[str, Any]:
    """`slices`: (input start, duration, input text, library text, similarity)."""
    return {
        "PrimaryKey": key,
        "Similarity": str(max((s[4] for s in slices), default=0.0)),
        "TextFpShotSlices": {
            "TextFpShotSlice": [
                {
                    "InputText": upload,
                    "DuplicationText": library,
                    "Similarity": str(sim),
                    "InputFragment": {"Start": str(start), "Duration": str(duration)},
                }
                for start, duration, upload, library, sim in slices
            ]
        },
    }


def job(
    *,
    duration: int,
    video: list[dict[str, Any]] | None = None,
    audio: list[dict[str, Any]] | None = None,
    text: list[dict[str, Any]] | None = None,
    text_type: str | None = None,
    key: str = "uploads/clip.mp4",
    job_id: str = "job-1",
) -> FpShotJob:
    result: dict[str, Any] = {}
    if video is not None:
        result["FpShots"] = {"FpShot": video}
    if audio is not None:
        result["AudioFpShots"] = {"FpShot": audio}
    if text is not None:
        result["TextFpShots"] = {"TextFpShot": text}
    config: dict[str, Any] = {"PrimaryKey": "pk-" + job_id, "SaveType": "nosave", "FpDBId": "db-video"}
    if text_type:
        config["TextType"] = text_type
    return FpShotJob.model_validate(
        {
            "Id": job_id,
            "State": "Success",
            "Duration": duration,
            "InputFile": {"Bucket": "media", "Location": "oss-cn-shanghai", "Object": key},
            "FpShotConfig": config,
            "FpShotResult": result,
        }
    )
