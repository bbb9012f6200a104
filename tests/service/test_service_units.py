"""The pieces on their own: input resolution, the job table's state machine, notification bodies and backoff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import EmptyMedia, MediaNotFound
from engine.service.db import ServiceDb
from engine.service.inputs import InputRefused, object_key, open_input, resolve_input
from engine.service.jobs import FP_SHOT, JobFinish, JobStore
from engine.service.notify import Backoff, Notification, Outbox, fp_shot_notify_body
from shared.contracts.mps import InputFile
from shared.contracts.notify import parse_fp_shot_job_notify


def _input(bucket: str, key: str) -> InputFile:
    return InputFile(bucket=bucket, location="oss-cn-shanghai", object=key)


def test_object_keys_are_url_decoded_once() -> None:
    assert object_key("a%20b/c%2Bd.mp4") == "a b/c+d.mp4"
    assert object_key("a+b.mp4") == "a+b.mp4"  # raw keys with "+" keep it
    assert object_key("%252e%252e/x") == "%2e%2e/x"  # decoded once: a literal name, not a way up
    assert object_key("dir/..hidden/x") == "dir/..hidden/x"


@pytest.mark.parametrize(
    "key", ["..", "a/../../b", "%2e%2E/b", "/abs", "%2Fabs", "\\\\server\\share", "C:/x", "", "a\x00b"]
)
def test_escaping_keys_are_refused(key: str) -> None:
    with pytest.raises(InputRefused):
        object_key(key)


def test_resolution_stays_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "oss"
    (root / "bucket-1" / "dir").mkdir(parents=True)
    (root / "bucket-1" / "dir" / "x.txt").write_text("x", encoding="utf-8")
    (root / "bucket-1" / "empty.txt").write_bytes(b"")
    (root / "bucket-1" / "up").symlink_to(tmp_path)
    assert resolve_input(root, _input("bucket-1", "dir/x.txt")) == (root / "bucket-1" / "dir" / "x.txt").resolve()
    assert open_input(root, _input("bucket-1", "dir%2Fx.txt")).read_text(encoding="utf-8") == "x"
    (tmp_path / "secret.txt").write_text("s", encoding="utf-8")
    with pytest.raises(InputRefused):
        resolve_input(root, _input("bucket-1", "up/secret.txt"))  # a symlinked directory leading outside
    # Only where a path ends up counts: out through a symlink and back in is still inside.
    assert resolve_input(root, _input("bucket-1", "up/oss/bucket-1/dir/x.txt")).read_text(encoding="utf-8") == "x"
    with pytest.raises(MediaNotFound):
        open_input(root, _input("bucket-1", "dir/none.txt"))
    with pytest.raises(MediaNotFound):
        open_input(root, _input("bucket-1", "dir"))
    with pytest.raises(EmptyMedia):
        open_input(root, _input("bucket-1", "empty.txt"))


def test_job_states_only_move_forward(tmp_path: Path) -> None:
    db = ServiceDb(tmp_path / "service.db")
    store = JobStore(db)
    first = store.create(FP_SHOT, {"n": 1}, user_data="u")
    second = store.create(FP_SHOT, {"n": 2})
    assert (first.state, first.attempts, len(first.id)) == ("Queuing", 0, 32)
    assert store.finish(first.id, JobFinish("Success")) is None  # not Analysing yet

    claimed = store.claim_next()
    assert claimed is not None and (claimed.id, claimed.state, claimed.attempts) == (first.id, "Analysing", 1)
    note = Notification("topic", "t", "{}")
    done = store.finish(first.id, JobFinish("Fail", None, "InvalidInput.NotFound", "gone", note))
    assert done is not None and (done.state, done.code, done.message) == ("Fail", "InvalidInput.NotFound", "gone")
    assert store.finish(first.id, JobFinish("Success")) is None  # a final state is final
    assert Outbox(db).get(first.id) is not None  # written with the final state

    assert store.claim_next().id == second.id  # type: ignore[union-attr]
    assert store.claim_next() is None
    assert [job.id for job in store.interrupted()] == [second.id]
    assert store.requeue(second.id) and store.get(second.id).state == "Queuing"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        store.finish(second.id, JobFinish("Analysing"))
    db.close()


def test_notification_body_is_flat_pascal_case_small_and_parses() -> None:
    body = fp_shot_notify_body("j" * 32, "Success", user_data="u")
    assert json.loads(body) == {"Type": "FpShot", "JobId": "j" * 32, "State": "Success", "UserData": "u"}
    assert parse_fp_shot_job_notify(body).job_id == "j" * 32
    failed = json.loads(fp_shot_notify_body("j", "Fail", code="C", message="M" * 100_000))
    assert failed == {"Type": "FpShot", "JobId": "j", "State": "Fail", "Code": "C", "Message": "M" * 1000}


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(base=0.5, cap=3.0)
    assert [backoff.ceiling(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert [backoff.delay(n, 0.5) for n in range(1, 6)] == [0.25, 0.5, 1.0, 1.5, 1.5]  # full jitter


class _MnsRefusal(Exception):
    """What the MNS SDK raises: an error `type` and `message`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.type, self.message = kind, message


@pytest.mark.parametrize(("kind", "gives_up"), [("InvalidArgument", True), ("ServiceUnavailable", False)])
def test_a_message_mns_refuses_for_good_is_given_up_not_retried_forever(
    tmp_path: Path, kind: str, gives_up: bool
) -> None:
    import threading

    from engine.service.notify import Notifier

    db = ServiceDb(tmp_path / "service.db")
    store = JobStore(db)
    job = store.create(FP_SHOT, {"n": 1})
    store.claim_next()
    store.finish(job.id, JobFinish("Success", None, None, None, Notification("topic", "t", "x" * 70_000)))
    calls: list[int] = []
    tried = threading.Event()

    def refuse(target_kind: str, target_name: str, body: str) -> None:
        calls.append(len(body))
        tried.set()
        raise _MnsRefusal(kind, "The length of message should between 1 and 65536 bytes.")

    notifier = Notifier(Outbox(db), refuse, backoff=Backoff(base=60.0, cap=60.0))
    notifier.start()
    try:
        row = notifier.wait_for(job.id, timeout=10, failed_attempts=1)
    finally:
        notifier.stop()
    assert tried.is_set() and row is not None and len(calls) == 1
    if gives_up:
        assert row.sent_at is not None and row.last_error is not None and row.last_error.startswith("gave up: ")
        assert Outbox(db).pending_count() == 0
    else:
        assert row.sent_at is None and Outbox(db).pending_count() == 1  # transient: retried after the backoff
    db.close()
