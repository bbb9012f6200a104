"""The whole product on one machine: bucket → OSS trigger → submit_on_upload → engine (MPS API) → MNS topic →
store_results → SQLite; timer → report_failed. Same function code as in the cloud, official SDKs on the wire."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.localstack.fc_runtime import RetrySchedule
from engine.localstack.results import ScreeningResult, screening_results
from engine.localstack.stack import LocalStack, StackPaths, StackSettings


def _final(stack: LocalStack, keys: list[str]) -> bool:
    rows = {r.upload: r for r in screening_results(stack.results_store())}
    return all(k in rows and rows[k].verdict != "pending" for k in keys)


def _by_key(stack: LocalStack) -> dict[str, ScreeningResult]:
    return {r.upload: r for r in screening_results(stack.results_store())}


@pytest.fixture
def stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = StackSettings(
        StackPaths.under(tmp_path / "data"), retry=RetrySchedule(base=0.2, cap=2.0), mns_retry_scale=0.01
    )
    with LocalStack(settings) as running:
        yield running


def test_upload_screen_store_and_report(stack: LocalStack, stack_media: dict[str, Path]) -> None:
    stack.upload(stack_media["library"], "library/film.mp4")
    assert stack.wait(lambda: _final(stack, ["library/film.mp4"]), timeout=120)
    assert _by_key(stack)["library/film.mp4"].verdict == "stored"

    uploads = {"uploads/copy.mp4": "copy", "uploads/other.mp4": "unrelated", "uploads/corrupt.mp4": "corrupt"}
    for key, name in uploads.items():
        stack.upload(stack_media[name], key)
    assert stack.wait(lambda: _final(stack, list(uploads)), timeout=120)
    results = _by_key(stack)

    copy = results["uploads/copy.mp4"]
    assert copy.verdict == "copy"
    [item] = copy.matches
    assert item.library_object == "library/film.mp4"
    video = max((s for s in item.slices if s.kind == "video"), key=lambda s: s.input_end - s.input_start)
    assert abs(video.input_start - 0.0) <= 1.0 and abs(video.input_end - 10.0) <= 1.0
    assert abs(video.library_start - 6.0) <= 1.0 and abs(video.library_end - 16.0) <= 1.0

    assert results["uploads/other.mp4"].verdict == "clean"
    failed = results["uploads/corrupt.mp4"]
    assert failed.verdict == "failed" and failed.code.startswith("InvalidInput")

    # the timer reports the failed job to MPS exactly once, however often it fires
    stack.tick_timers()
    stack.tick_timers()
    assert len(stack.engine.jobs.store.reports(failed.job_id)) == 1
    stored = stack.results_store().get_failed(failed.job_id)
    assert stored is not None and stored.reported_at is not None


def test_file_dropped_into_the_bucket_directory_is_screened(stack: LocalStack, stack_media: dict[str, Path]) -> None:
    target = stack.bucket_dir.root / "uploads" / "dropped.mp4"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(stack_media["unrelated"], target)
    assert stack.wait(lambda: _final(stack, ["uploads/dropped.mp4"]), timeout=120)
    assert _by_key(stack)["uploads/dropped.mp4"].verdict == "clean"
    # a second scan of the unchanged file announces nothing
    assert stack.scan_once() == 0


def test_keys_outside_the_templates_triggers_are_ignored(stack: LocalStack, stack_media: dict[str, Path]) -> None:
    _, fresh = stack.upload(stack_media["unrelated"], "scratch/notes.mp4")
    assert fresh  # announced as an object version, but no trigger fires for it
    assert stack.state.counts().get("pending", 0) == 0
