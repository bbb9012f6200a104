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
from shared.log import get_logger
from shared.vocabulary import MAX_JOB_ID_LENGTH

log = get_logger("fpscreen.notify")

# Job types MPS publishes on a pipeline topic that are certainly not fingerprint jobs: parked at once. Any other
# Type (one MPS may add or rename) is looked up by JobId, which is authoritative either way.
OTHER_JOB_TYPES = frozenset({"transcode", "snapshot", "analysis", "mediainfo", "mediaworkflow", "mediabcp"})
FP_SHOT_TYPES = frozenset({"fpshot", "fpshotjob", "aliyunfpshotjobnotify"})
# The fields a notification must carry; everything else is informational (the job is queried anyway).
REQUIRED = ("JobId", "State")


class NotifyParseError(ValueError):
    """The message is not an FpShot job notification; `reason` says why (for the parking log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FpShotJobNotify(WireModel):
    type: str | None = None
    # MPS job ids are 32 hex characters; one id, never a list (it becomes QueryFpShotJobList's JobIds).
    job_id: str = Field(min_length=1, max_length=MAX_JOB_ID_LENGTH, pattern=r"^[A-Za-z0-9_.:-]+$")
    state: str = Field(min_length=1, max_length=64)
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
    except RecursionError as exc:
        raise NotifyParseError("body is JSON nested too deeply to parse") from exc
    try:
        decoded = base64.b64decode(text, validate=True)
        return json.loads(decoded)
    except RecursionError as exc:
        raise NotifyParseError("body is base64 of JSON nested too deeply to parse") from exc
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
    elif inner is not None and "JobId" not in merged:
        raise NotifyParseError("FpShotJobNotify is neither an object nor a JSON string")
    kind = merged.get("Type")
    if kind is not None and str(kind).lower() in OTHER_JOB_TYPES:
        raise NotifyParseError(f"not a fingerprint job message (Type={kind!r})")
    if kind is not None and str(kind).lower() not in FP_SHOT_TYPES:
        log.warning("unknown notification Type: querying its JobId", extra={"type": str(kind)[:100]})
    try:
        return FpShotJobNotify.model_validate(merged)
    except RecursionError as exc:
        raise NotifyParseError("invalid FpShot notification: nested too deeply") from exc
    except ValidationError as exc:
        broken = {str(err["loc"][0]) if err["loc"] else "body" for err in exc.errors()}
        if broken & {*REQUIRED, "body"}:
            fields = ", ".join(".".join(str(p) for p in err["loc"]) or "body" for err in exc.errors())
            raise NotifyParseError(f"invalid FpShot notification: {fields}") from exc
        # Only informational fields are malformed: the job is queried by JobId anyway, so drop them.
        log.warning("ignoring malformed notification fields", extra={"fields": sorted(broken)})
        kept = {key: value for key, value in merged.items() if key not in broken}
        try:
            return FpShotJobNotify.model_validate(kept)
        except ValidationError as again:
            raise NotifyParseError(f"invalid FpShot notification: {again.error_count()} errors") from again
