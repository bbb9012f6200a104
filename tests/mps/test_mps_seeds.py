"""The documented MPS responses (shared/spec/seeds) parse into the wire models and round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.contracts.mps import QueryFpShotJobListResponse, ReportFpShotJobResultResponse


def seed_json(spec_dir: Path, prefix: str) -> dict:
    """The first complete JSON object with a RequestId in a seed page (its sample success response)."""
    (path,) = (spec_dir / "seeds").glob(f"{prefix}_*.txt")
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict) and "RequestId" in value:
            return value
    raise AssertionError(f"no JSON response in {path}")


@pytest.mark.parametrize("prefix", ["002", "004"])
def test_query_fp_shot_job_list_seed_parses(spec_dir: Path, prefix: str) -> None:
    raw = seed_json(spec_dir, prefix)
    response = QueryFpShotJobListResponse.model_validate(raw)
    (job,) = response.jobs
    assert job.id == "88c6ca184c0e47098a5b665e2a12****" and job.state == "Success" and job.duration == 5
    assert job.fp_shot_config is not None and job.fp_shot_config.fp_db_id == "2288c6ca184c0e47098a5b665e2a12****"
    assert job.input_file is not None and job.input_file.bucket == "oss-test"
    result = job.fp_shot_result
    assert result is not None
    (video,) = result.video_matches()
    assert video.similarity == pytest.approx(0.8914769887924194)
    assert (video.slices[0].input.start, video.slices[0].duplication.start) == (46.0, 1260.0)
    assert result.audio_matches()[0].slices[0].input.duration == 5.0
    assert result.text_matches()[0].slices[0].input_fragment.duration == 3.0
    assert response.missing_ids == ["ae687c02fe944327ba9631e50da23128****"]
    assert response.next_page_token == "b11c171cced04565b1f38f1ecc39****"
    # Emitting it again gives Alibaba's shape: same keys, numbers still strings.
    again = response.to_wire()
    assert again["NonExistIds"] == raw["NonExistIds"]
    assert (
        again["FpShotJobList"]["FpShotJob"][0]["FpShotResult"]["FpShots"]
        == raw["FpShotJobList"]["FpShotJob"][0]["FpShotResult"]["FpShots"]
    )


def test_report_seed_parses(spec_dir: Path) -> None:
    response = ReportFpShotJobResultResponse.model_validate(seed_json(spec_dir, "000"))
    assert response.job_id == "88c6ca184c0e47098a5b665e2a12****"
    assert response.request_id == "25818875-5F78-4A13-BEF6-D7393642CA58"
