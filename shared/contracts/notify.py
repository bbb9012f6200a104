"""The `AliyunFpShotJobNotify` message MPS publishes when a fingerprint job finishes.

The exact wire body is not pinned down by Alibaba's docs (reference §1.6): it may be flat or nested under
`FpShotJobNotify` (itself possibly a JSON string), keys may be PascalCase or lowerCamel (MPS duplicates both in
its generic job messages), and the body may arrive base64-encoded. `parse_fp_shot_job_notify` accepts all of it.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pydantic import Field, ValidationError

from shared.contracts.mps import FpShots
from shared.contracts.wire import WireModel


class NotifyParseError(ValueError):
    """The message is not an FpShot job notification; `reason` says why (for the parking log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FpShotJobNotify(WireModel):
    type: str | None = None
    job_id: str = Field(min_length=1)
    state: str = Field(min_length=1)
    code: str | None = None
    message: str | None = None
    user_data: str | None = None
    request_id: str | None = None
    fp_shots: FpShots | None = None


_ALIASES = {"Msg": "Message", "Jobid": "JobId", "Userdata": "UserData", "Requestid": "RequestId"}


def _pascal_keys(value: dict[str, Any]) -> dict[str, Any]:
    """lowerCamel -> PascalCase; when MPS sends both spellings the PascalCase one wins."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            continue
        pascal = key[0].upper() + key[1:]
        pascal = _ALIASES.get(pascal, pascal)
        if pascal not in out or key == pascal:
            out[pascal] = item
    return out


def decode_body(body: bytes | str) -> Any:
    """JSON first; if that fails, base64 then JSON (MNS queue consumers of the SDK encode bodies)."""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    text = raw.strip()
    if not text:
        raise NotifyParseError("empty message body")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    try:
        decoded = base64.b64decode(text, validate=True)
        return json.loads(decoded)
    except (binascii.Error, json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise NotifyParseError(f"body is neither JSON nor base64-encoded JSON ({type(exc).__name__})") from exc


def parse_fp_shot_job_notify(body: bytes | str) -> FpShotJobNotify:
    payload = decode_body(body)
    if isinstance(payload, str):  # JSON string holding JSON (double-encoded)
        payload = decode_body(payload)
    if not isinstance(payload, dict):
        raise NotifyParseError(f"expected a JSON object, got {type(payload).__name__}")
    outer = _pascal_keys(payload)
    inner = outer.pop("FpShotJobNotify", None)
    if isinstance(inner, str):
        inner = decode_body(inner)
    merged = dict(outer)
    if isinstance(inner, dict):
        merged.update({k: v for k, v in _pascal_keys(inner).items() if v is not None})
    elif inner is not None:
        raise NotifyParseError("FpShotJobNotify is neither an object nor a JSON string")
    kind = merged.get("Type")
    if kind is not None and str(kind).lower() not in {"fpshot", "fpshotjob", "aliyunfpshotjobnotify"}:
        raise NotifyParseError(f"not a fingerprint job message (Type={kind!r})")
    try:
        return FpShotJobNotify.model_validate(merged)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) or "body" for err in exc.errors())
        raise NotifyParseError(f"invalid FpShot notification: {fields}") from exc
