"""Finished jobs of a pipeline with a NotifyConfig are published to MNS (local MNS server, official SDK), reliably."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from mns.account import Account
from mns.queue import QueueMeta
from mns.subscription import SubscriptionMeta
from mns.topic import TopicMeta

from engine.service.app import EngineService
from shared.contracts.notify import parse_fp_shot_job_notify
from tests.service.conftest import AK, SK, TEXT_ORIGINAL, CoreMps, Oss, input_json, make_service, submit

mns_server = pytest.importorskip("engine.localstack.mns")
TOPIC, SINK, QUEUE = "mts-topic", "topic-sink", "mts-queue"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(mns: object) -> None:
    """A topic fanned out raw into a queue we can read, plus a queue for direct notifications."""
    account: Account = mns.account()  # type: ignore[attr-defined]
    account.get_topic(TOPIC).create(TopicMeta())
    account.get_queue(SINK).create(QueueMeta())
    account.get_queue(QUEUE).create(QueueMeta())
    subscription = SubscriptionMeta(mns.queue_endpoint(SINK), notify_content_format="SIMPLIFIED")  # type: ignore[attr-defined]
    account.get_topic(TOPIC).get_subscription("sink").subscribe(subscription)


@pytest.fixture
def mns_db(tmp_path: Path) -> Path:
    return tmp_path / "mns.db"


@pytest.fixture
def mns(mns_db: Path) -> Iterator[object]:
    with mns_server.MnsServer(mns_db, credentials={AK: SK}) as server:
        _prepare(server)
        yield server


def _topic_messages(mns: object, count: int) -> list[bytes | str]:
    queue = Account(mns.endpoint, AK, SK).get_queue(SINK)  # type: ignore[attr-defined]
    queue.set_encoding(False)  # a topic pushes bodies as they were published
    return [queue.receive_message(wait_seconds=5).message_body for _ in range(count)]


def _pipeline(core: CoreMps, notify: dict[str, str]) -> str:
    return core.common("AddPipeline", Name="dna", Speed="AIVideoFPShot", NotifyConfig=json.dumps(notify))["Pipeline"][
        "Id"
    ]


def test_finished_jobs_are_published_to_the_pipeline_topic(tmp_path: Path, oss: Oss, mns: object) -> None:
    with make_service(tmp_path / "data", oss, mns_endpoint=mns.endpoint) as service:  # type: ignore[attr-defined]
        core = CoreMps(service)
        pipeline = _pipeline(core, {"Topic": TOPIC})
        document = oss.put("text-bucket", "a.txt", TEXT_ORIGINAL)
        stored = submit(core, document, {"PrimaryKey": "a", "SaveType": "save"}, PipelineId=pipeline, UserData="n1")
        assert service.wait_for_notification(stored, timeout=10) is not None
        failed = submit(
            core, input_json("text-bucket", "gone.txt"), {"PrimaryKey": "g", "SaveType": "save"}, PipelineId=pipeline
        )
        copy = submit(core, document, {"PrimaryKey": "c", "SaveType": "nosave"}, PipelineId=pipeline)
        unnotified = submit(core, document, {"PrimaryKey": "x", "SaveType": "nosave"})  # no pipeline: no message
        for job in (failed, copy):
            assert service.wait_for_notification(job, timeout=10) is not None
        assert service.wait_for_job(unnotified).notified_at is None
        assert service.jobs.store.get(copy).notified_at is not None

        bodies = {}
        for raw in _topic_messages(mns, 3):
            note = parse_fp_shot_job_notify(raw)
            bodies[note.job_id] = (note, json.loads(raw))
        assert set(bodies) == {stored, failed, copy}
        note, wire = bodies[stored]
        assert (note.type, note.state, note.user_data, note.code) == ("FpShot", "Success", "n1", None)
        assert set(wire) == {"Type", "JobId", "State", "UserData"}  # small: the result is queried, not sent
        note, wire = bodies[failed]
        assert (note.state, note.code) == ("Fail", "InvalidInput.NotFound")
        assert "oss://text-bucket/gone.txt" in (note.message or "")
        _, wire = bodies[copy]
        assert wire["State"] == "Success" and len(json.dumps(wire)) < 1024


def test_queue_notifications_are_base64_by_sdk_default(tmp_path: Path, oss: Oss, mns: object) -> None:
    with make_service(tmp_path / "data", oss, mns_endpoint=mns.endpoint) as service:  # type: ignore[attr-defined]
        core = CoreMps(service)
        pipeline = _pipeline(core, {"QueueName": QUEUE})
        job = submit(
            core,
            oss.put("text-bucket", "a.txt", TEXT_ORIGINAL),
            {"PrimaryKey": "a", "SaveType": "save"},
            PipelineId=pipeline,
        )
        assert service.wait_for_notification(job, timeout=10) is not None
    queue = Account(mns.endpoint, AK, SK).get_queue(QUEUE)  # type: ignore[attr-defined]
    queue.set_encoding(False)
    raw = queue.receive_message(wait_seconds=5).message_body
    assert not raw.lstrip().startswith("{")  # base64 on the wire...
    note = parse_fp_shot_job_notify(raw)  # ...which consumers decode defensively
    assert (note.job_id, note.state) == (job, "Success")


def test_notifications_wait_in_the_outbox_until_mns_is_back(tmp_path: Path, oss: Oss, mns_db: Path) -> None:
    """MNS down when the jobs finish: nothing is lost; background retries deliver one, a restart the other."""
    port = _free_port()
    with mns_server.MnsServer(mns_db, port=port, credentials={AK: SK}) as mns:
        _prepare(mns)
        endpoint = mns.endpoint
    # MNS is down from here on.
    data = tmp_path / "data"
    with make_service(data, oss, mns_endpoint=endpoint) as service:
        core = CoreMps(service)
        pipeline = _pipeline(core, {"Topic": TOPIC})
        document = oss.put("text-bucket", "a.txt", TEXT_ORIGINAL)
        first = submit(core, document, {"PrimaryKey": "a", "SaveType": "nosave"}, PipelineId=pipeline)
        failing = service.wait_for_notification(first, timeout=10, failed_attempts=2)  # retried in the background
        assert failing is not None and failing.sent_at is None and "refused" in (failing.last_error or "")
        assert service.jobs.store.get(first).notified_at is None
        assert service.pending_notifications() == 1
    # Stopped with the notification still owed; MNS comes back; a new service on the same data dir sends it.
    with mns_server.MnsServer(mns_db, port=port, credentials={AK: SK}) as mns:
        with make_service(data, oss, mns_endpoint=endpoint) as service:
            row = service.wait_for_notification(first, timeout=10)
            assert row is not None and row.sent_at is not None and row.last_error is None
            assert service.jobs.store.get(first).notified_at is not None

            # Background retry, no restart: MNS goes away, a job finishes, MNS returns.
            mns.stop()
            second = submit(CoreMps(service), document, {"PrimaryKey": "b", "SaveType": "nosave"}, PipelineId=pipeline)
            service.wait_for_job(second)
            mns.start()
            assert service.wait_for_notification(second, timeout=10) is not None
            assert service.pending_notifications() == 0
        assert {parse_fp_shot_job_notify(raw).job_id for raw in _topic_messages(mns, 2)} == {first, second}


def test_without_an_mns_endpoint_notifications_are_kept(service: EngineService, oss: Oss) -> None:
    core = CoreMps(service)
    pipeline = _pipeline(core, {"Topic": TOPIC})
    job = submit(
        core,
        oss.put("text-bucket", "a.txt", TEXT_ORIGINAL),
        {"PrimaryKey": "a", "SaveType": "nosave"},
        PipelineId=pipeline,
    )
    assert service.wait_for_job(job).state == "Success"
    assert service.pending_notifications() == 1
