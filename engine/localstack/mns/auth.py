"""MNS request signatures: `Authorization: MNS <AccessKeyId>:<base64 HMAC-SHA1>` over method, Content-MD5,
Content-Type, Date, the sorted `x-mns-*` headers and the resource, checked as MNS does (clock skew, MD5)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Protocol

from engine.localstack.mns.store import MnsError

MAX_CLOCK_SKEW = 15 * 60  # seconds; beyond it MNS answers TimeExpired


class HeaderItems(Protocol):
    def items(self) -> Iterable[tuple[str, str]]: ...


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
    credentials: Mapping[str, str], method: str, resource: str, raw_headers: HeaderItems, body: bytes
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
