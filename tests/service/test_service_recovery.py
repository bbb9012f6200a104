"""Durability: jobs survive a restart; a job caught mid-analysis is re-run; one service per data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service.conftest import TEXT_ORIGINAL, CoreMps, Oss, make_service, query_jobs, submit


def test_queuing_and_analysing_jobs_finish_after_a_restart(tmp_path: Path, oss: Oss) -> None:
    data = tmp_path / "data"
    with make_service(data, oss, workers=0) as first:
        core = CoreMps(first)
        stored = submit(core, oss.put("text-bucket", "a.txt", TEXT_ORIGINAL), {"PrimaryKey": "a", "SaveType": "save"})
        screened = submit(
            core, oss.put("text-bucket", "b.txt", TEXT_ORIGINAL[:1500]), {"PrimaryKey": "b", "SaveType": "nosave"}
        )
        # As if a worker had picked the first job when the process went down.
        claimed = first.jobs.store.claim_next()
        assert claimed is not None and (claimed.id, claimed.state) == (stored, "Analysing")
    # The table now holds one Analysing and one Queuing job, and nothing runs them.

    with make_service(data, oss, workers=1) as second:
        assert second.wait_for_job(stored).state == "Success"
        assert second.wait_for_job(screened).state == "Success"
        assert second.jobs.store.get(stored).attempts == 2  # interrupted once, run again
        body = query_jobs(CoreMps(second), stored, screened)
        first_job, second_job = body["FpShotJobList"]["FpShotJob"]
        assert first_job["FileId"]  # `save` stored it
        [shot] = second_job["FpShotResult"]["TextFpShots"]["TextFpShot"]
        assert shot["PrimaryKey"] == "a"  # ...and the second job, run after, found it


def test_a_job_interrupted_too_often_fails_instead_of_looping(tmp_path: Path, oss: Oss) -> None:
    data = tmp_path / "data"
    with make_service(data, oss, workers=0) as first:
        job = submit(
            CoreMps(first), oss.put("text-bucket", "a.txt", TEXT_ORIGINAL), {"PrimaryKey": "a", "SaveType": "save"}
        )
        assert first.jobs.store.claim_next() is not None
    with make_service(data, oss, workers=1, max_attempts=1) as second:
        record = second.wait_for_job(job)
        assert (record.state, record.code) == ("Fail", "InternalError")
        assert "interrupted" in (record.message or "")


def test_one_service_per_data_directory(tmp_path: Path, oss: Oss) -> None:
    second = make_service(tmp_path / "data", oss, workers=0)
    with make_service(tmp_path / "data", oss, workers=0), pytest.raises(RuntimeError, match="another engine service"):
        second.start()
    assert not second.running
    with make_service(tmp_path / "data", oss, workers=0) as again:  # released by stop()
        assert again.running
