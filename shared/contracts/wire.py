"""Building blocks for Alibaba's wire formats: PascalCase aliases, numbers sent as strings, JSON-in-a-string."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_pascal


class WireModel(BaseModel):
    """Base of every Alibaba wire model: Python snake_case fields, Alibaba PascalCase on the wire.

    Unknown fields are ignored (Alibaba adds fields over time); both alias and field name populate.
    """

    model_config = ConfigDict(
        alias_generator=to_pascal,
        populate_by_name=True,
        extra="ignore",
        protected_namespaces=(),
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict exactly as Alibaba sends it."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_wire_json(self) -> str:
        return json.dumps(self.to_wire(), ensure_ascii=False, separators=(",", ":"))


def format_number(value: float) -> str:
    """Shortest faithful decimal form: 1260.0 -> "1260", 0.8914769887924194 -> "0.8914769887924194"."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _parse_number(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0.0
        return float(text)
    return value


# A number that Alibaba sends as a string ("1260", "0.89..."): a float in Python, a string on the wire.
StrFloat = Annotated[
    float,
    BeforeValidator(_parse_number),
    PlainSerializer(format_number, return_type=str, when_used="json"),
]


def _parse_json_string(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} at position {exc.pos}") from exc
    return value


def _dump_json_string(value: Any) -> str:
    if isinstance(value, BaseModel):
        return json.dumps(
            value.model_dump(mode="json", by_alias=True, exclude_none=True),
            ensure_ascii=False,
            separators=(",", ":"),
        )
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# A field holding a model in Python and a JSON *string* on the wire (MPS `Input`, `FpShotConfig`):
# `field: Annotated[Model, FROM_JSON_STRING, TO_JSON_STRING]` (a form type checkers understand).
FROM_JSON_STRING = BeforeValidator(_parse_json_string)
TO_JSON_STRING = PlainSerializer(_dump_json_string, return_type=str, when_used="json")


def json_string_of(model: type) -> Any:
    """`Annotated[model, FROM_JSON_STRING, TO_JSON_STRING]` built at runtime (type checkers can't read it)."""
    return Annotated[model, FROM_JSON_STRING, TO_JSON_STRING]
