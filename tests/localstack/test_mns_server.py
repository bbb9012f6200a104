"""The local MNS endpoint, driven by the unmodified aliyun-mns-sdk over loopback."""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mns.account import Account
from mns.auth import Credentials
from mns.mns_client import MNSClient
from mns.mns_exception import MNSServerException
from mns.queue import Message, Queue, QueueMeta
from mns.subscription import SubscriptionMeta
from mns.topic import TopicMessage, TopicMeta

from engine.localstack.mns import MnsServer, RetryPolicy, sign
from engine.localstack.mns import store as mns_store
from shared.contracts.events import parse_mns_topic_event

AK, SK = "test-ak", "test-secret"
FAST = RetryPolicy(backoff_delay=(0.05, 0.05), exponential_first=0.05, exponential_cap=0.2)


def md5_upper(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "mns.db"


@pytest.fixture
def server(db_path: Path) -> Iterator[MnsServer]:
    with MnsServer(db_path, credentials={AK: SK}, retry_policy=FAST) as srv:
        yield srv


@pytest.fixture
def account(server: MnsServer) -> Account:
    return Account(server.endpoint, AK, SK)


@pytest.fixture
def make_queue(account: Account) -> Callable[..., Queue]:
    def make(name: str = "jobs", **meta: Any) -> Queue:
        queue = account.get_queue(name)
        queue.create(QueueMeta(**meta))
        return queue

    return make


def mns_error(call: Callable[[], Any]) -> MNSServerException:
    with pytest.raises(MNSServerException) as info:
        call()
    return info.value


class Recorder:
    """A local-subscriber callback: records events, fails the first `failures` calls, signals each call."""

    def __init__(self, failures: int = 0) -> None:
        self.events: list[bytes] = []
        self.times: list[float] = []
        self.failures = failures
        self.called = threading.Condition()

    def __call__(self, event: bytes) -> None:
        with self.called:
            self.events.append(event)
            self.times.append(time.monotonic())
            self.called.notify_all()
        if len(self.events) <= self.failures:
            raise RuntimeError(f"boom {len(self.events)}")

    def wait_calls(self, n: int, timeout: float = 5.0) -> bool:
        with self.called:
            return self.called.wait_for(lambda: len(self.events) >= n, timeout)


# -- queues ---------------------------------------------------------------------------------------------------


def test_send_receive_delete_base64_encoded(make_queue: Callable[..., Queue]) -> None:
    queue = make_queue()
    sent = queue.send_message(Message("héllo wörld"))
    on_wire = base64.b64encode("héllo wörld".encode()).decode()  # what the SDK sent and MNS hashes
    assert sent.message_body_md5 == md5_upper(on_wire)

    before = int(time.time() * 1000)
    msg = queue.receive_message()
    assert msg.message_body == "héllo wörld".encode()  # decoded back, as bytes (reference Part 2 §4)
    assert (msg.message_id, msg.message_body_md5, msg.dequeue_count, msg.priority) == (
        sent.message_id,
        sent.message_body_md5,
        1,
        8,
    )
    assert msg.enqueue_time <= msg.first_dequeue_time
    assert before - 1000 <= msg.first_dequeue_time <= int(time.time() * 1000)
    assert 29_000 <= msg.next_visible_time - msg.first_dequeue_time <= 30_500  # default VisibilityTimeout 30 s

    queue.delete_message(msg.receipt_handle)
    assert mns_error(queue.receive_message).type == "MessageNotExist"  # PollingWaitSeconds 0: answers at once
    assert mns_error(lambda: queue.delete_message(msg.receipt_handle)).type == "MessageNotExist"


def test_raw_bodies_with_encoding_off(make_queue: Callable[..., Queue]) -> None:
    queue = make_queue()
    queue.set_encoding(False)
    body = '<job id="1">a & b</job>'
    sent = queue.send_message(Message(body))
    assert sent.message_body_md5 == md5_upper(body)
    assert queue.peek_message().message_body == body
    msg = queue.receive_message()
    assert msg.message_body == body and msg.message_body_md5 == md5_upper(body)


def test_empty_receive_waits_then_message_not_exist(make_queue: Callable[..., Queue]) -> None:
    queue = make_queue()
    started = time.monotonic()
    error = mns_error(lambda: queue.receive_message(wait_seconds=1))
    assert error.type == "MessageNotExist" and error.request_id and error.host_id
    assert time.monotonic() - started >= 0.95


def test_long_poll_returns_as_soon_as_a_message_is_sent(server: MnsServer, make_queue: Callable[..., Queue]) -> None:
    queue = make_queue()
    sender = Account(server.endpoint, AK, SK).get_queue("jobs")  # its own connection: SDK clients aren't shared
    timer = threading.Timer(0.3, lambda: sender.send_message(Message("late")))
    started = time.monotonic()
    timer.start()
    try:
        msg = queue.receive_message(wait_seconds=10)
    finally:
        timer.join()
    elapsed = time.monotonic() - started
    assert msg.message_body == b"late"
    assert 0.25 <= elapsed < 3, elapsed  # it waited for the send, then answered without running out the poll


def test_delayed_message_is_hidden_until_due(make_queue: Callable[..., Queue]) -> None:
    queue = make_queue()
    queue.send_message(Message("later", delay_seconds=1))
    assert mns_error(queue.receive_message).type == "MessageNotExist"
    assert queue.get_attributes().delay_messages == 1
    started = time.monotonic()
    assert queue.receive_message(wait_seconds=5).message_body == b"later"
    assert 0.8 <= time.monotonic() - started < 3


def test_visibility_timeout_redelivers_and_old_handle_is_refused(make_queue: Callable[..., Queue]) -> None:
    queue = make_queue(vis_timeout=1)
    queue.send_message(Message("work"))
    first = queue.receive_message()
    assert queue.get_attributes().inactive_messages == 1
    second = queue.receive_message(wait_seconds=5)  # wakes when the hidden message becomes visible again
    assert second.message_id == first.message_id
    assert second.dequeue_count == 2 and second.first_dequeue_time == first.first_dequeue_time
    assert second.receipt_handle != first.receipt_handle
    assert mns_error(lambda: queue.delete_message(first.receipt_handle)).type == "ReceiptHandleError"
    queue.delete_message(second.receipt_handle)
    assert mns_error(queue.peek_message).type == "MessageNotExist"


def test_handle_past_next_visible_time_is_message_not_exist(
    make_queue: Callable[..., Queue], monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = make_queue(vis_timeout=30)
    queue.send_message(Message("x"))
    msg = queue.receive_message()
    assert mns_error(lambda: queue.delete_message("not-a-handle")).type == "ReceiptHandleError"
    real_now = mns_store.now_ms
    monkeypatch.setattr(mns_store, "now_ms", lambda: real_now() + 31_000)  # the store's clock, 31 s later
    # MNS: past NextVisibleTime the handle has expired, even though nobody received the message again
    assert mns_error(lambda: queue.delete_message(msg.receipt_handle)).type == "MessageNotExist"
    assert mns_error(lambda: queue.change_message_visibility(msg.receipt_handle, 5)).type == "MessageNotExist"
    assert queue.receive_message().dequeue_count == 2


def test_change_visibility_returns_a_new_handle(make_queue: Callable[..., Queue]) -> None:
    queue = make_queue()
    queue.send_message(Message("x"))
    msg = queue.receive_message()
    changed = queue.change_message_visibility(msg.receipt_handle, 1)
    assert changed.receipt_handle != msg.receipt_handle
    assert abs(int(changed.next_visible_time) - (time.time() * 1000 + 1000)) < 500  # the SDK leaves it a str
    assert mns_error(lambda: queue.delete_message(msg.receipt_handle)).type == "ReceiptHandleError"
    again = queue.receive_message(wait_seconds=5)
    assert again.message_id == msg.message_id and again.dequeue_count == 2
    assert mns_error(lambda: queue.change_message_visibility(again.receipt_handle, 0)).type == "InvalidArgument"


def test_batch_send_receive_peek_delete(make_queue: Callable[..., Queue]) -> None:
    queue = make_queue()
    sent = queue.batch_send_message([Message("low", priority=16), Message("high", priority=1), Message("mid")])
    assert [m.message_body_md5 for m in sent] == [
        md5_upper(base64.b64encode(b).decode()) for b in (b"low", b"high", b"mid")
    ]
    assert [m.message_body for m in queue.batch_peek_message(16)] == [b"high", b"mid", b"low"]

    got = queue.batch_receive_message(16, wait_seconds=1)
    assert [m.message_body for m in got] == [b"high", b"mid", b"low"]  # priority first (1 is highest)
    assert mns_error(lambda: queue.batch_receive_message(16)).type == "MessageNotExist"

    queue.batch_delete_message([got[0].receipt_handle, got[1].receipt_handle])
    error = mns_error(lambda: queue.batch_delete_message([got[1].receipt_handle, got[2].receipt_handle]))
    assert error.type == "MessageNotExist"  # got[1] is gone; got[2] was still deleted
    assert [e["ReceiptHandle"] for e in error.sub_errors] == [got[1].receipt_handle]
    assert queue.get_attributes().inactive_messages == 0


def test_batch_send_reports_each_failed_entry(make_queue: Callable[..., Queue]) -> None:
    queue = make_queue(max_msg_size=1024)
    queue.set_encoding(False)
    error = mns_error(lambda: queue.batch_send_message([Message("fits"), Message("x" * 2000)]))
    assert error.type == "InvalidArgument"
    ok, failed = error.sub_errors
    assert ok["MessageBodyMD5"] == md5_upper("fits") and failed["ErrorCode"] == "InvalidArgument"
    assert queue.receive_message().message_body == "fits"  # the valid entry was enqueued


def test_queue_admin(account: Account, make_queue: Callable[..., Queue]) -> None:
    queue = make_queue("orders", vis_timeout=5, polling_wait_sec=2)
    assert queue.create(QueueMeta(vis_timeout=5, polling_wait_sec=2)).endswith("/queues/orders")
    assert mns_error(lambda: queue.create(QueueMeta(vis_timeout=6))).type == "QueueAlreadyExist"
    attrs = queue.get_attributes()
    assert (
        attrs.queue_name,
        attrs.visibility_timeout,
        attrs.polling_wait_seconds,
        attrs.delay_seconds,
        attrs.maximum_message_size,
        attrs.message_retention_period,
    ) == ("orders", 5, 2, 0, 65536, 345600)
    queue.set_attributes(QueueMeta(vis_timeout=9))
    assert queue.get_attributes().visibility_timeout == 9
    assert mns_error(lambda: queue.set_attributes(QueueMeta(polling_wait_sec=31))).type == "InvalidArgument"

    make_queue("orders-b")
    make_queue("other")
    urls, marker = account.list_queue(prefix="orders", ret_number=1)
    assert [u.rsplit("/", 1)[1] for u in urls] == ["orders"] and marker
    urls, marker = account.list_queue(prefix="orders", ret_number=1, marker=marker)
    assert [u.rsplit("/", 1)[1] for u in urls] == ["orders-b"] and marker == ""

    assert mns_error(lambda: account.get_queue("bad_name").create(QueueMeta())).type == "InvalidQueueName"
    queue.delete()
    assert mns_error(queue.get_attributes).type == "QueueNotExist"
    assert mns_error(lambda: queue.send_message(Message("x"))).type == "QueueNotExist"


# -- topics ---------------------------------------------------------------------------------------------------


def subscribe_queue(server: MnsServer, account: Account, topic: str, name: str, queue: str, **meta: str) -> None:
    account.get_topic(topic).get_subscription(name).subscribe(SubscriptionMeta(server.queue_endpoint(queue), **meta))


def test_topic_fans_out_to_queues_honouring_filter_tag_and_format(
    server: MnsServer, account: Account, make_queue: Callable[..., Queue]
) -> None:
    topic = account.get_topic("events")
    topic.create(TopicMeta())
    raw, tagged, as_xml = (make_queue(n) for n in ("raw", "tagged", "as-xml"))
    for q in (raw, tagged, as_xml):
        q.set_encoding(False)  # topic pushes are not base64 (module docstring)
    subscribe_queue(server, account, "events", "all", "raw", notify_content_format="SIMPLIFIED")
    subscribe_queue(server, account, "events", "only-a", "tagged", notify_content_format="JSON", filter_tag="a")
    subscribe_queue(server, account, "events", "xml", "as-xml")  # default format: XML

    published = {
        tag: topic.publish_message(TopicMessage(f'{{"job": "{tag or "none"}"}}', tag)) for tag in ("a", "b", "")
    }

    assert sorted(m.message_body for m in raw.batch_receive_message(16)) == [
        '{"job": "a"}',
        '{"job": "b"}',
        '{"job": "none"}',
    ]
    (only,) = tagged.batch_receive_message(16)
    envelope = json.loads(only.message_body)
    assert envelope["Message"] == '{"job": "a"}' and envelope["MessageTag"] == "a"
    assert envelope["MessageId"] == published["a"].message_id
    assert envelope["MessageMD5"] == published["a"].message_body_md5 == md5_upper('{"job": "a"}')
    assert (envelope["TopicName"], envelope["SubscriptionName"], envelope["TopicOwner"]) == (
        "events",
        "only-a",
        server.account_id,
    )
    assert only.message_body_md5 == md5_upper(only.message_body)  # the queue message's own MD5

    notes = [ET.fromstring(m.message_body) for m in as_xml.batch_receive_message(16)]
    assert {n.findtext("Message") for n in notes} == {'{"job": "a"}', '{"job": "b"}', '{"job": "none"}'}
    assert {n.findtext("MessageTag") for n in notes} == {"a", "b", None}


def test_topic_bodies_in_queues_need_encoding_off(
    server: MnsServer, account: Account, make_queue: Callable[..., Queue]
) -> None:
    account.get_topic("events").create(TopicMeta())
    queue = make_queue("sink")
    subscribe_queue(server, account, "events", "sink", "sink", notify_content_format="SIMPLIFIED")
    account.get_topic("events").publish_message(TopicMessage('{"k": "v"}'))
    with pytest.raises(binascii.Error):  # the SDK's default base64-decoding of a body that never was base64
        queue.peek_message()
    queue.set_encoding(False)
    assert queue.receive_message().message_body == '{"k": "v"}'


def test_topic_and_subscription_admin(server: MnsServer, account: Account) -> None:
    topic = account.get_topic("events")
    assert topic.create(TopicMeta()).endswith("/topics/events")
    topic.create(TopicMeta())  # idempotent
    assert topic.get_attributes().topic_name == "events"
    assert [u.rsplit("/", 1)[1] for u in account.list_topic()[0]] == ["events"]

    sub = topic.get_subscription("s1")
    meta = SubscriptionMeta(server.queue_endpoint("q1"), notify_content_format="JSON", filter_tag="t")
    sub.subscribe(meta)
    sub.subscribe(meta)  # same settings: fine
    other = SubscriptionMeta(server.queue_endpoint("q2"))
    assert mns_error(lambda: sub.subscribe(other)).type == "SubscriptionAlreadyExist"
    attrs = sub.get_attributes()
    assert (attrs.endpoint, attrs.notify_content_format, attrs.filter_tag, attrs.notify_strategy) == (
        server.queue_endpoint("q1"),
        "JSON",
        "t",
        "BACKOFF_RETRY",
    )
    sub.set_attributes(SubscriptionMeta(notify_strategy="EXPONENTIAL_DECAY_RETRY"))
    assert sub.get_attributes().notify_strategy == "EXPONENTIAL_DECAY_RETRY"
    assert [u.rsplit("/", 1)[1] for u in topic.list_subscription()[0]] == ["s1"]
    http = SubscriptionMeta("http://example.com/push")
    assert mns_error(lambda: topic.get_subscription("s2").subscribe(http)).type == "InvalidArgument"

    sub.unsubscribe()
    assert mns_error(sub.get_attributes).type == "SubscriptionNotExist"
    topic.delete()
    assert mns_error(lambda: topic.publish_message(TopicMessage("x"))).type == "TopicNotExist"


def test_push_to_a_missing_queue_is_retried_until_it_exists(server: MnsServer, account: Account) -> None:
    account.get_topic("events").create(TopicMeta())
    subscribe_queue(
        server,
        account,
        "events",
        "late",
        "later",
        notify_content_format="SIMPLIFIED",
        notify_strategy="EXPONENTIAL_DECAY_RETRY",
    )  # 176 retries: outlives the queue's absence
    account.get_topic("events").publish_message(TopicMessage("first"))
    queue = account.get_queue("later")
    queue.create(QueueMeta())
    queue.set_encoding(False)
    assert queue.receive_message(wait_seconds=10).message_body == "first"
    assert server.wait_for_deliveries("events", timeout=5)
    assert server.dead_letters("events") == []


def test_push_to_a_missing_queue_is_dead_lettered(server: MnsServer, account: Account) -> None:
    account.get_topic("events").create(TopicMeta())
    subscribe_queue(server, account, "events", "gone", "nowhere")
    account.get_topic("events").publish_message(TopicMessage("lost", "t"))
    assert server.wait_for_deliveries("events", timeout=5)
    (dead,) = server.dead_letters("events")
    assert (dead.subscription, dead.body, dead.message_tag, dead.attempts) == ("gone", "lost", "t", 4)
    assert "QueueNotExist" in dead.last_error


# -- local subscribers (FC MNS-topic triggers) ----------------------------------------------------------------


def test_local_subscriber_gets_the_fc_json_event(server: MnsServer, account: Account) -> None:
    topic = account.get_topic("events")
    topic.create(TopicMeta())
    recorder = Recorder()
    server.add_local_subscriber("events", "fc-store", recorder, content_format="JSON")
    body = '{"Type":"FpShot","JobId":"j-1","State":"Success"}'
    published = topic.publish_message(TopicMessage(body, "fp"))
    assert recorder.wait_calls(1)
    event = json.loads(recorder.events[0])
    assert set(event) == {
        "TopicOwner",
        "TopicName",
        "Subscriber",
        "SubscriptionName",
        "MessageId",
        "Message",
        "MessageMD5",
        "MessageTag",
        "PublishTime",
    }
    assert (event["Message"], event["MessageTag"], event["MessageId"], event["MessageMD5"]) == (
        body,
        "fp",
        published.message_id,
        published.message_body_md5,
    )
    assert event["SubscriptionName"] == "fc-store" and event["PublishTime"].isdigit()
    parsed = parse_mns_topic_event(recorder.events[0])  # what the store-results function does with it
    assert parsed.body == body.encode() and parsed.message_id == published.message_id
    assert server.wait_for_deliveries("events", timeout=5) and server.dead_letters("events") == []


def test_local_subscriber_stream_with_filter_tag(server: MnsServer, account: Account) -> None:
    topic = account.get_topic("events")
    topic.create(TopicMeta())
    recorder = Recorder()
    server.add_local_subscriber("events", "fc-raw", recorder, content_format="STREAM", filter_tag="keep")
    topic.publish_message(TopicMessage("dropped", "other"))
    topic.publish_message(TopicMessage("untagged"))
    topic.publish_message(TopicMessage("kept body", "keep"))
    assert server.wait_for_deliveries("events", timeout=5)
    assert recorder.events == [b"kept body"]
    attrs = topic.get_subscription("fc-raw").get_attributes()  # visible through the API like any subscription
    assert (attrs.filter_tag, attrs.notify_content_format) == ("keep", "SIMPLIFIED")


def test_local_subscriber_is_retried_then_succeeds(server: MnsServer, account: Account) -> None:
    account.get_topic("events").create(TopicMeta())
    recorder = Recorder(failures=2)
    server.add_local_subscriber("events", "flaky", recorder)
    account.get_topic("events").publish_message(TopicMessage("m"))
    assert server.wait_for_deliveries("events", timeout=5)
    assert len(recorder.events) == 3 and len(set(recorder.events)) == 1  # same event each time
    assert all(b - a >= 0.045 for a, b in zip(recorder.times, recorder.times[1:], strict=False))
    assert server.dead_letters("events") == []


def test_local_subscriber_exhausts_retries_into_dead_letters(server: MnsServer, account: Account) -> None:
    account.get_topic("events").create(TopicMeta())
    recorder = Recorder(failures=99)
    server.add_local_subscriber("events", "broken", recorder, content_format="STREAM")
    published = account.get_topic("events").publish_message(TopicMessage("poison", "p"))
    assert server.wait_for_deliveries("events", timeout=5)
    assert recorder.events == [b"poison"] * 4  # first attempt + 3 BACKOFF_RETRY retries
    (dead,) = server.dead_letters("events")
    assert (dead.topic, dead.subscription, dead.message_id, dead.body, dead.attempts) == (
        "events",
        "broken",
        published.message_id,
        "poison",
        4,
    )
    assert dead.last_error == "RuntimeError: boom 4"
    assert server.dead_letters("other-topic") == []


def test_remove_local_subscriber_unsubscribes(server: MnsServer, account: Account) -> None:
    topic = account.get_topic("events")
    topic.create(TopicMeta())
    server.add_local_subscriber("events", "tmp", Recorder())
    server.remove_local_subscriber("events", "tmp")
    server.remove_local_subscriber("events", "tmp")  # idempotent
    assert topic.list_subscription()[0] == []
    topic.publish_message(TopicMessage("nobody listens"))
    assert server.store.pending_deliveries("events") == []


# -- durability -----------------------------------------------------------------------------------------------


def test_messages_and_topology_survive_a_restart(db_path: Path) -> None:
    with MnsServer(db_path, credentials={AK: SK}) as first:
        account = Account(first.endpoint, AK, SK)
        queue = account.get_queue("jobs")
        queue.create(QueueMeta(vis_timeout=1))
        kept = queue.send_message(Message("kept"))
        taken = queue.send_message(Message("taken, never deleted"))
        assert queue.receive_message().message_id == kept.message_id  # now hidden for 1 s
        account.get_topic("events").create(TopicMeta())
        subscribe_queue(first, account, "events", "to-jobs", "jobs", notify_content_format="SIMPLIFIED")

    with MnsServer(db_path, credentials={AK: SK}) as second:
        account = Account(second.endpoint, AK, SK)
        queue = account.get_queue("jobs")
        fresh = queue.receive_message()
        assert fresh.message_id == taken.message_id
        queue.delete_message(fresh.receipt_handle)
        again = queue.receive_message(wait_seconds=5)  # the unacknowledged one comes back: at-least-once
        assert (again.message_id, again.message_body, again.dequeue_count) == (kept.message_id, b"kept", 2)
        queue.delete_message(again.receipt_handle)
        account.get_topic("events").publish_message(TopicMessage("after restart"))
        queue.set_encoding(False)
        assert queue.receive_message().message_body == "after restart"


def test_pending_local_deliveries_resume_after_a_restart(db_path: Path) -> None:
    endless = RetryPolicy(backoff_retries=10_000, backoff_delay=(0.05, 0.05))  # never dead-letters in this test
    with MnsServer(db_path, credentials={AK: SK}, retry_policy=endless) as first:
        account = Account(first.endpoint, AK, SK)
        account.get_topic("events").create(TopicMeta())
        failing = Recorder(failures=10_000)
        first.add_local_subscriber("events", "fc", failing)
        account.get_topic("events").publish_message(TopicMessage("survivor"))
        assert failing.wait_calls(1)  # it failed at least once; the server stops with the push still pending

    with MnsServer(db_path, credentials={AK: SK}, retry_policy=FAST) as second:
        account = Account(second.endpoint, AK, SK)
        account.get_topic("events").publish_message(TopicMessage("while no callback"))
        assert [d.body for d in second.store.pending_deliveries("events", "fc")] == ["survivor", "while no callback"]
        healthy = Recorder()
        second.add_local_subscriber("events", "fc", healthy)  # re-registering resumes the stored subscription
        assert second.wait_for_deliveries("events", timeout=5)
        assert sorted(json.loads(e)["Message"] for e in healthy.events) == ["survivor", "while no callback"]
        assert second.dead_letters() == []


def test_stop_does_not_wait_for_long_polls(db_path: Path) -> None:
    server = MnsServer(db_path, credentials={AK: SK}).start()
    queue = Account(server.endpoint, AK, SK).get_queue("jobs")
    queue.create(QueueMeta())  # the SDK's keep-alive connection is open before the poll starts
    outcome: list[BaseException] = []

    def poll() -> None:
        try:
            queue.receive_message(wait_seconds=30)
        except Exception as exc:
            outcome.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    started = time.monotonic()
    server.stop()
    poller.join(timeout=5)
    assert time.monotonic() - started < 3 and not poller.is_alive()
    assert len(outcome) == 1 and not isinstance(outcome[0], AssertionError)  # no message; the poll was cut


# -- authentication -------------------------------------------------------------------------------------------


def test_wrong_secret_and_unknown_key_are_refused(server: MnsServer) -> None:
    bad_secret = Account(server.endpoint, AK, "wrong").get_queue("jobs")
    error = mns_error(lambda: bad_secret.create(QueueMeta()))
    assert error.type == "SignatureDoesNotMatch"
    assert error.request_id and error.host_id == server.endpoint
    unknown = Account(server.endpoint, "nobody", SK).get_queue("jobs")
    assert mns_error(lambda: unknown.create(QueueMeta())).type == "InvalidAccessKeyId"
    assert server.store.list_queues()[0] == []  # neither request did anything


def raw_request(
    server: MnsServer, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, ET.Element]:
    host, port = server.endpoint.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, ET.fromstring(response.read())
    finally:
        conn.close()


def test_missing_auth_and_bad_content_md5(server: MnsServer) -> None:
    status, doc = raw_request(server, "GET", "/queues", {"x-mns-version": "2015-06-06"})
    ns = "{http://mns.aliyuncs.com/doc/v1/}"
    assert status == 400 and doc.findtext(f"{ns}Code") == "MissingAuthorizationHeader"
    assert doc.findtext(f"{ns}RequestId") and doc.findtext(f"{ns}HostId") == server.endpoint

    body = b'<Queue xmlns="http://mns.aliyuncs.com/doc/v1/"></Queue>'
    headers = {
        "x-mns-version": "2015-06-06",
        "date": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
        "content-type": "text/xml;charset=UTF-8",
        "content-md5": base64.b64encode(b"0" * 32).decode(),
    }
    headers["Authorization"] = f"MNS {AK}:{sign(SK, 'PUT', headers, '/queues/q')}"
    status, doc = raw_request(server, "PUT", "/queues/q", headers, body)
    assert status == 400 and doc.findtext(f"{ns}Code") == "InvalidDegist"


def test_signature_matches_the_sdk() -> None:
    headers = {
        "x-mns-version": "2015-06-06",
        "x-mns-with-meta": "true",
        "date": "Mon, 01 Jan 2024 00:00:00 GMT",
        "content-md5": "abc",
        "content-type": "text/xml;charset=UTF-8",
        "host": "h",
    }
    resource = "/queues/q/messages?ReceiptHandle=1-abc&VisibilityTimeout=5"
    expected = MNSClient("http://h").get_signature("PUT", headers, resource, Credentials(AK, SK))
    assert expected == f"MNS {AK}:{sign(SK, 'PUT', headers, resource)}"
