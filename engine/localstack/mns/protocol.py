"""The MNS wire format: XML documents in and out, query parsing, error codes, and the notification bodies a topic
pushes (XML / JSON / SIMPLIFIED). No state, no sockets."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from urllib.parse import unquote
from xml.sax.saxutils import escape

from engine.localstack.mns.store import Delivery, MnsError, QueueInfo, QueueMessage, Subscription, TopicInfo

XMLNS = "http://mns.aliyuncs.com/doc/v1/"
MNS_VERSION = "2015-06-06"

__all__ = ["MNS_VERSION", "XMLNS", "MnsError"]

Fields = Iterable[tuple[str, object]]


def xml_doc(root: str, fields: Fields = (), items: Iterable[tuple[str, Fields]] = ()) -> bytes:
    """`<root xmlns=MNS>` with `fields` as child elements, then one child element per (tag, fields) item."""
    elem = ET.Element(root, xmlns=XMLNS)
    append_fields(elem, fields)
    for tag, item_fields in items:
        append_fields(ET.SubElement(elem, tag), item_fields)
    return ET.tostring(elem, encoding="utf-8", xml_declaration=True)


def append_fields(parent: ET.Element, fields: Fields) -> None:
    for tag, value in fields:
        ET.SubElement(parent, tag).text = str(value)


def local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse_doc(body: bytes, *roots: str) -> ET.Element:
    """The request document (namespace-agnostic), whose root must be one of `roots`; empty body: `<roots[0]/>`."""
    if not body.strip():
        return ET.Element(roots[0])
    try:
        elem = ET.fromstring(body)
    except ET.ParseError as exc:
        raise MnsError("MalformedXML", "The XML you provided was not well-formed.") from exc
    if local_name(elem.tag) not in roots:
        raise MnsError(
            "InvalidArgument",
            f"The XML you provided did not validate against our published schema, cause by {local_name(elem.tag)}.",
        )
    return elem


def doc_fields(elem: ET.Element) -> dict[str, str]:
    return {local_name(child.tag): child.text or "" for child in elem}


def int_arg(value: str, name: str, low: int | None = None, high: int | None = None) -> int:
    try:
        number = int(value.strip())
    except ValueError as exc:
        raise MnsError("InvalidArgument", f"The value of {name} is not an integer: {value!r}.") from exc
    if (low is not None and number < low) or (high is not None and number > high):
        raise MnsError("InvalidArgument", f"The value of {name} should between {low} and {high}.")
    return number


def bool_arg(value: str) -> bool:
    return value.strip().lower() == "true"


def parse_query(raw: str) -> dict[str, str]:
    # No `+`-as-space: the SDK puts receipt handles into the query unencoded. Names are case-insensitive here.
    out = {}
    for piece in raw.split("&"):
        if piece:
            key, _, value = piece.partition("=")
            out[unquote(key).lower()] = unquote(value)
    return out


def message_fields(msg: QueueMessage) -> list[tuple[str, object]]:
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


def queue_fields(info: QueueInfo) -> list[tuple[str, object]]:
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


def topic_fields(info: TopicInfo) -> list[tuple[str, object]]:
    return [
        ("TopicName", info.name),
        ("CreateTime", info.create_time),
        ("LastModifyTime", info.last_modify_time),
        *info.attributes.items(),
        ("MessageCount", info.message_count),
        ("LoggingEnabled", info.logging_enabled),
    ]


def notification(sub: Subscription, d: Delivery, account_id: str) -> dict[str, str]:
    """The JSON NotifyContentFormat (also the FC MNS-topic trigger event in JSON mode); `Message` is the raw body."""
    return {
        "TopicOwner": account_id,
        "TopicName": d.topic,
        "Subscriber": account_id,
        "SubscriptionName": sub.name,
        "MessageId": d.message_id,
        "Message": d.body,
        "MessageMD5": d.body_md5,
        "MessageTag": d.message_tag,
        "PublishTime": str(d.publish_time),
    }


def render_notification(sub: Subscription, d: Delivery, account_id: str) -> str:
    """What a push endpoint receives for `sub.content_format`: SIMPLIFIED is the body as published, untouched."""
    if sub.content_format == "SIMPLIFIED":
        return d.body
    note = notification(sub, d, account_id)
    if sub.content_format == "JSON":
        return json.dumps(note, ensure_ascii=False)
    if not d.message_tag:
        del note["MessageTag"]
    # "xlmns" is MNS's own (documented) spelling: consumers written against it parse without namespaces.
    fields = "".join(f"<{key}>{escape(value)}</{key}>" for key, value in note.items())
    return f'<?xml version="1.0" encoding="utf-8"?><Notification xlmns="{XMLNS}">{fields}</Notification>'


def error_doc(exc: MnsError, request_id: str, host_id: str) -> bytes:
    fields = [("Code", exc.code), ("Message", exc.message), ("RequestId", request_id), ("HostId", host_id)]
    return xml_doc("Error", fields)
