from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from shared.config import Settings
from shared.contracts.mps import FpShotConfig, InputFile, SubmitFpShotJobRequest
from shared.ports import FailedJob, JobRecord, MpsError
from shared.runtime import Runtime
from shared.services.report import FailedJobReporter
from tests.functions.conftest import context_for
from tests.support.fake_mps import FakeMps

Handler = Callable[[bytes, Any], str]


def _tick(handlers: dict[str, Handler], fake_mps: FakeMps, event: bytes = b"") -> dict[str, Any]:
    return json.loads(handlers["report_failed"](event, context_for(fake_mps, "report_failed")))


def _failed_jobs(runtime: Runtime, n: int, fake_mps: FakeMps) -> list[str]:
    """Jobs MPS ran and failed, already in the outbox."""
    ids = []
    for i in range(n):
        request = SubmitFpShotJobRequest(
            input=InputFile(bucket="media-bucket", location="oss-cn-shanghai", object=f"uploads/bad-{i}.mp4"),
            fp_shot_config=FpShotConfig(primary_key=f"pk{i}", save_type="nosave"),
        )
        job_id = fake_mps.add_job(request, job_id=f"{i + 1:032x}")
        fake_mps.fail(job_id, "InvalidInput.EmptyMedia", "empty")
        ids.append(job_id)
    for i, job_id in enumerate(ids):
        runtime.store.add_failed(FailedJob(job_id=job_id, code="InvalidInput.EmptyMedia", message="empty", failed_at=i))
    return ids


def test_failed_jobs_are_reported_exactly_once(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    ids = _failed_jobs(wired, 3, fake_mps)
    out = _tick(handlers, fake_mps, event_text("timer.json").encode())
    assert out["reported"] == ids and not out["stopped_early"]
    assert [r.job_id for r in fake_mps.reports] == ids
    assert fake_mps.reports[0].result == "InvalidInput.EmptyMedia"
    assert _tick(handlers, fake_mps)["reported"] == []
    assert len(fake_mps.reports) == 3


def test_throttled_report_stops_the_tick_and_resumes_next_time(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps
) -> None:
    ids = _failed_jobs(wired, 2, fake_mps)
    fake_mps.throttle_next(4, action="ReportFpShotJobResult")
    out = _tick(handlers, fake_mps)
    assert out["stopped_early"] and out["reported"] == [] and out["failed"] == [ids[0]]
    assert wired.store.get_failed(ids[0]).attempts == 1
    out = _tick(handlers, fake_mps)
    assert out["reported"] == ids
    assert sorted(r.job_id for r in fake_mps.reports) == ids


def test_reporting_is_time_bounded(wired: Runtime, fake_mps: FakeMps) -> None:
    """With a clock that passes the deadline after two reports, the rest wait for the next tick."""
    ids = _failed_jobs(wired, 5, fake_mps)
    now = [1000.0]

    class CountingMps:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def report_fp_shot_job_result(self, request: Any) -> Any:
            now[0] += 10.0
            return self.inner.report_fp_shot_job_result(request)

    reporter = FailedJobReporter(CountingMps(wired.mps), wired.store, Settings(), clock=lambda: now[0])
    summary = reporter.run(deadline=1015.0)
    assert summary.stopped_early and summary.reported == ids[:2]
    assert [f.job_id for f in wired.store.pending_failed(10)] == ids[2:]


def test_rejected_report_is_not_retried_forever(wired: Runtime, fake_mps: FakeMps) -> None:
    [job_id] = _failed_jobs(wired, 1, fake_mps)
    settings = Settings(report_max_attempts=2)
    reporter = FailedJobReporter(wired.mps, wired.store, settings)
    for _ in range(3):
        fake_mps.fail_next(1, status=400, code="InvalidParameter.ResourceNotFound", action="ReportFpShotJobResult")
        reporter.run(deadline=2e9)
    failed = wired.store.get_failed(job_id)
    assert failed is not None and failed.attempts == 2 and failed.reported_at is None
    assert "InvalidParameter.ResourceNotFound" in failed.last_error


def test_jobs_given_up_on_do_not_starve_newer_ones(
    wired: Runtime, fake_mps: FakeMps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The oldest page of the outbox is all given up on: the reporter still reaches the job behind it."""
    monkeypatch.setattr("shared.services.report.REPORT_PAGE", 2)
    ids = _failed_jobs(wired, 3, fake_mps)
    for job_id in ids[:2]:
        for _ in range(2):
            wired.store.record_failed_attempt(job_id, "InvalidParameter.ResourceNotFound")
    summary = FailedJobReporter(wired.mps, wired.store, Settings(report_max_attempts=2)).run(deadline=2e9)
    assert summary.reported == [ids[2]] and summary.failed == []


def test_sweep_recovers_a_lost_notification(
    handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps, event_text: Callable[..., str]
) -> None:
    out = json.loads(
        handlers["submit_on_upload"](event_text("oss_put_object.json").encode(), context_for(fake_mps, "s"))
    )
    job_id = out["outcomes"][0]["job_id"]
    fake_mps.fail(job_id, "InvalidInput.MediaUndecodable", "corrupt")
    # no notification ever arrives; the row has sat in Queuing for longer than stuck_after_seconds
    job = wired.store.get_job(job_id)
    assert job is not None
    job.updated_at -= 3600
    job.submitted_at -= 3600
    stale = JobRecord(**{f: getattr(job, f) for f in job.__slots__})
    wired.store.save_job(stale)
    out = _tick(handlers, fake_mps)
    assert out["swept"] == 1
    recovered = wired.store.get_job(job_id)
    assert recovered is not None and recovered.state == "Fail"
    assert out["reported"] == [job_id]  # swept into the outbox and reported in the same tick


def test_malformed_timer_event_still_runs(handlers: dict[str, Handler], wired: Runtime, fake_mps: FakeMps) -> None:
    ids = _failed_jobs(wired, 1, fake_mps)
    out = _tick(handlers, fake_mps, b"[not a timer]")
    assert out["reported"] == ids
    assert wired.store.parked_messages()[0].source == "timer"


def test_mps_error_type_is_exported() -> None:
    assert issubclass(MpsError, Exception)


def test_two_timer_runs_at_once_report_each_failed_job_once(wired: Runtime, fake_mps: FakeMps) -> None:
    """Both runs read the same pending page before either reports: the claim decides who reports which row."""
    import threading

    ids = _failed_jobs(wired, 6, fake_mps)
    both_read = threading.Barrier(2, timeout=10)

    class ReadTogether:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def pending_failed(self, limit: int, *, max_attempts: int | None = None) -> Any:
            page = self.inner.pending_failed(limit, max_attempts=max_attempts)
            both_read.wait()
            return page

    summaries: list[Any] = []
    runs = [
        threading.Thread(
            target=lambda: summaries.append(
                FailedJobReporter(wired.mps, ReadTogether(wired.store), Settings()).run(deadline=2e9)  # type: ignore[arg-type]
            )
        )
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=30)
    assert sorted(r.job_id for r in fake_mps.reports) == ids  # each exactly once
    assert sorted(job for s in summaries for job in s.reported) == ids


def test_a_report_whose_answer_is_lost_is_not_sent_again(wired: Runtime, fake_mps: FakeMps) -> None:
    [job_id] = _failed_jobs(wired, 1, fake_mps)
    fake_mps.accept_then_fail_next(1, action="ReportFpShotJobResult", status=0)
    reporter = FailedJobReporter(wired.mps, wired.store, Settings())
    assert reporter.run(deadline=2e9).failed == [job_id]
    assert reporter.run(deadline=2e9).reported == []
    assert len(fake_mps.reports) == 1  # at most once
    row = wired.store.get_failed(job_id)
    assert row is not None and row.reported_at is not None and "SDK.HttpError" in row.last_error


def test_a_row_whose_reporter_died_mid_report_is_closed_not_resent(wired: Runtime, fake_mps: FakeMps) -> None:
    """A run claimed the row, then died (SIGKILL, timeout) before marking it: it may have reported. The next run
    after the lease does not report again (at most once) and leaves the reason on the row."""
    [job_id] = _failed_jobs(wired, 1, fake_mps)
    assert wired.store.claim_failed(job_id, "dead-run", now=1000.0, lease_seconds=10)
    summary = FailedJobReporter(wired.mps, wired.store, Settings(claim_lease_seconds=10)).run(deadline=2e9)
    assert summary.failed == [job_id] and summary.reported == []
    assert fake_mps.reports == []
    row = wired.store.get_failed(job_id)
    assert row is not None and row.reported_at is not None and "dead-run stopped mid-report" in row.last_error
