"""The 17 MNS operations (plus account meta): a request → `Reply`, independent of the transport."""

from __future__ import annotations

import logging
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol
from urllib.parse import unquote

from engine.localstack.mns.auth import HeaderItems, authenticate
from engine.localstack.mns.protocol import (
    MNS_VERSION,
    XMLNS,
    Fields,
    append_fields,
    bool_arg,
    doc_fields,
    error_doc,
    int_arg,
    local_name,
    message_fields,
    parse_doc,
    parse_query,
    queue_fields,
    render_notification,
    topic_fields,
    xml_doc,
)
from engine.localstack.mns.store import (
    MAX_BATCH,
    QUEUE_DEFAULTS,
    MnsError,
    MnsStore,
    OutgoingMessage,
    Subscription,
)

log = logging.getLogger(__name__)


class Headers(HeaderItems, Protocol):
    def get(self, name: str, default: str = ..., /) -> str: ...


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
    headers: Headers


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
        # What a topic pushes into a subscribed queue (XML/JSON/SIMPLIFIED per subscription).
        self.render = partial(render_notification, account_id=account_id)
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

    def handle(self, method: str, target: str, headers: Headers, body: bytes) -> Reply:
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
        return Reply(exc.status, error_doc(exc, request_id, self.host_id))

    def _route(self, method: str, target: str, headers: Headers, body: bytes) -> Reply:
        path, _, raw_query = target.partition("?")
        parts = [unquote(p) for p in path.split("/") if p]
        query = parse_query(raw_query)
        if not parts and "accountmeta" in query:
            return self._account(method, body)
        shape = tuple(part if i % 2 == 0 else "*" for i, part in enumerate(parts))
        handler = self._routes.get((method, shape))
        if handler is None:
            raise MnsError("InvalidRequestURL", "Http request URL format invalid.")
        return handler(_Call(parts[1::2], query, body, headers))

    def _account(self, method: str, body: bytes) -> Reply:
        if method == "PUT":
            self.logging_bucket = doc_fields(parse_doc(body, "Account")).get("LoggingBucket", self.logging_bucket)
            return Reply(204)
        return Reply(200, xml_doc("Account", [("LoggingBucket", self.logging_bucket)]))

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
        with_meta = bool_arg(call.headers.get("x-mns-with-meta", "false"))
        elem = ET.Element(root, xmlns=XMLNS)
        for path, meta in rows:
            append_fields(ET.SubElement(elem, item), [(url_tag, f"{self.host_id}{path}"), *(meta if with_meta else [])])
        if next_marker:
            append_fields(elem, [("NextMarker", next_marker)])
        return Reply(200, ET.tostring(elem, encoding="utf-8", xml_declaration=True))

    @staticmethod
    def _paging(call: _Call) -> tuple[str, str, int]:
        limit = call.headers.get("x-mns-ret-number")
        return (
            call.headers.get("x-mns-prefix", ""),
            call.headers.get("x-mns-marker", ""),
            int_arg(limit, "x-mns-ret-number", 1, 1000) if limit else 1000,
        )

    # queues

    @staticmethod
    def _queue_meta(body: bytes) -> tuple[dict[str, int], bool | None]:
        fields = doc_fields(parse_doc(body, "Queue"))
        attrs = {key: int_arg(fields[key], key) for key in QUEUE_DEFAULTS if key in fields}
        return attrs, bool_arg(fields["LoggingEnabled"]) if "LoggingEnabled" in fields else None

    def _put_queue(self, call: _Call) -> Reply:
        (name,) = call.names
        attrs, logging_enabled = self._queue_meta(call.body)
        if bool_arg(call.query.get("metaoverride", "false")):
            self.store.set_queue_attributes(name, attrs, logging_enabled)
            return Reply(204)
        return self._created(self.store.create_queue(name, attrs, bool(logging_enabled)), f"/queues/{name}")

    def _get_queue(self, call: _Call) -> Reply:
        return Reply(200, xml_doc("Queue", queue_fields(self.store.get_queue(call.names[0]))))

    def _delete_queue(self, call: _Call) -> Reply:
        self.store.delete_queue(call.names[0])
        return Reply(204)

    def _list_queues(self, call: _Call) -> Reply:
        infos, next_marker = self.store.list_queues(*self._paging(call))
        rows = [(f"/queues/{i.name}", queue_fields(i)) for i in infos]
        return self._list(call, "Queues", "Queue", "QueueURL", rows, next_marker)

    # messages

    @staticmethod
    def _outgoing(elem: ET.Element) -> OutgoingMessage:
        fields = doc_fields(elem)
        if "MessageBody" not in fields:
            raise MnsError(
                "InvalidArgument",
                "The XML you provided did not validate against our published schema, cause by MessageBody.",
            )
        delay, priority = fields.get("DelaySeconds"), fields.get("Priority")
        return OutgoingMessage(
            fields["MessageBody"],
            None if delay is None else int_arg(delay, "DelaySeconds"),
            None if priority is None else int_arg(priority, "Priority"),
        )

    def _send(self, call: _Call) -> Reply:
        queue = call.names[0]
        elem = parse_doc(call.body, "Message", "Messages")  # SendMessage and BatchSendMessage share the URL
        if local_name(elem.tag) == "Messages":
            return self._send_batch(queue, elem)
        message_id, md5 = self.store.send(queue, self._outgoing(elem))
        return Reply(201, xml_doc("Message", [("MessageId", message_id), ("MessageBodyMD5", md5)]))

    def _send_batch(self, queue: str, root: ET.Element) -> Reply:
        results = self.store.send_batch(queue, [self._outgoing(e) for e in root if local_name(e.tag) == "Message"])
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
        return Reply(400 if failed else 201, xml_doc("Messages", (), items))

    def _receive(self, call: _Call) -> Reply:
        queue, query = call.names[0], call.query
        batch = "numofmessages" in query
        count = int_arg(query["numofmessages"], "numOfMessages", 1, MAX_BATCH) if batch else 1
        if bool_arg(query.get("peekonly", "false")):
            messages = self.store.peek(queue, count)
        else:
            wait = int_arg(query["waitseconds"], "waitseconds", 0, 30) if "waitseconds" in query else None
            messages = self.store.receive(queue, count, wait)
        if not messages:
            raise MnsError("MessageNotExist", "Message not exist.", 404)
        if batch:
            return Reply(200, xml_doc("Messages", (), [("Message", message_fields(m)) for m in messages]))
        return Reply(200, xml_doc("Message", message_fields(messages[0])))

    def _delete_messages(self, call: _Call) -> Reply:
        queue = call.names[0]
        if "receipthandle" in call.query:
            self.store.delete(queue, call.query["receipthandle"])
            return Reply(204)
        if not call.body.strip():
            raise MnsError("MissingReceiptHandle", "ReceiptHandle is required.")
        root = parse_doc(call.body, "ReceiptHandles")
        errors = self.store.delete_batch(
            queue, [(e.text or "").strip() for e in root if local_name(e.tag) == "ReceiptHandle"]
        )
        if not errors:
            return Reply(204)
        items: list[tuple[str, Fields]] = [
            ("Error", [("ErrorCode", exc.code), ("ErrorMessage", exc.message), ("ReceiptHandle", handle)])
            for handle, exc in errors
        ]
        return Reply(404, xml_doc("Errors", (), items))

    def _change_visibility(self, call: _Call) -> Reply:
        if "receipthandle" not in call.query:
            raise MnsError("MissingReceiptHandle", "ReceiptHandle is required.")
        if "visibilitytimeout" not in call.query:
            raise MnsError("MissingVisibilityTimeout", "VisibilityTimeout is required.")
        handle, visible_at = self.store.change_visibility(
            call.names[0], call.query["receipthandle"], int_arg(call.query["visibilitytimeout"], "VisibilityTimeout")
        )
        return Reply(200, xml_doc("ChangeVisibility", [("ReceiptHandle", handle), ("NextVisibleTime", visible_at)]))

    # topics

    def _put_topic(self, call: _Call) -> Reply:
        (name,) = call.names
        fields = doc_fields(parse_doc(call.body, "Topic"))
        attrs = (
            {"MaximumMessageSize": int_arg(fields["MaximumMessageSize"], "MaximumMessageSize")}
            if "MaximumMessageSize" in fields
            else {}
        )
        logging_enabled = bool_arg(fields["LoggingEnabled"]) if "LoggingEnabled" in fields else None
        if bool_arg(call.query.get("metaoverride", "false")):
            self.store.set_topic_attributes(name, attrs, logging_enabled)
            return Reply(204)
        return self._created(self.store.create_topic(name, attrs, bool(logging_enabled)), f"/topics/{name}")

    def _get_topic(self, call: _Call) -> Reply:
        return Reply(200, xml_doc("Topic", topic_fields(self.store.get_topic(call.names[0]))))

    def _delete_topic(self, call: _Call) -> Reply:
        self.store.delete_topic(call.names[0])
        return Reply(204)

    def _list_topics(self, call: _Call) -> Reply:
        infos, next_marker = self.store.list_topics(*self._paging(call))
        rows = [(f"/topics/{i.name}", topic_fields(i)) for i in infos]
        return self._list(call, "Topics", "Topic", "TopicURL", rows, next_marker)

    def _publish(self, call: _Call) -> Reply:
        fields = doc_fields(parse_doc(call.body, "Message"))
        if "MessageBody" not in fields:
            raise MnsError(
                "InvalidArgument",
                "The XML you provided did not validate against our published schema, cause by MessageBody.",
            )
        message_id, md5 = self.store.publish(
            call.names[0], fields["MessageBody"], fields.get("MessageTag", ""), self.render
        )
        return Reply(201, xml_doc("Message", [("MessageId", message_id), ("MessageBodyMD5", md5)]))

    # subscriptions

    def _subscribe(self, call: _Call) -> Reply:
        topic, name = call.names
        fields = doc_fields(parse_doc(call.body, "Subscription"))
        if bool_arg(call.query.get("metaoverride", "false")):
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
        return Reply(200, xml_doc("Subscription", self._subscription_fields(sub)))

    def _unsubscribe(self, call: _Call) -> Reply:
        self.store.unsubscribe(*call.names)
        return Reply(204)

    def _list_subscriptions(self, call: _Call) -> Reply:
        topic = call.names[0]
        subs, next_marker = self.store.list_subscriptions(topic, *self._paging(call))
        rows = [(f"/topics/{topic}/subscriptions/{s.name}", self._subscription_fields(s)) for s in subs]
        return self._list(call, "Subscriptions", "Subscription", "SubscriptionURL", rows, next_marker)
