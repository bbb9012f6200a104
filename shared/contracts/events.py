"""FC 2.0 trigger events (the handler receives them as bytes): OSS, MNS topic and timer."""

from __future__ import annotations

import json
from typing import Any, TypeVar
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from shared.contracts.wire import WireModel
from shared.vocabulary import DEFAULT_REGION

M = TypeVar("M", bound=BaseModel)


class EventParseError(ValueError):
    """A trigger event that cannot be understood; the message says what is wrong."""


def _load_json(event: bytes | str | dict[str, Any], kind: str) -> Any:
    if isinstance(event, dict):
        return event
    try:
        return json.loads(event)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventParseError(f"{kind} event is not JSON: {exc}") from exc
    except RecursionError as exc:  # thousands of nested brackets: no retry can parse it either
        raise EventParseError(f"{kind} event is JSON nested too deeply to parse") from exc


def _validate(model: type[M], data: Any, kind: str) -> M:
    try:
        return model.model_validate(data)
    except RecursionError as exc:
        raise EventParseError(f"malformed {kind} event: nested too deeply") from exc
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors())
        raise EventParseError(f"malformed {kind} event: {fields}") from exc


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class OssBucket(CamelModel):
    name: str = Field(min_length=1)
    arn: str | None = None
    owner_identity: str | None = None


class OssObject(CamelModel):
    key: str = Field(min_length=1)
    size: int | None = None
    e_tag: str | None = Field(default=None, alias="eTag")
    delta_size: int | None = None
    version_id: str | None = None

    @field_validator("key")
    @classmethod
    def _decode_key(cls, value: str) -> str:
        # Whether FC URL-encodes `key` is undocumented: decode %XX escapes, which a real key rarely holds.
        return unquote(value)


class OssInfo(CamelModel):
    bucket: OssBucket
    object: OssObject
    oss_schema_version: str | None = None
    rule_id: str | None = None


class OssEventRecord(CamelModel):
    event_name: str
    event_source: str | None = None
    event_time: str | None = None
    event_version: str | None = None
    region: str = ""
    oss: OssInfo

    @property
    def bucket(self) -> str:
        return self.oss.bucket.name

    @property
    def key(self) -> str:
        return self.oss.object.key

    @property
    def location(self) -> str:
        """MPS `Input.Location` for this bucket: `oss-<region>`."""
        return f"oss-{self.region or DEFAULT_REGION}"

    @property
    def is_object_created(self) -> bool:
        return self.event_name.removeprefix("oss:").startswith("ObjectCreated")

    @property
    def version_tag(self) -> str:
        """What tells one upload of a key from another: version id, else ETag, else event time."""
        obj = self.oss.object
        return obj.version_id or (obj.e_tag or "").strip('"').lower() or (self.event_time or "")


class OssEvent(CamelModel):
    events: list[OssEventRecord] = Field(min_length=1)


class MnsTopicEnvelope(WireModel):
    """The JSON form of an MNS topic push (NotifyContentFormat=JSON); STREAM delivers just the body."""

    topic_owner: str | None = None
    topic_name: str | None = None
    subscriber: str | None = None
    subscription_name: str | None = None
    message_id: str | None = None
    message: str
    message_md5: str | None = Field(default=None, alias="MessageMD5")
    message_tag: str | None = None
    publish_time: int | str | None = None


class MnsTopicMessage(BaseModel):
    """What the store-results function needs from one MNS delivery: the body and, if known, its id."""

    body: bytes
    message_id: str | None = None
    topic_name: str | None = None
    attrs: dict[str, str] = Field(default_factory=dict)  # message attributes (STREAM with attributes)


def _attrs_of(value: Any) -> dict[str, str] | None:
    """FC's STREAM event for a message with attributes is `{"body": "<message>", "attrs": {...}}`."""
    if not isinstance(value, dict) or set(value) != {"body", "attrs"} or not isinstance(value["body"], str):
        return None
    attrs = value["attrs"]
    if not isinstance(attrs, dict):
        return None
    return {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in attrs.items()}


class TimerEvent(CamelModel):
    trigger_time: str | None = None
    trigger_name: str | None = None
    payload: str | None = None


def parse_oss_event(event: bytes | str | dict[str, Any]) -> OssEvent:
    return _validate(OssEvent, _load_json(event, "OSS"), "OSS")


def parse_mns_topic_event(event: bytes | str) -> MnsTopicMessage:
    """Accept both NotifyContentFormat values: JSON (an envelope with `Message`) and STREAM (the raw body)."""
    raw = event.encode("utf-8") if isinstance(event, str) else bytes(event)
    if not raw.strip():
        raise EventParseError("MNS topic event is empty")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return MnsTopicMessage(body=raw)  # the notification parser decides (and says why it cannot)
    attrs = _attrs_of(data)
    if attrs is not None:
        return MnsTopicMessage(body=data["body"].encode("utf-8"), attrs=attrs)
    if isinstance(data, dict) and "Message" in data and ("TopicName" in data or "MessageId" in data):
        envelope = _validate(MnsTopicEnvelope, data, "MNS topic")
        return MnsTopicMessage(
            body=envelope.message.encode("utf-8"),
            message_id=envelope.message_id,
            topic_name=envelope.topic_name,
        )
    return MnsTopicMessage(body=raw)


def parse_timer_event(event: bytes | str | dict[str, Any] | None) -> TimerEvent:
    if event is None or (isinstance(event, (bytes, str)) and not event.strip()):
        return TimerEvent()
    data = _load_json(event, "timer")
    if not isinstance(data, dict):
        raise EventParseError("malformed timer event: expected a JSON object")
    return _validate(TimerEvent, data, "timer")
