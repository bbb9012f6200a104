"""Issue 10 item 7 through the API: a job over a limit fails with its code in QueryFpShotJobList, the service
keeps working, and a job that keeps crashing the engine is not re-run forever."""

from __future__ import annotations

import pytest

from engine.service.app import EngineService
from engine.service.jobs import FP_SHOT
from tests.service.conftest import TEXT_ORIGINAL, CoreMps, Media, Oss, create_library, query_jobs, submit


def test_jobs_over_the_limits_fail_with_codes_and_the_service_carries_on(
    service: EngineService, core: CoreMps, oss: Oss, media: Media, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = create_library(core, 12)
    monkeypatch.setenv("FPSCREEN_MAX_MEDIA_SECONDS", "2")
    too_long = submit(
        core, oss.put("media-bucket", "long.mp4", media.video), {"PrimaryKey": "a", "FpDBId": lib, "SaveType": "save"}
    )
    assert service.wait_for_job(too_long, timeout=60).state == "Fail"
    monkeypatch.setenv("FPSCREEN_MAX_MEDIA_SECONDS", "0")
    monkeypatch.setenv("FPSCREEN_MAX_INPUT_BYTES", "1000")
    too_big = submit(
        core, oss.put("media-bucket", "big.mp4", media.video), {"PrimaryKey": "b", "FpDBId": lib, "SaveType": "save"}
    )
    assert service.wait_for_job(too_big, timeout=60).state == "Fail"
    monkeypatch.setenv("FPSCREEN_MAX_INPUT_BYTES", "0")
    monkeypatch.setenv("FPSCREEN_JOB_TIMEOUT_SECONDS", "0.001")
    slow = submit(
        core, oss.put("media-bucket", "slow.mp4", media.video), {"PrimaryKey": "c", "FpDBId": lib, "SaveType": "save"}
    )
    assert service.wait_for_job(slow, timeout=60).state == "Fail"

    shown = {job["Id"]: job for job in query_jobs(core, too_long, too_big, slow)["FpShotJobList"]["FpShotJob"]}
    assert shown[too_long]["Code"] == "InvalidInput.TooLong"
    assert "FPSCREEN_MAX_MEDIA_SECONDS" in shown[too_long]["Message"]
    assert shown[too_big]["Code"] == "InvalidInput.TooLarge"
    assert shown[slow]["Code"] == "Timeout"
    assert service.library.list_items(lib) == []

    monkeypatch.setenv("FPSCREEN_JOB_TIMEOUT_SECONDS", "120")
    ok = submit(
        core, oss.put("media-bucket", "fine.mp4", media.video), {"PrimaryKey": "d", "FpDBId": lib, "SaveType": "save"}
    )
    assert service.wait_for_job(ok, timeout=60).state == "Success"
    text = submit(core, oss.put("text-bucket", "fine.txt", TEXT_ORIGINAL), {"PrimaryKey": "t", "SaveType": "save"})
    assert service.wait_for_job(text, timeout=60).state == "Success"


def test_a_job_interrupted_max_attempts_times_fails_instead_of_running_again(
    service: EngineService, core: CoreMps, oss: Oss
) -> None:
    """The crash-loop guard: each claim counts an attempt; recovery fails a job claimed `max_attempts` times."""
    runner = service.jobs
    record = runner.store.create(FP_SHOT, {"InputFile": {}, "FpShotConfig": {}})
    for _ in range(3):  # three service deaths mid-analysis of the same job
        with runner.store._db.write() as db:
            db.execute("UPDATE jobs SET state='Analysing', attempts=attempts+1 WHERE id=?", (record.id,))
        runner.recover()
    final = runner.store.get(record.id)
    assert final is not None and final.state == "Fail" and final.code == "InternalError"
    assert "interrupted 3 times" in (final.message or "")
