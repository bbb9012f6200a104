"""The local FC runtime and its durable state: async retries, dead letters, lease-aware redelivery, crash
recovery, timers, and OSS trigger wiring read from template.yml."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from engine.localstack.bucket import BucketError, LocalBucket, StoredObject, validate_key
from engine.localstack.fc_context import FcCredentials
from engine.localstack.fc_runtime import LocalFc, LocalFunction, RetrySchedule, merged_environment, next_fire_after
from engine.localstack.stack import DEFAULT_TEMPLATE, invocations_for, template_parameters
from engine.localstack.state import Enqueue, StackState
from engine.template import load_template
from shared.contracts.events import parse_oss_event
from shared.idempotency import AlreadyInProgress


@pytest.fixture
def state(tmp_path: Path) -> StackState:
    return StackState(tmp_path / "stack.db")


@pytest.fixture
def template(state: StackState):  # type: ignore[no-untyped-def]
    return load_template(DEFAULT_TEMPLATE, template_parameters(state, "media", "cn-shanghai"))


def _fc_with(state: StackState, template, handler) -> tuple[LocalFc, list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    outcomes: list[tuple[str, str]] = []
    done = threading.Condition()

    def record(function: str, invocation: str, outcome: str) -> None:
        with done:
            outcomes.append((invocation, outcome))
            done.notify_all()

    fc = LocalFc(template, state, FcCredentials(), retry=RetrySchedule(base=0.01, cap=0.05), on_invocation=record)
    spec = template.function("submit_on_upload")
    fc.functions = {spec.name: LocalFunction(spec, handler, FcCredentials())}
    fc._done = done  # type: ignore[attr-defined]
    return fc, outcomes


def _wait(fc: LocalFc, predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    cond: threading.Condition = fc._done  # type: ignore[attr-defined]
    with cond:
        return cond.wait_for(predicate, timeout=timeout)


def test_failed_async_invocation_is_retried_then_dead_lettered(state: StackState, template) -> None:  # type: ignore[no-untyped-def]
    calls: list[bytes] = []

    def failing(event: bytes, context: object) -> None:
        calls.append(event)
        raise RuntimeError("boom")

    fc, outcomes = _fc_with(state, template, failing)
    fc.start()
    try:
        fc.invoke_async("submit_on_upload", b"{}")
        assert _wait(fc, lambda: any(o == "dead" for _, o in outcomes))
    finally:
        fc.stop()
    # template: MaxAsyncRetryAttempts 3 → 4 attempts in all
    assert len(calls) == 4
    [(_, function, error)] = state.dead_letters()
    assert function == "submit_on_upload" and "boom" in error


def test_in_progress_is_redelivered_after_the_lease_without_spending_attempts(state: StackState, template) -> None:  # type: ignore[no-untyped-def]
    seen: list[float] = []

    def busy_then_ok(event: bytes, context: object) -> None:
        seen.append(time.time())
        if len(seen) < 6:  # more "busy" answers than the function has attempts
            raise AlreadyInProgress("held by another invocation", retry_at=time.time() + 0.02)

    fc, outcomes = _fc_with(state, template, busy_then_ok)
    fc.start()
    try:
        fc.invoke_async("submit_on_upload", b"{}")
        assert _wait(fc, lambda: any(o == "done" for _, o in outcomes))
    finally:
        fc.stop()
    assert len(seen) == 6 and state.dead_letters() == []


def test_invocations_running_when_the_stack_died_are_recovered(tmp_path: Path) -> None:
    state = StackState(tmp_path / "s.db")
    state.enqueue(Enqueue("f", b"x", max_attempts=2))
    claimed = state.claim_next(["f"], lease_seconds=600)
    assert claimed is not None and state.claim_next(["f"], lease_seconds=600) is None
    state.close()
    again = StackState(tmp_path / "s.db")  # a new process after SIGKILL
    assert again.recover() == 1
    redo = again.claim_next(["f"], lease_seconds=600)
    assert redo is not None and redo.id == claimed.id and redo.payload == b"x"


def test_announce_is_atomic_and_once_per_version(state: StackState) -> None:
    obj = StoredObject("media", "uploads/a.mp4", "ETAG1", 10)
    assert state.announce(obj, 1, [Enqueue("f", b"e1")])
    assert not state.announce(obj, 2, [Enqueue("f", b"e1")])  # same version again: nothing queued
    assert state.announce(StoredObject("media", "uploads/a.mp4", "ETAG2", 11), 3, [Enqueue("f", b"e2")])
    assert state.counts() == {"pending": 2}


def test_oss_triggers_come_from_the_template(state: StackState, template) -> None:  # type: ignore[no-untyped-def]
    lib = invocations_for(
        template, StoredObject("media", "library/电影 a.mp4", "E", 5), "cn-shanghai", "ObjectCreated:PutObject"
    )
    assert [i.function for i in lib] == ["submit_on_upload"]
    record = parse_oss_event(lib[0].payload).events[0]
    assert record.key == "library/电影 a.mp4" and record.bucket == "media" and record.version_tag == "e"
    assert (
        invocations_for(
            template, StoredObject("media", "elsewhere/a.mp4", "E", 5), "cn-shanghai", "ObjectCreated:PutObject"
        )
        == []
    )
    assert (
        invocations_for(
            template, StoredObject("other-bucket", "library/a.mp4", "E", 5), "cn-shanghai", "ObjectCreated:PutObject"
        )
        == []
    )


def test_merged_environment_refuses_conflicts(template) -> None:  # type: ignore[no-untyped-def]
    env = merged_environment(template.functions, {"MPS_ENDPOINT": "http://127.0.0.1:1"})
    assert env["MPS_ENDPOINT"] == "http://127.0.0.1:1"
    assert json.loads(env["FPSCREEN_ROUTES"])[0]["prefix"] == "library/"
    clash = [template.function("submit_on_upload"), template.function("report_failed")]
    clash[1] = clash[1].model_copy(update={"environment": {**clash[1].environment, "MPS_REGION": "elsewhere"}})
    with pytest.raises(ValueError, match="MPS_REGION"):
        merged_environment(clash, {})


def test_timer_expressions() -> None:
    base = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    assert next_fire_after("0 * * * * *", base + 7) == base + 60
    assert next_fire_after("30 */5 * * * *", base) == base + 30
    assert next_fire_after("@every 1m30s", base) == base + 90


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/abs", "a\\b", "", "a/./b"])
def test_bucket_refuses_keys_that_escape(tmp_path: Path, key: str) -> None:
    with pytest.raises(BucketError):
        validate_key(key)
    with pytest.raises(BucketError):
        LocalBucket(tmp_path, "media").path_of(key)


def test_bucket_scan_finds_dropped_files_once_settled(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path, "media")
    dropped = bucket.root / "uploads" / "dropped.mp4"
    dropped.parent.mkdir(parents=True)
    dropped.write_bytes(b"data")
    assert bucket.scan({}, settle_seconds=60) == []  # just written: may still be copying
    [(obj, mtime)] = bucket.scan({}, settle_seconds=0)
    assert obj.key == "uploads/dropped.mp4" and obj.etag == "8D777F385D3DFEC8815D20F7496026DC"
    assert bucket.scan({"uploads/dropped.mp4": (4, mtime)}, settle_seconds=0) == []
