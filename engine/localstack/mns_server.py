"""A local MNS endpoint the unmodified `aliyun-mns-sdk` talks to: REST + XML over loopback, `MNS` signatures checked.

    with MnsServer(tmp_path / "mns.db", credentials={"ak": "sk"}) as mns:
        account = mns.account()                      # == mns.account.Account(mns.endpoint, "ak", "sk")
        queue = account.get_queue("jobs")
        queue.create(QueueMeta())
        queue.send_message(Message("hello"))         # the SDK base64-encodes this body...
        queue.receive_message(wait_seconds=5)        # ...and base64-decodes it back (bytes)
        mns.add_local_subscriber("events", "store-results", handler, content_format="JSON")

State lives in SQLite (`mns_store`), so messages, subscriptions and pending pushes survive a restart on the same
file. Covered: queues (create/attributes/delete/list, send + batch, receive + batch with long poll, peek,
delete + batch, change visibility), topics (create/attributes/delete/list, publish with MessageTag) and
subscriptions (subscribe/attributes/unsubscribe/list; queue endpoints `acs:mns:<region>:<account>:queues/<q>`
only; FilterTag, NotifyContentFormat XML|JSON|SIMPLIFIED and NotifyStrategy honoured).

Base64, the one trap (reference §6): `Queue` objects of the SDK base64-encode on send and base64-decode on
receive/peek by default. A topic pushes the published body into a queue *as is* (SIMPLIFIED) or wrapped in the
XML/JSON notification, never base64, exactly like real MNS (unless the publisher used `Base64TopicMessage`).
A consumer of a topic-fed queue must therefore call `queue.set_encoding(False)`; with the default it gets
`binascii.Error` or garbage. Its `message_body` is then `str`, while with encoding on it is `bytes`.

`add_local_subscriber` stands in for an FC "MNS topic" trigger: the subscription is stored like any other (its
pending pushes are rows in SQLite), a push thread calls `callback(event_bytes)` with the FC event (JSON: the
notification object, `Message` = raw body; STREAM: the body bytes), retries on exception per NotifyStrategy
(BACKOFF_RETRY: 3 retries 10-20 s apart, scaled down via `RetryPolicy`) and, once retries are exhausted, moves
the message to the dead letters (`dead_letters(topic)`). A message is deleted only after the callback returns,
so a restart mid-delivery re-delivers it: callbacks must be idempotent, as FC handlers are.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import random
import secrets
import socket
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from email.message import Message as HttpHeaders
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

from engine.localstack.mns_store import (
    MAX_BATCH,
    QUEUE_DEFAULTS,
    XMLNS,
    DeadLetter,
    Delivery,
    MnsError,
    MnsStore,
    OutgoingMessage,
    QueueInfo,
    QueueMessage,
    Subscription,
    TopicInfo,
    notification,
)
from shared.retry import Backoff
from shared.vocabulary import DEFAULT_REGION

if TYPE_CHECKING:
    from mns.account import Account

log = logging.getLogger(__name__)

MNS_VERSION = "2015-06-06"
DEFAULT_ACCOUNT_ID = "1234567890123456"
LOCAL_ACCESS_KEY_ID = "local-mns-access-key"
LOCAL_ACCESS_KEY_SECRET = "local-mns-access-secret"
MAX_CLOCK_SKEW = 15 * 60  # seconds; beyond it MNS answers TimeExpired

LocalCallback = Callable[[bytes], object]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long a failed push waits before its next attempt; None = give up (dead letter).

    Defaults are the cloud's: BACKOFF_RETRY 3 retries 10-20 s apart; EXPONENTIAL_DECAY_RETRY 176 retries,
    2^n s capped at 512 s. Tests and the local stack use `RetryPolicy().scaled(0.005)`.
    """

    backoff_retries: int = 3
    backoff_delay: tuple[float, float] = (10.0, 20.0)
    exponential_retries: int = 176
    exponential_first: float = 1.0
    exponential_cap: float = 512.0

    def delay_after(self, strategy: str, failures: int) -> float | None:
        if strategy == "EXPONENTIAL_DECAY_RETRY":
            if failures > self.exponential_retries:
                return None
            # MNS's documented schedule, not a randomised one: the ceiling of the shared backoff.
            return Backoff(self.exponential_first, self.exponential_cap).ceiling(failures)
        if failures > self.backoff_retries:
            return None
        return random.uniform(*self.backoff_delay)

    def scaled(self, factor: float) -> RetryPolicy:
        """Same retry counts, every delay multiplied by `factor`."""
        low, high = self.backoff_delay
        return replace(
            self,
            backoff_delay=(low * factor, high * factor),
            exponential_first=self.exponential_first * factor,
            exponential_cap=self.exponential_cap * factor,
        )


# -- signature ------------------------------------------------------------------------------------------------


def string_to_sign(method: str, headers: Mapping[str, str], resource: str) -> str:
    """METHOD\\ncontent-md5\\ncontent-type\\ndate\\n<sorted x-mns-*:v\\n><path?query>; header names lower-case."""
    mns_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers) if k.startswith("x-mns-"))
    parts = (method, headers.get("content-md5", ""), headers.get("content-type", ""), headers.get("date", ""))
    return "\n".join(parts) + "\n" + mns_headers + resource


def sign(secret: str, method: str, headers: Mapping[str, str], resource: str) -> str:
    digest = hmac.new(
        secret.encode("utf-8"), string_to_sign(method, headers, resource).encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def _check_content_md5(value: str, body: bytes) -> None:
    # The SDK sends base64(hex digest) (reference Part 2 §4); RFC 1864 says base64(raw digest): accept both.
    digest = hashlib.md5(body)
    accepted = {base64.b64encode(digest.hexdigest().encode()).decode(), base64.b64encode(digest.digest()).decode()}
    if value not in accepted:
        raise MnsError("InvalidDegist", "The Content-MD5 you specified is invalid.")  # sic: MNS's spelling


def authenticate(
    credentials: Mapping[str, str], method: str, resource: str, raw_headers: HttpHeaders, body: bytes
) -> str:
    """Verify an `Authorization: MNS <ak>:<signature>` request as MNS does; → the access key id."""
    headers = {name.lower(): value for name, value in raw_headers.items()}
    auth = headers.get("authorization")
    if not auth:
        raise MnsError("MissingAuthorizationHeader", "Authorization header is required.")
    scheme, _, rest = auth.partition(" ")
    access_key_id, _, signature = rest.strip().rpartition(":")
    if scheme != "MNS" or not access_key_id or not signature:
        raise MnsError("InvalidAuthorizationHeader", "The Authorization header format is invalid.")
    date = headers.get("date")
    if not date:
        raise MnsError("MissingDateHeader", "Date header is required.")
    try:
        sent = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError) as exc:
        raise MnsError("InvalidDateHeader", "The Date header format is invalid.") from exc
    if abs(time.time() - sent) > MAX_CLOCK_SKEW:
        raise MnsError("TimeExpired", "The Http request you sent is expired.", 408)
    if body and "content-md5" in headers:
        _check_content_md5(headers["content-md5"], body)
    secret = credentials.get(access_key_id)
    if secret is None:
        raise MnsError("InvalidAccessKeyId", "The AccessKey Id you provided is not exist.", 403)
    if not hmac.compare_digest(sign(secret, method, headers, resource), signature):
        raise MnsError(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature "
            "you provided. Check your key and signing method.",
            403,
        )
    return access_key_id


# -- XML ------------------------------------------------------------------------------------------------------

Fields = Iterable[tuple[str, object]]


def _xml(root: str, fields: Fields = (), items: Iterable[tuple[str, Fields]] = ()) -> bytes:
    """`<root xmlns=MNS>` with `fields` as child elements, then one child element per (tag, fields) item."""
    elem = ET.Element(root, xmlns=XMLNS)
    _append(elem, fields)
    for tag, item_fields in items:
        _append(ET.SubElement(elem, tag), item_fields)
    return ET.tostring(elem, encoding="utf-8", xml_declaration=True)


def _append(parent: ET.Element, fields: Fields) -> None:
    for tag, value in fields:
        ET.SubElement(parent, tag).text = str(value)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _parse(body: bytes, *roots: str) -> ET.Element:
    """The request document (namespace-agnostic), whose root must be one of `roots`; empty body: `<roots[0]/>`."""
    if not body.strip():
        return ET.Element(roots[0])
    try:
        elem = ET.fromstring(body)
    except ET.ParseError as exc:
        raise MnsError("MalformedXML", "The XML you provided was not well-formed.") from exc
    if _local(elem.tag) not in roots:
        raise MnsError(
            "InvalidArgument",
            f"The XML you provided did not validate against our published schema, cause by {_local(elem.tag)}.",
        )
    return elem


def _fields(elem: ET.Element) -> dict[str, str]:
    return {_local(child.tag): child.text or "" for child in elem}


def _int(value: str, name: str, low: int | None = None, high: int | None = None) -> int:
    try:
        number = int(value.strip())
    except ValueError as exc:
        raise MnsError("InvalidArgument", f"The value of {name} is not an integer: {value!r}.") from exc
    if (low is not None and number < low) or (high is not None and number > high):
        raise MnsError("InvalidArgument", f"The value of {name} should between {low} and {high}.")
    return number


def _bool(value: str) -> bool:
    return value.strip().lower() == "true"


def _query(raw: str) -> dict[str, str]:
    # No `+`-as-space: the SDK puts receipt handles into the query unencoded. Names are case-insensitive here.
    out = {}
    for piece in raw.split("&"):
        if piece:
            key, _, value = piece.partition("=")
            out[unquote(key).lower()] = unquote(value)
    return out


def _message_fields(msg: QueueMessage) -> list[tuple[str, object]]:
    if msg.receipt_handle is None:  # peek: no handle, no NextVisibleTime
        return [
            ("MessageId", msg.message_id),
            ("MessageBodyMD5", msg.body_md5),
            ("MessageBody", msg.body),
            ("EnqueueTime", msg.enqueue_time),
            ("FirstDequeueTime", msg.first_dequeue_time),
            ("DequeueCount", msg.dequeue_count),
            ("Priority", msg.priority),
        ]
    return [
        ("MessageId", msg.message_id),
        ("ReceiptHandle", msg.receipt_handle),
        ("MessageBodyMD5", msg.body_md5),
        ("MessageBody", msg.body),
        ("EnqueueTime", msg.enqueue_time),
        ("NextVisibleTime", msg.next_visible_time),
        ("FirstDequeueTime", msg.first_dequeue_time),
        ("DequeueCount", msg.dequeue_count),
        ("Priority", msg.priority),
    ]


def _queue_fields(info: QueueInfo) -> list[tuple[str, object]]:
    return [
        ("QueueName", info.name),
        ("CreateTime", info.create_time),
        ("LastModifyTime", info.last_modify_time),
        *info.attributes.items(),
        ("ActiveMessages", info.active),
        ("InactiveMessages", info.inactive),
        ("DelayMessages", info.delayed),
        ("LoggingEnabled", info.logging_enabled),
    ]


def _topic_fields(info: TopicInfo) -> list[tuple[str, object]]:
    return [
        ("TopicName", info.name),
        ("CreateTime", info.create_time),
        ("LastModifyTime", info.last_modify_time),
        *info.attributes.items(),
        ("MessageCount", info.message_count),
        ("LoggingEnabled", info.logging_enabled),
    ]


# -- the REST API ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Call:
    names: list[str]  # the {queue|topic}[, subscription] path segments
    query: dict[str, str]
    body: bytes
    headers: HttpHeaders


class MnsApi:
    """Request → `Reply`, independent of the socket layer. `host_id` is this endpoint (URLs, HostId)."""

    def __init__(
        self, store: MnsStore, credentials: Mapping[str, str], host_id: str, account_id: str, region: str
    ) -> None:
        self.store = store
        self.credentials = dict(credentials)
        self.host_id = host_id
        self.account_id = account_id
        self.region = region
        self.logging_bucket = ""
        self._routes: dict[tuple[str, tuple[str, ...]], Callable[[_Call], Reply]] = {
            ("PUT", ("queues", "*")): self._put_queue,
            ("GET", ("queues", "*")): self._get_queue,
            ("DELETE", ("queues", "*")): self._delete_queue,
            ("GET", ("queues",)): self._list_queues,
            ("POST", ("queues", "*", "messages")): self._send,
            ("GET", ("queues", "*", "messages")): self._receive,
            ("DELETE", ("queues", "*", "messages")): self._delete_messages,
            ("PUT", ("queues", "*", "messages")): self._change_visibility,
            ("PUT", ("topics", "*")): self._put_topic,
            ("GET", ("topics", "*")): self._get_topic,
            ("DELETE", ("topics", "*")): self._delete_topic,
            ("GET", ("topics",)): self._list_topics,
            ("POST", ("topics", "*", "messages")): self._publish,
            ("PUT", ("topics", "*", "subscriptions", "*")): self._subscribe,
            ("GET", ("topics", "*", "subscriptions", "*")): self._get_subscription,
            ("DELETE", ("topics", "*", "subscriptions", "*")): self._unsubscribe,
            ("GET", ("topics", "*", "subscriptions")): self._list_subscriptions,
        }

    def handle(self, method: str, target: str, headers: HttpHeaders, body: bytes) -> Reply:
        """Authenticate and route one request; MNS errors become `<Error>` replies."""
        request_id = secrets.token_hex(12).upper()
        try:
            authenticate(self.credentials, method, target, headers, body)
            reply = self._route(method, target, headers, body)
        except MnsError as exc:
            reply = self.error(exc, request_id)
        except Exception:  # a bug here must reach the client as MNS would report it, and the log
            log.exception("local MNS: %s %s failed", method, target)
            reply = self.error(MnsError("InternalError", "Interal error.", 500), request_id)
        reply.headers.update({"x-mns-request-id": request_id, "x-mns-version": MNS_VERSION})
        return reply

    def error(self, exc: MnsError, request_id: str) -> Reply:
        fields = [("Code", exc.code), ("Message", exc.message), ("RequestId", request_id), ("HostId", self.host_id)]
        return Reply(exc.status, _xml("Error", fields))

    def _route(self, method: str, target: str, headers: HttpHeaders, body: bytes) -> Reply:
        path, _, raw_query = target.partition("?")
        parts = [unquote(p) for p in path.split("/") if p]
        query = _query(raw_query)
        if not parts and "accountmeta" in query:
            return self._account(method, body)
        shape = tuple(part if i % 2 == 0 else "*" for i, part in enumerate(parts))
        handler = self._routes.get((method, shape))
        if handler is None:
            raise MnsError("InvalidRequestURL", "Http request URL format invalid.")
        return handler(_Call(parts[1::2], query, body, headers))

    def _account(self, method: str, body: bytes) -> Reply:
        if method == "PUT":
            self.logging_bucket = _fields(_parse(body, "Account")).get("LoggingBucket", self.logging_bucket)
            return Reply(204)
        return Reply(200, _xml("Account", [("LoggingBucket", self.logging_bucket)]))

    def _created(self, created: bool, path: str) -> Reply:
        # 201 when made, 204 when it already existed with the same settings; Location in both (the SDK reads it).
        return Reply(201 if created else 204, headers={"Location": f"{self.host_id}{path}"})

    def _list(
        self,
        call: _Call,
        root: str,
        item: str,
        url_tag: str,
        rows: list[tuple[str, list[tuple[str, object]]]],
        next_marker: str,
    ) -> Reply:
        with_meta = _bool(call.headers.get("x-mns-with-meta", "false"))
        elem = ET.Element(root, xmlns=XMLNS)
        for path, meta in rows:
            _append(ET.SubElement(elem, item), [(url_tag, f"{self.host_id}{path}"), *(meta if with_meta else [])])
        if next_marker:
            _append(elem, [("NextMarker", next_marker)])
        return Reply(200, ET.tostring(elem, encoding="utf-8", xml_declaration=True))

    @staticmethod
    def _paging(call: _Call) -> tuple[str, str, int]:
        limit = call.headers.get("x-mns-ret-number")
        return (
            call.headers.get("x-mns-prefix", ""),
            call.headers.get("x-mns-marker", ""),
            _int(limit, "x-mns-ret-number", 1, 1000) if limit else 1000,
        )

    # queues

    @staticmethod
    def _queue_meta(body: bytes) -> tuple[dict[str, int], bool | None]:
        fields = _fields(_parse(body, "Queue"))
        attrs = {key: _int(fields[key], key) for key in QUEUE_DEFAULTS if key in fields}
        return attrs, _bool(fields["LoggingEnabled"]) if "LoggingEnabled" in fields else None

    def _put_queue(self, call: _Call) -> Reply:
        (name,) = call.names
        attrs, logging_enabled = self._queue_meta(call.body)
        if _bool(call.query.get("metaoverride", "false")):
            self.store.set_queue_attributes(name, attrs, logging_enabled)
            return Reply(204)
        return self._created(self.store.create_queue(name, attrs, bool(logging_enabled)), f"/queues/{name}")

    def _get_queue(self, call: _Call) -> Reply:
        return Reply(200, _xml("Queue", _queue_fields(self.store.get_queue(call.names[0]))))

    def _delete_queue(self, call: _Call) -> Reply:
        self.store.delete_queue(call.names[0])
        return Reply(204)

    def _list_queues(self, call: _Call) -> Reply:
        infos, next_marker = self.store.list_queues(*self._paging(call))
        rows = [(f"/queues/{i.name}", _queue_fields(i)) for i in infos]
        return self._list(call, "Queues", "Queue", "QueueURL", rows, next_marker)

    # messages

    @staticmethod
    def _outgoing(elem: ET.Element) -> OutgoingMessage:
        fields = _fields(elem)
        if "MessageBody" not in fields:
            raise MnsError(
                "InvalidArgument",
                "The XML you provided did not validate against our published schema, cause by MessageBody.",
            )
        delay, priority = fields.get("DelaySeconds"), fields.get("Priority")
        return OutgoingMessage(
            fields["MessageBody"],
            None if delay is None else _int(delay, "DelaySeconds"),
            None if priority is None else _int(priority, "Priority"),
        )

    def _send(self, call: _Call) -> Reply:
        queue = call.names[0]
        elem = _parse(call.body, "Message", "Messages")  # SendMessage and BatchSendMessage share the URL
        if _local(elem.tag) == "Messages":
            return self._send_batch(queue, elem)
        message_id, md5 = self.store.send(queue, self._outgoing(elem))
        return Reply(201, _xml("Message", [("MessageId", message_id), ("MessageBodyMD5", md5)]))

    def _send_batch(self, queue: str, root: ET.Element) -> Reply:
        results = self.store.send_batch(queue, [self._outgoing(e) for e in root if _local(e.tag) == "Message"])
        items: list[tuple[str, Fields]] = [
            (
                "Message",
                [("ErrorCode", r.code), ("ErrorMessage", r.message)]
                if isinstance(r, MnsError)
                else [("MessageId", r[0]), ("MessageBodyMD5", r[1])],
            )
            for r in results
        ]
        # Partial failure: the SDK raises MNSServerException carrying every entry's outcome in `sub_errors`.
        failed = any(isinstance(r, MnsError) for r in results)
        return Reply(400 if failed else 201, _xml("Messages", (), items))

    def _receive(self, call: _Call) -> Reply:
        queue, query = call.names[0], call.query
        batch = "numofmessages" in query
        count = _int(query["numofmessages"], "numOfMessages", 1, MAX_BATCH) if batch else 1
        if _bool(query.get("peekonly", "false")):
            messages = self.store.peek(queue, count)
        else:
            wait = _int(query["waitseconds"], "waitseconds", 0, 30) if "waitseconds" in query else None
            messages = self.store.receive(queue, count, wait)
        if not messages:
            raise MnsError("MessageNotExist", "Message not exist.", 404)
        if batch:
            return Reply(200, _xml("Messages", (), [("Message", _message_fields(m)) for m in messages]))
        return Reply(200, _xml("Message", _message_fields(messages[0])))

    def _delete_messages(self, call: _Call) -> Reply:
        queue = call.names[0]
        if "receipthandle" in call.query:
            self.store.delete(queue, call.query["receipthandle"])
            return Reply(204)
        if not call.body.strip():
            raise MnsError("MissingReceiptHandle", "ReceiptHandle is required.")
        root = _parse(call.body, "ReceiptHandles")
        errors = self.store.delete_batch(
            queue, [(e.text or "").strip() for e in root if _local(e.tag) == "ReceiptHandle"]
        )
        if not errors:
            return Reply(204)
        items: list[tuple[str, Fields]] = [
            ("Error", [("ErrorCode", exc.code), ("ErrorMessage", exc.message), ("ReceiptHandle", handle)])
            for handle, exc in errors
        ]
        return Reply(404, _xml("Errors", (), items))

    def _change_visibility(self, call: _Call) -> Reply:
        if "receipthandle" not in call.query:
            raise MnsError("MissingReceiptHandle", "ReceiptHandle is required.")
        if "visibilitytimeout" not in call.query:
            raise MnsError("MissingVisibilityTimeout", "VisibilityTimeout is required.")
        handle, visible_at = self.store.change_visibility(
            call.names[0], call.query["receipthandle"], _int(call.query["visibilitytimeout"], "VisibilityTimeout")
        )
        return Reply(200, _xml("ChangeVisibility", [("ReceiptHandle", handle), ("NextVisibleTime", visible_at)]))

    # topics

    def _put_topic(self, call: _Call) -> Reply:
        (name,) = call.names
        fields = _fields(_parse(call.body, "Topic"))
        attrs = (
            {"MaximumMessageSize": _int(fields["MaximumMessageSize"], "MaximumMessageSize")}
            if "MaximumMessageSize" in fields
            else {}
        )
        logging_enabled = _bool(fields["LoggingEnabled"]) if "LoggingEnabled" in fields else None
        if _bool(call.query.get("metaoverride", "false")):
            self.store.set_topic_attributes(name, attrs, logging_enabled)
            return Reply(204)
        return self._created(self.store.create_topic(name, attrs, bool(logging_enabled)), f"/topics/{name}")

    def _get_topic(self, call: _Call) -> Reply:
        return Reply(200, _xml("Topic", _topic_fields(self.store.get_topic(call.names[0]))))

    def _delete_topic(self, call: _Call) -> Reply:
        self.store.delete_topic(call.names[0])
        return Reply(204)

    def _list_topics(self, call: _Call) -> Reply:
        infos, next_marker = self.store.list_topics(*self._paging(call))
        rows = [(f"/topics/{i.name}", _topic_fields(i)) for i in infos]
        return self._list(call, "Topics", "Topic", "TopicURL", rows, next_marker)

    def _publish(self, call: _Call) -> Reply:
        fields = _fields(_parse(call.body, "Message"))
        if "MessageBody" not in fields:
            raise MnsError(
                "InvalidArgument",
                "The XML you provided did not validate against our published schema, cause by MessageBody.",
            )
        message_id, md5 = self.store.publish(
            call.names[0], fields["MessageBody"], fields.get("MessageTag", ""), self.account_id
        )
        return Reply(201, _xml("Message", [("MessageId", message_id), ("MessageBodyMD5", md5)]))

    # subscriptions

    def _subscribe(self, call: _Call) -> Reply:
        topic, name = call.names
        fields = _fields(_parse(call.body, "Subscription"))
        if _bool(call.query.get("metaoverride", "false")):
            self.store.set_subscription_strategy(topic, name, fields.get("NotifyStrategy", "BACKOFF_RETRY"))
            return Reply(204)
        if not fields.get("Endpoint"):
            raise MnsError(
                "InvalidArgument",
                "The XML you provided did not validate against our published schema, cause by Endpoint.",
            )
        sub = Subscription(
            topic,
            name,
            fields["Endpoint"],
            "queue",
            fields.get("NotifyStrategy") or "BACKOFF_RETRY",
            fields.get("NotifyContentFormat") or "XML",
            fields.get("FilterTag", ""),
            0,
            0,
        )
        return self._created(self.store.subscribe(sub), f"/topics/{topic}/subscriptions/{name}")

    def _subscription_fields(self, sub: Subscription) -> list[tuple[str, object]]:
        fields: list[tuple[str, object]] = [
            ("TopicOwner", self.account_id),
            ("TopicName", sub.topic),
            ("SubscriptionName", sub.name),
            ("Endpoint", sub.endpoint),
            ("NotifyStrategy", sub.notify_strategy),
            ("NotifyContentFormat", sub.content_format),
            ("CreateTime", sub.create_time),
            ("LastModifyTime", sub.last_modify_time),
        ]
        return [*fields, ("FilterTag", sub.filter_tag)] if sub.filter_tag else fields

    def _get_subscription(self, call: _Call) -> Reply:
        sub = self.store.get_subscription(*call.names)
        return Reply(200, _xml("Subscription", self._subscription_fields(sub)))

    def _unsubscribe(self, call: _Call) -> Reply:
        self.store.unsubscribe(*call.names)
        return Reply(204)

    def _list_subscriptions(self, call: _Call) -> Reply:
        topic = call.names[0]
        subs, next_marker = self.store.list_subscriptions(topic, *self._paging(call))
        rows = [(f"/topics/{topic}/subscriptions/{s.name}", self._subscription_fields(s)) for s in subs]
        return self._list(call, "Subscriptions", "Subscription", "SubscriptionURL", rows, next_marker)


# -- HTTP plumbing --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the SDK keeps its connection alive
    disable_nagle_algorithm = True  # headers and body are two writes: avoid a 40 ms delayed-ACK stall on each
    server: _HttpServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.server.api.handle(self.command, self.path, self.headers, body)
        self.send_response(reply.status)
        headers = {"Date": formatdate(usegmt=True), "Content-Length": str(len(reply.body)), **reply.headers}
        if reply.body:
            headers["Content-Type"] = "text/xml;charset=utf-8"
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_PUT = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("local MNS %s: " + format, self.address_string(), *args)


class _HttpServer(ThreadingHTTPServer):
    """Tracks open connections so `stop()` can cut keep-alive and long-poll connections instead of waiting."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.api: MnsApi
        self._conns: set[socket.socket] = set()
        self._conns_changed = threading.Condition()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_changed:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self._conns_changed:
            self._conns.discard(request)
            self._conns_changed.notify_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # the client went away, or stop() cut the connection
            return
        log.exception("local MNS: error serving %s", client_address)

    def drop_connections(self, timeout: float) -> None:
        with self._conns_changed:
            for conn in self._conns:
                with contextlib.suppress(OSError):  # already closed by the client
                    conn.shutdown(socket.SHUT_RDWR)
            self._conns_changed.wait_for(lambda: not self._conns, timeout)


# -- the server -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _LocalSubscriber:
    topic: str
    name: str
    callback: LocalCallback
    content_format: Literal["JSON", "STREAM"]
    filter_tag: str
    notify_strategy: str


@dataclass(slots=True)
class _Worker:
    thread: threading.Thread
    stop: threading.Event


class MnsServer:
    """A local MNS endpoint in background threads. `credentials` maps AccessKeyId → secret (default: the
    LOCAL_ACCESS_KEY_ID/SECRET pair); `retry_policy` sets push retry delays (default: the cloud's)."""

    def __init__(
        self,
        db_path: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: Mapping[str, str] | None = None,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        region: str = DEFAULT_REGION,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.host = host
        self.port = port
        self.credentials = dict(credentials or {LOCAL_ACCESS_KEY_ID: LOCAL_ACCESS_KEY_SECRET})
        self.account_id = account_id
        self.region = region
        self.retry_policy = retry_policy or RetryPolicy()
        self._lock = threading.RLock()
        self._subscribers: dict[tuple[str, str], _LocalSubscriber] = {}
        self._workers: dict[tuple[str, ...], _Worker] = {}
        self._store: MnsStore | None = None
        self._httpd: _HttpServer | None = None
        self._serve_thread: threading.Thread | None = None

    # lifecycle

    def __enter__(self) -> MnsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> MnsServer:
        with self._lock:
            if self._httpd is not None:
                return self
            store = MnsStore(self.db_path)
            httpd = _HttpServer((self.host, self.port))
            bound_host, bound_port = httpd.server_address[:2]
            httpd.api = MnsApi(
                store, self.credentials, f"http://{bound_host}:{bound_port}", self.account_id, self.region
            )
            self._store, self._httpd = store, httpd
            self._serve_thread = threading.Thread(
                target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="mns-http", daemon=True
            )
            self._serve_thread.start()
            self._start_worker(("dispatch",), self._run_dispatch)
            try:
                for subscriber in self._subscribers.values():  # registrations outlive a stop()/start()
                    self._activate(subscriber)
            except BaseException:  # e.g. TopicNotExist: don't leave a half-started server behind
                self.stop()
                raise
            log.info("local MNS listening on %s (db %s)", self.endpoint, self.db_path)
            return self

    def stop(self) -> None:
        with self._lock:
            store, httpd = self._store, self._httpd
            if store is None or httpd is None:
                return
            for worker in self._workers.values():
                worker.stop.set()
            store.begin_close()  # wakes long polls and idle push threads at once
            httpd.shutdown()
            httpd.drop_connections(timeout=5.0)
            httpd.server_close()
            for worker in self._workers.values():
                if worker.thread is not threading.current_thread():
                    worker.thread.join(timeout=5.0)
            self._workers.clear()
            store.close()
            self._store = self._httpd = self._serve_thread = None

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def endpoint(self) -> str:
        """`http://127.0.0.1:PORT`, for `mns.account.Account(endpoint, ak, secret)`."""
        return self._api().host_id

    @property
    def store(self) -> MnsStore:
        """Direct access to the state (inspection in tests, seeding without HTTP)."""
        if self._store is None:
            raise RuntimeError("MnsServer is not running: call start() first")
        return self._store

    def _api(self) -> MnsApi:
        if self._httpd is None:
            raise RuntimeError("MnsServer is not running: call start() first")
        return self._httpd.api

    def account(self, access_key_id: str | None = None) -> Account:
        """An SDK `mns.account.Account` for this endpoint, signed with one of the configured key pairs."""
        from mns.account import Account  # the SDK is a client-side dependency; the server itself doesn't need it

        key_id = access_key_id or next(iter(self.credentials))
        return Account(self.endpoint, key_id, self.credentials[key_id])

    def queue_endpoint(self, queue: str) -> str:
        """The subscription Endpoint that pushes a topic into `queue`."""
        return f"acs:mns:{self.region}:{self.account_id}:queues/{queue}"

    # local subscribers (FC "MNS topic" triggers)

    def add_local_subscriber(
        self,
        topic: str,
        name: str,
        callback: LocalCallback,
        *,
        content_format: Literal["JSON", "STREAM"] = "JSON",
        filter_tag: str | None = None,
        notify_strategy: str = "BACKOFF_RETRY",
    ) -> None:
        """Subscribe `callback(event_bytes)` to `topic` (which must exist once the server runs). Re-adding the
        same (topic, name) after a restart picks up the deliveries still pending in the database."""
        if content_format not in ("JSON", "STREAM"):
            raise ValueError(f"content_format must be 'JSON' or 'STREAM', not {content_format!r}")
        subscriber = _LocalSubscriber(topic, name, callback, content_format, filter_tag or "", notify_strategy)
        with self._lock:
            if self._store is not None:
                self._activate(subscriber)
            self._subscribers[(topic, name)] = subscriber

    def remove_local_subscriber(self, topic: str, name: str) -> None:
        """Stop pushing to the callback and unsubscribe (pending deliveries are dropped, as MNS does)."""
        with self._lock:
            self._subscribers.pop((topic, name), None)
            self._stop_worker(("local", topic, name))
            if self._store is not None:
                try:
                    self._store.unsubscribe(topic, name)
                except MnsError as exc:  # already gone (topic deleted, unsubscribed through the API): fine
                    if exc.code not in ("TopicNotExist", "SubscriptionNotExist"):
                        raise

    def dead_letters(self, topic: str | None = None) -> list[DeadLetter]:
        """Messages whose pushes exhausted their retries (all topics when `topic` is None), oldest first."""
        return self.store.dead_letters(topic)

    def wait_for_deliveries(self, topic: str, subscription: str | None = None, timeout: float = 10.0) -> bool:
        """Block until every push of `topic` (or of one subscription) is delivered or dead-lettered; False on
        timeout. Local subscribers must be registered, else their deliveries stay pending."""
        return self.store.wait_no_pending(topic, subscription, timeout)

    def _activate(self, subscriber: _LocalSubscriber) -> None:
        self.store.subscribe(
            Subscription(
                subscriber.topic,
                subscriber.name,
                f"acs:fc:{self.region}:{self.account_id}:local/{subscriber.name}",
                "local",
                subscriber.notify_strategy,
                "JSON" if subscriber.content_format == "JSON" else "SIMPLIFIED",
                subscriber.filter_tag,
                0,
                0,
            ),
            replace=True,
        )
        key = ("local", subscriber.topic, subscriber.name)
        self._stop_worker(key)  # one push thread per subscription: no concurrent duplicate of a delivery
        self._start_worker(key, lambda stop: self._run_local(subscriber, stop))

    def _start_worker(self, key: tuple[str, ...], target: Callable[[threading.Event], None]) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=target, args=(stop,), name=f"mns-push-{'/'.join(key)}", daemon=True)
        self._workers[key] = _Worker(thread, stop)
        thread.start()

    def _stop_worker(self, key: tuple[str, ...]) -> None:
        worker = self._workers.pop(key, None)
        if worker is None:
            return
        worker.stop.set()
        if self._store is not None:
            self._store.wake(key)
        if worker.thread is not threading.current_thread():
            worker.thread.join(timeout=5.0)

    def _run_local(self, subscriber: _LocalSubscriber, stop: threading.Event) -> None:
        key = ("local", subscriber.topic, subscriber.name)
        store = self.store
        try:
            while (item := store.next_delivery(key, stop)) is not None:
                delivery, sub = item
                event = (
                    json.dumps(notification(sub, delivery, self.account_id), ensure_ascii=False).encode()
                    if sub.content_format == "JSON"
                    else delivery.body.encode("utf-8")
                )
                try:
                    subscriber.callback(event)
                except Exception as exc:
                    self._failed(store, delivery, sub, exc)
                else:
                    store.complete_delivery(delivery)
        except MnsError:
            if not store.closing:
                raise
            # stopping mid-delivery: the row stays, so the message is pushed again after a restart

    def _run_dispatch(self, stop: threading.Event) -> None:
        """Retries of topic → queue pushes that could not land at publish time (e.g. the queue was missing)."""
        store = self.store
        try:
            while (item := store.next_delivery(("dispatch",), stop)) is not None:
                delivery, sub = item
                try:
                    store.push_to_queue(delivery, self.account_id)
                except MnsError as exc:
                    if store.closing:
                        return
                    self._failed(store, delivery, sub, exc)
        except MnsError:
            if not store.closing:
                raise

    def _failed(self, store: MnsStore, delivery: Delivery, sub: Subscription, exc: BaseException) -> None:
        failures = delivery.attempts + 1
        retry_in = self.retry_policy.delay_after(sub.notify_strategy, failures)
        log.warning(
            "local MNS: push %s → %s/%s failed (attempt %d): %r; %s",
            delivery.message_id,
            sub.topic,
            sub.name,
            failures,
            exc,
            "dead-lettered" if retry_in is None else f"retry in {retry_in:.2f}s",
        )
        store.fail_delivery(delivery, f"{type(exc).__name__}: {exc}", retry_in)
