"""Server-side verification of Alibaba Cloud POP request signatures, standard library only.

Two styles reach an MPS endpoint (see shared/spec/aliyun-reference.md, Part 2 §3):

* RPC v1 (aliyun-python-sdk-core, Tea with `signature_algorithm="v2"`): every parameter, `Action`/`Version`
  and the signature parameters in the query string; `Signature = base64(HMAC-SHA1(secret + "&", StringToSign))`.
* ACS3-HMAC-SHA256 (Tea default): business parameters in the query, `Action`/`Version` in `x-acs-*` headers,
  `Authorization: ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=…,Signature=<hex>`.

Error codes follow Alibaba's OpenAPI gateway table (help.aliyun.com document 48054 and the SDK sources):
`Missing{Name}` (400), `SignatureDoesNotMatch` (400, RPC v1), `IncompleteSignature` (400, ACS3 mismatch or a
malformed Authorization header), `InvalidAccessKeyId.NotFound` (404), `InvalidTimeStamp.Format` /
`InvalidTimeStamp.Expired` (400, ±15 min), `SignatureNonceUsed` (400), `InvalidVersion` (400),
`InvalidSecurityToken.MismatchWithAccessKey` (400).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, Protocol
from urllib.parse import parse_qsl, quote

MAX_CLOCK_SKEW_SECONDS = 15 * 60
DEFAULT_HOST_ID = "mts.cn-shanghai.aliyuncs.com"
ACS3_ALGORITHM = "ACS3-HMAC-SHA256"
RPC_SIGNATURE_METHOD = "HMAC-SHA1"
RPC_SIGNATURE_VERSION = "1.0"

# Parameters of the RPC v1 envelope: not business parameters, so not handed to the action handler.
RPC_COMMON_PARAMS: frozenset[str] = frozenset(
    {
        "Action",
        "Version",
        "Format",
        "AccessKeyId",
        "Signature",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "SignatureType",
        "Timestamp",
        "SecurityToken",
        "RegionId",
    }
)

HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]]


class AuthError(Exception):
    """A refused request, with Alibaba's error code and HTTP status."""

    def __init__(self, code: str, message: str, http_status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status

    def to_body(self, *, request_id: str | None = None, host_id: str = DEFAULT_HOST_ID) -> dict[str, str]:
        return error_body(self.code, self.message, request_id=request_id, host_id=host_id)


@dataclass(frozen=True, slots=True)
class AuthResult:
    access_key_id: str
    action: str
    version: str
    params: dict[str, str]  # business parameters (query + form body), envelope parameters removed
    style: Literal["RPC", "ACS3"]
    security_token: str | None = None


def new_request_id() -> str:
    """Alibaba-style request id: an upper-case UUID (`25818875-5F78-4A13-BEF6-D7393642CA58`)."""
    return str(uuid.uuid4()).upper()


def error_body(
    code: str, message: str, *, request_id: str | None = None, host_id: str = DEFAULT_HOST_ID
) -> dict[str, str]:
    """Alibaba's error JSON: `{"RequestId","HostId","Code","Message"}`."""
    return {"RequestId": request_id or new_request_id(), "HostId": host_id, "Code": code, "Message": message}


# ------------------------------------------------------------------------------------------ nonces


class NonceLedger(Protocol):
    """Where seen signature nonces are remembered: in memory (`NonceCache`) or durably (`DurableNonceLedger`)."""

    def add(self, key: str, *, expires_at: float, now: float) -> bool:
        """Remember `key` until `expires_at`; False if it is already remembered (a replay)."""
        ...


class NonceCache:
    """Seen signature nonces, each kept until its request would be refused as stale anyway.

    Memory is bounded: past `max_entries` the entries closest to expiry are dropped first (a replay of those
    is only possible for the little validity they had left). Thread-safe.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max_entries = max_entries
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def add(self, key: str, *, expires_at: float, now: float) -> bool:
        """Remember `key` until `expires_at`; False if it is already remembered (a replay)."""
        with self._lock:
            self._purge(now)
            seen = self._expiry.get(key)
            if seen is not None and seen > now:
                return False
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            while len(self._expiry) > self._max_entries:
                self._pop_earliest()
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            self._pop_earliest()

    def _pop_earliest(self) -> None:
        expires_at, key = heapq.heappop(self._heap)
        if self._expiry.get(key) == expires_at:  # else a stale heap entry of a re-added key
            del self._expiry[key]


# --------------------------------------------------------------------------------------- canonical


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Alibaba signs it: space `%20`, `*` `%2A`, `~` kept."""
    return quote(value, safe="~", encoding="utf-8")


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Decode a query string; `+` is a space (the Tea SDK encodes spaces that way) and blanks are kept."""
    return parse_qsl(raw_query, keep_blank_values=True, encoding="utf-8")


def rpc_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"


def rpc_signature(secret: str, string_to_sign: str) -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def acs3_canonical_request(
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, list[str]],
    signed_headers: list[str],
    payload_sha256: str,
) -> str:
    query = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    canonical_headers = "".join(
        f"{name}:{','.join(sorted(v.strip() for v in headers.get(name, [])))}\n" for name in signed_headers
    )
    return "\n".join([method.upper(), path or "/", query, canonical_headers, ";".join(signed_headers), payload_sha256])


def acs3_string_to_sign(canonical_request: str) -> str:
    return f"{ACS3_ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"


def acs3_signature(secret: str, string_to_sign: str) -> str:
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------------------------ verify


def verify_request(
    method: str,
    path: str,
    query_items: Iterable[tuple[str, str]],
    headers: HeaderInput,
    body: bytes,
    *,
    secrets: Mapping[str, str],
    now: float,
    nonce_cache: NonceLedger,
    security_tokens: Mapping[str, str] | None = None,
    expected_version: str | None = None,
    max_skew: float = MAX_CLOCK_SKEW_SECONDS,
) -> AuthResult:
    """Check one request's signature, clock and nonce; return who sent which action with which parameters.

    `query_items` are decoded pairs (`parse_query`), `now` is epoch seconds. `security_tokens` maps an
    AccessKeyId to the STS token it must come with (keys absent from it need none). Raises `AuthError`.
    The nonce is recorded only after the signature verified, so forged requests cannot burn nonces.
    """
    header_map = _normalize_headers(headers)
    query = _unique_params(query_items)
    form = _form_params(header_map, body)
    authorization = _first(header_map, "authorization")
    if authorization:
        return _verify_acs3(
            method,
            path,
            query,
            form,
            header_map,
            body,
            authorization,
            secrets=secrets,
            now=now,
            nonce_cache=nonce_cache,
            security_tokens=security_tokens,
            expected_version=expected_version,
            max_skew=max_skew,
        )
    if "Signature" not in query and "Signature" not in form:
        raise _missing("Signature")
    return _verify_rpc(
        method,
        query,
        form,
        secrets=secrets,
        now=now,
        nonce_cache=nonce_cache,
        security_tokens=security_tokens,
        expected_version=expected_version,
        max_skew=max_skew,
    )


def _verify_rpc(
    method: str,
    query: dict[str, str],
    form: dict[str, str],
    *,
    secrets: Mapping[str, str],
    now: float,
    nonce_cache: NonceLedger,
    security_tokens: Mapping[str, str] | None,
    expected_version: str | None,
    max_skew: float,
) -> AuthResult:
    params = _merge(query, form)  # the CoreSDK signs form-body parameters together with the query
    for name in ("AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"):
        if not params.get(name):
            raise _missing(name)
    if params["SignatureMethod"] != RPC_SIGNATURE_METHOD:
        raise _invalid("SignatureMethod")
    if params["SignatureVersion"] != RPC_SIGNATURE_VERSION:
        raise _invalid("SignatureVersion")
    action, version = params.get("Action", ""), params.get("Version", "")
    if not action:
        raise _missing("Action")
    _check_version(version, expected_version)
    access_key_id = params["AccessKeyId"]
    secret = _secret_for(access_key_id, secrets)
    timestamp = _check_timestamp(params["Timestamp"], now, max_skew)
    string_to_sign = rpc_string_to_sign(method, params)
    expected = rpc_signature(secret, string_to_sign)
    if not hmac.compare_digest(expected.encode(), params["Signature"].encode()):
        # The CoreSDK splits this message on ":" to tell a wrong secret from a wrong canonical string.
        raise AuthError(
            "SignatureDoesNotMatch",
            f"Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}",
        )
    token = params.get("SecurityToken") or None
    _check_token(access_key_id, token, security_tokens)
    _use_nonce(nonce_cache, access_key_id, params["SignatureNonce"], timestamp + max_skew, now)
    business = {k: v for k, v in params.items() if k not in RPC_COMMON_PARAMS}
    return AuthResult(access_key_id, action, version, business, "RPC", token)


def _verify_acs3(
    method: str,
    path: str,
    query: dict[str, str],
    form: dict[str, str],
    headers: dict[str, list[str]],
    body: bytes,
    authorization: str,
    *,
    secrets: Mapping[str, str],
    now: float,
    nonce_cache: NonceLedger,
    security_tokens: Mapping[str, str] | None,
    expected_version: str | None,
    max_skew: float,
) -> AuthResult:
    access_key_id, signed_headers, signature = _parse_authorization(authorization)
    action = _first(headers, "x-acs-action")
    if not action:
        raise _missing("Action")
    version = _first(headers, "x-acs-version")
    _check_version(version, expected_version)
    date = _first(headers, "x-acs-date")
    if not date:
        raise _missing("Timestamp")
    nonce = _first(headers, "x-acs-signature-nonce")
    if not nonce:
        raise _missing("SignatureNonce")
    content_sha256 = _first(headers, "x-acs-content-sha256")
    if not content_sha256:
        raise _missing("ContentSHA256")
    # Every x-acs-* header and Host must be covered, or a replayed request could swap the action or token.
    unsigned = sorted(n for n in headers if (n.startswith("x-acs-") or n == "host") and n not in signed_headers)
    if unsigned:
        raise _incomplete(f"the headers {', '.join(unsigned)} must be signed")
    secret = _secret_for(access_key_id, secrets)
    header_key_id = _first(headers, "x-acs-accesskey-id")
    if header_key_id and header_key_id != access_key_id:
        raise _incomplete("x-acs-accesskey-id does not match the Credential")
    timestamp = _check_timestamp(date, now, max_skew)
    if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), content_sha256.lower()):
        raise _incomplete("x-acs-content-sha256 does not match the request body")
    canonical = acs3_canonical_request(method, path, query, headers, signed_headers, content_sha256)
    string_to_sign = acs3_string_to_sign(canonical)
    if not hmac.compare_digest(acs3_signature(secret, string_to_sign).encode(), signature.lower().encode()):
        raise _incomplete(f"server string to sign is:{string_to_sign}")
    token = _first(headers, "x-acs-security-token") or None
    _check_token(access_key_id, token, security_tokens)
    _use_nonce(nonce_cache, access_key_id, nonce, timestamp + max_skew, now)
    return AuthResult(access_key_id, action, version, _merge(query, form), "ACS3", token)


# ----------------------------------------------------------------------------------------- helpers


def _normalize_headers(headers: HeaderInput) -> dict[str, list[str]]:
    # Mapping or http.server's Message (both have .items(); Message keeps repeated headers), or pairs.
    items = headers.items() if hasattr(headers, "items") else headers
    out: dict[str, list[str]] = {}
    for name, value in items:
        out.setdefault(name.lower(), []).append(value)
    return out


def _first(headers: Mapping[str, list[str]], name: str) -> str:
    values = headers.get(name)
    return values[0].strip() if values else ""


def _unique_params(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in items:
        if key in out:  # ambiguous: the signature would cover one value and the handler read another
            raise AuthError("InvalidParameter", f'The parameter "{key}" is specified more than once.')
        out[key] = value
    return out


def _form_params(headers: Mapping[str, list[str]], body: bytes) -> dict[str, str]:
    content_type = _first(headers, "content-type").lower()
    if not body or not content_type.startswith("application/x-www-form-urlencoded"):
        return {}
    return _unique_params(parse_query(body.decode("utf-8", errors="replace")))


def _merge(query: dict[str, str], form: dict[str, str]) -> dict[str, str]:
    clash = query.keys() & form.keys()
    if clash:
        raise AuthError("InvalidParameter", f'The parameter "{sorted(clash)[0]}" is specified more than once.')
    return {**query, **form}


def _parse_authorization(value: str) -> tuple[str, list[str], str]:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ACS3_ALGORITHM:
        raise _incomplete(f"unsupported signature algorithm {algorithm!r}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key] = val.strip()
    credential, signed, signature = (fields.get(k, "") for k in ("Credential", "SignedHeaders", "Signature"))
    if not credential or not signed or not signature:
        raise _incomplete("the Authorization header needs Credential, SignedHeaders and Signature")
    names = signed.split(";")
    if names != sorted(names) or any(n != n.lower() or not n for n in names):
        raise _incomplete("SignedHeaders must be lower-case header names in sorted order")
    return credential, names, signature


def _secret_for(access_key_id: str, secrets: Mapping[str, str]) -> str:
    secret = secrets.get(access_key_id)
    if secret is None:
        raise AuthError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
    return secret


def _check_version(version: str, expected: str | None) -> None:
    if not version:
        raise _missing("Version")
    if expected is not None and version != expected:
        raise AuthError("InvalidVersion", "Specified parameter Version is not valid.")


def _check_timestamp(value: str, now: float, max_skew: float) -> float:
    parsed: datetime | None = None
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            parsed = datetime.strptime(value, fmt).replace(tzinfo=timezone.utc)
            break
        except ValueError:
            continue
    if parsed is None:
        raise AuthError("InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
    timestamp = parsed.timestamp()
    if abs(now - timestamp) > max_skew:
        raise AuthError("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
    return timestamp


def _check_token(access_key_id: str, token: str | None, security_tokens: Mapping[str, str] | None) -> None:
    if security_tokens is None or access_key_id not in security_tokens:
        return
    if not token:
        raise _missing("SecurityToken")
    if not hmac.compare_digest(token.encode(), security_tokens[access_key_id].encode()):
        raise AuthError(
            "InvalidSecurityToken.MismatchWithAccessKey", "Specified SecurityToken mismatch with the AccessKey."
        )


def _use_nonce(cache: NonceLedger, access_key_id: str, nonce: str, expires_at: float, now: float) -> None:
    if not cache.add(f"{access_key_id}\n{nonce}", expires_at=expires_at, now=now):
        raise AuthError("SignatureNonceUsed", "Specified signature nonce was used already.")


def _missing(name: str) -> AuthError:
    return AuthError(f"Missing{name}", f"{name} is mandatory for this action.")


def _invalid(name: str) -> AuthError:
    return AuthError("InvalidParameter", f'The specified parameter "{name}" is not valid.')


def _incomplete(detail: str) -> AuthError:
    return AuthError("IncompleteSignature", f"The request signature does not conform to Aliyun standards. {detail}")
