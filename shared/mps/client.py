"""`MpsPort` adapters over the official SDKs, with our own retries and client-side rate limiting.

`MpsClient` uses aliyun-python-sdk-core (RPC v1 HMAC-SHA1 signatures); `TeaMpsClient` uses
alibabacloud-mts20140618 (ACS3-HMAC-SHA256 by default). Both disable the SDK's own retry so that one policy
(`RetryPolicy`: full-jitter backoff, attempt cap, deadline) governs every call, and both map failures to
`MpsError` with `retryable` set for throttling, 5xx, `InternalError`/`ServiceUnavailable` and transport errors.
"""

from __future__ import annotations

import copy
import json
import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

from aliyunsdkcore.acs_exception.error_code import SDK_HTTP_ERROR
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.auth.signers.sts_token_signer import StsTokenSigner
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import AcsRequest, CommonRequest
from aliyunsdkmts.request.v20140618.QueryFpShotJobListRequest import (
    QueryFpShotJobListRequest as CoreQueryFpShotJobListRequest,
)
from aliyunsdkmts.request.v20140618.SubmitFpShotJobRequest import (
    SubmitFpShotJobRequest as CoreSubmitFpShotJobRequest,
)
from pydantic import BaseModel, ValidationError

from shared.contracts.mps import (
    API_VERSION,
    QueryFpShotJobListRequest,
    QueryFpShotJobListResponse,
    ReportFpShotJobResultRequest,
    ReportFpShotJobResultResponse,
    SubmitFpShotJobRequest,
    SubmitFpShotJobResponse,
)
from shared.credentials import Credentials
from shared.mps.ratelimit import RateLimiter, TokenBucket
from shared.ports import MpsError
from shared.retry import Retrier, RetryPolicy
from shared.vocabulary import DEFAULT_REGION as DEFAULT_REGION  # re-exported: shared.mps.DEFAULT_REGION

PRODUCT = "Mts"
SUBMIT, QUERY, REPORT = "SubmitFpShotJob", "QueryFpShotJobList", "ReportFpShotJobResult"
# Calls MPS does not deduplicate: never re-sent once they may have been accepted (MpsError.maybe_accepted).
NOT_IDEMPOTENT: frozenset[str] = frozenset({SUBMIT, REPORT})

# Codes worth another try besides Throttling* and any 5xx. SignatureNonceUsed: every attempt is re-signed
# with a fresh nonce, so a collision (Alibaba blames calling too fast) heals on retry.
RETRYABLE_CODES: frozenset[str] = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableTemporary",
        "UnknownError",
        "SignatureNonceUsed",
        SDK_HTTP_ERROR,
    }
)
TRANSPORT_ERROR = SDK_HTTP_ERROR  # "SDK.HttpError": connection refused/reset, timeouts
INVALID_RESPONSE = "SDK.InvalidResponse"
LOCAL_THROTTLING = "Throttling.Client"  # our own rate limiter could not grant a slot before the deadline

_Resp = TypeVar("_Resp", bound=BaseModel)
_Client = TypeVar("_Client", bound="_BaseMpsClient")  # not typing.Self: FC runs this layer on Python 3.10


def refused_before_accepting(exc: BaseException) -> bool:
    """True when MPS (or our own rate limiter) certainly did not act on the request: throttling and a used
    nonce are answered before any work is done (MPS sends Throttling.User as a 503: the code decides, not the
    status). Everything else that fails may have been accepted."""
    if not isinstance(exc, MpsError):
        return False
    code = exc.code or ""
    return code in {"Throttling", LOCAL_THROTTLING, "SignatureNonceUsed"} or code.startswith("Throttling.")


def _resend_safe(exc: BaseException) -> bool:
    """Retry predicate for SubmitFpShotJob, which MPS does not deduplicate: only a refused request is sent again."""
    return bool(getattr(exc, "retryable", False)) and refused_before_accepting(exc)


def is_retryable(code: str | None, http_status: int | None) -> bool:
    """The retry classification shared by both clients (and usable by callers holding a code)."""
    if http_status is not None and http_status >= 500:
        return True
    if not code:
        return False
    return code == "Throttling" or code.startswith("Throttling.") or code in RETRYABLE_CODES


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: Literal["http", "https"]
    host: str
    port: int | None = None

    @classmethod
    def parse(cls, endpoint: str | None, region: str = DEFAULT_REGION) -> Endpoint:
        """`None` → `https://mts.<region>.aliyuncs.com`; `host[:port]` → https; `http(s)://host[:port]`."""
        if not endpoint:
            return cls("https", f"mts.{region}.aliyuncs.com")
        split = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if split.scheme not in ("http", "https") or not split.hostname:
            raise ValueError(f"unsupported MPS endpoint {endpoint!r}: use host[:port] or http(s)://host[:port]")
        if split.path not in ("", "/") or split.query or split.fragment:
            raise ValueError(f"an MPS endpoint has no path or query: {endpoint!r}")
        # Known quirk, kept as is (behaviour-preserving refactor): aliyunsdkcore tests `protocol is PT.HTTPS`, so
        # this parsed (non-interned) "https" makes the core client speak plain http to a bare host:port; the
        # tests' fake MPS relies on it. Fixing it means giving the fake an explicit http:// endpoint.
        return cls(cast(Literal["http", "https"], split.scheme), split.hostname, split.port)

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}"


class _BaseMpsClient:
    """The port methods, validation, rate limiting and retries; subclasses only send one attempt."""

    def __init__(
        self,
        *,
        region: str,
        endpoint: str | None,
        connect_timeout: float,
        read_timeout: float,
        retry_policy: RetryPolicy | None,
        rate_limiter: RateLimiter | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        random: Callable[[], float],
    ) -> None:
        self.region = region
        self.endpoint = Endpoint.parse(endpoint, region)
        self.attempt_timeout = connect_timeout + read_timeout  # the longest one attempt can take
        self.retry_policy = RetryPolicy() if retry_policy is None else retry_policy
        self.rate_limiter: RateLimiter = TokenBucket() if rate_limiter is None else rate_limiter
        self._retrier = Retrier(self.retry_policy, sleep=sleep, clock=clock, random=random)
        self.deadline_at: float | None = None

    def with_deadline(self: _Client, deadline_at: float | None) -> _Client:
        """A view of this client whose calls return by `deadline_at` (on the injected clock, by default
        `time.monotonic()`): no retry starts that could not finish by then (one attempt may take up to
        connect + read timeout). It shares the SDK client and the rate limiter: cheap per invocation."""
        view = copy.copy(self)
        view.deadline_at = deadline_at
        return view

    # ------------------------------------------------------------------------------------ MpsPort

    def submit_fp_shot_job(self, request: SubmitFpShotJobRequest) -> SubmitFpShotJobResponse:
        return self._invoke(SUBMIT, request, SubmitFpShotJobResponse)

    def query_fp_shot_job_list(self, request: QueryFpShotJobListRequest) -> QueryFpShotJobListResponse:
        return self._invoke(QUERY, request, QueryFpShotJobListResponse)

    def report_fp_shot_job_result(self, request: ReportFpShotJobResultRequest) -> ReportFpShotJobResultResponse:
        return self._invoke(REPORT, request, ReportFpShotJobResultResponse)

    # ----------------------------------------------------------------------------------- plumbing

    def _invoke(self, action: str, request: BaseModel, response_type: type[_Resp]) -> _Resp:
        params = wire_params(request)
        deadline = self._effective_deadline()

        def attempt() -> dict[str, Any]:
            remaining = self._retrier.remaining(deadline)
            if not self.rate_limiter.acquire(timeout=remaining):
                raise MpsError(LOCAL_THROTTLING, "client-side rate limit: no slot before the deadline", retryable=True)
            return self._send(action, params)

        if action not in NOT_IDEMPOTENT:
            body = self._retrier.call(attempt, deadline_at=deadline, attempt_timeout=self.attempt_timeout, label=action)
            try:
                return response_type.model_validate(body)
            except ValidationError as exc:
                raise MpsError(INVALID_RESPONSE, f"{action} answered an unexpected body: {exc}") from exc
        # A submit (or report) is not idempotent: after a read timeout, a reset or a 5xx MPS may have acted on
        # it, and a second send would act again (two jobs). Only a refused request is re-sent here; for the
        # rest the caller reconciles first (a submit is looked up by its UserData: shared.services.submit).
        try:
            body = self._retrier.call(
                attempt,
                is_retryable=_resend_safe,
                deadline_at=deadline,
                attempt_timeout=self.attempt_timeout,
                label=action,
            )
        except MpsError as exc:
            if not refused_before_accepting(exc) and (exc.retryable or exc.code == INVALID_RESPONSE):
                exc.maybe_accepted = True
            raise
        try:
            return response_type.model_validate(body)
        except ValidationError as exc:
            # MPS answered 200, so the job exists: the caller must find it, not submit again.
            raise MpsError(
                INVALID_RESPONSE, f"{action} answered an unexpected body: {exc}", retryable=True, maybe_accepted=True
            ) from exc

    def _effective_deadline(self) -> float | None:
        deadline = self.deadline_at
        if self.retry_policy.deadline is not None:
            own = self._retrier.clock() + self.retry_policy.deadline
            deadline = own if deadline is None else min(deadline, own)
        return deadline

    def _send(self, action: str, params: dict[str, str]) -> dict[str, Any]:
        raise NotImplementedError


def wire_params(request: BaseModel) -> dict[str, str]:
    """Re-validate `request` exactly as it will travel and return its query parameters.

    Models built with `model_construct` (or mutated after validation) skip pydantic's checks; sending them
    would only earn a 400 from MPS, so the same rules (e.g. at most 10 JobIds) are enforced here first.
    """
    try:
        checked = type(request).model_validate(request.model_dump(mode="json", by_alias=True, exclude_none=True))
    except ValidationError as exc:
        raise MpsError("InvalidParameter", f"{type(request).__name__} is invalid: {exc}", retryable=False) from exc
    wire = checked.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in wire.items()}


def _decode_json(raw: bytes | str | dict[str, Any], action: str) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise MpsError(INVALID_RESPONSE, f"{action} answered non-JSON: {raw[:200]!r}") from exc
    if not isinstance(body, dict):
        raise MpsError(INVALID_RESPONSE, f"{action} answered a JSON {type(body).__name__}, not an object")
    return body


# ------------------------------------------------------------------------------------ Core SDK


class MpsClient(_BaseMpsClient):
    """`MpsPort` over aliyun-python-sdk-core `AcsClient` (RPC v1 signatures, all parameters in the query).

    `endpoint`: `None` (→ `https://mts.<region>.aliyuncs.com`), `host[:port]` (https) or `http(s)://host[:port]`.
    Timeouts are in seconds. The SDK's auto-retry is off; `retry_policy` decides.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        region: str = DEFAULT_REGION,
        endpoint: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        retry_policy: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
    ) -> None:
        super().__init__(
            region=region,
            endpoint=endpoint,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry_policy=retry_policy,
            rate_limiter=rate_limiter,
            sleep=sleep,
            clock=clock,
            random=random,
        )
        common: dict[str, Any] = {
            "region_id": region,
            "auto_retry": False,
            "max_retry_time": 0,
            "connect_timeout": connect_timeout,
            "timeout": read_timeout,
        }
        if credentials.security_token:
            sts = StsTokenCredential(
                credentials.access_key_id, credentials.access_key_secret, credentials.security_token
            )
            self._acs = AcsClient(credential=sts, **common)
            # The SDK prefers ALIYUN_ACCESS_KEY_ID/SECRET from the environment over an explicit credential
            # object; an FC function must sign with its own STS token, never with a stray env key.
            if not isinstance(self._acs._signer, StsTokenSigner):
                self._acs._signer = StsTokenSigner(sts)
        else:
            self._acs = AcsClient(credentials.access_key_id, credentials.access_key_secret, **common)

    def _build(self, action: str, params: dict[str, str]) -> AcsRequest:
        request: AcsRequest
        if action == SUBMIT:
            request = CoreSubmitFpShotJobRequest()
        elif action == QUERY:
            request = CoreQueryFpShotJobListRequest()
        else:  # ReportFpShotJobResult has no typed request class in aliyunsdkmts
            request = CommonRequest(
                domain=self.endpoint.netloc, version=API_VERSION, action_name=action, product=PRODUCT
            )
            request.set_method("POST")
        for name, value in params.items():
            setter = getattr(request, f"set_{name}", None)
            if setter is not None:
                setter(value)
            else:
                request.add_query_param(name, value)
        # An explicit endpoint bypasses the SDK's region resolver; the port rides in host:port.
        request.set_endpoint(self.endpoint.netloc)
        request.set_protocol_type(self.endpoint.scheme)
        request.set_accept_format("JSON")
        return request

    def _send(self, action: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            raw = self._acs.do_action_with_exception(self._build(action, params))
        except ServerException as exc:
            code, status = exc.get_error_code(), exc.get_http_status()
            raise MpsError(
                code,
                exc.get_error_msg(),
                http_status=status,
                request_id=exc.get_request_id(),
                retryable=is_retryable(code, status),
            ) from exc
        except ClientException as exc:
            code = exc.get_error_code()
            raise MpsError(code, exc.get_error_msg(), retryable=code == SDK_HTTP_ERROR) from exc
        return _decode_json(raw, action)


# ------------------------------------------------------------------------------------- Tea SDK


class TeaMpsClient(_BaseMpsClient):
    """`MpsPort` over alibabacloud-mts20140618 (Tea/Darabonba). `signature="v3"` (default) sends
    ACS3-HMAC-SHA256, `"v1"` the RPC HMAC-SHA1 form. The Tea SDK is imported lazily: it costs ~0.4 s."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        region: str = DEFAULT_REGION,
        endpoint: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        signature: Literal["v3", "v1"] = "v3",
        retry_policy: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
    ) -> None:
        from alibabacloud_mts20140618.client import Client
        from alibabacloud_tea_openapi import models as open_api_models

        super().__init__(
            region=region,
            endpoint=endpoint,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry_policy=retry_policy,
            rate_limiter=rate_limiter,
            sleep=sleep,
            clock=clock,
            random=random,
        )
        self._connect_ms = int(connect_timeout * 1000)
        self._read_ms = int(read_timeout * 1000)
        config = open_api_models.Config(
            access_key_id=credentials.access_key_id,
            access_key_secret=credentials.access_key_secret,
            security_token=credentials.security_token,
            region_id=region,
            endpoint=self.endpoint.netloc,
            protocol=self.endpoint.scheme,
            connect_timeout=self._connect_ms,
            read_timeout=self._read_ms,
            # Tea calls the RPC v1 HMAC-SHA1 form "v2"; None selects ACS3-HMAC-SHA256.
            signature_algorithm="v2" if signature == "v1" else None,
        )
        self._tea = Client(config)  # retry_options unset: Tea makes exactly one attempt

    def _send(self, action: str, params: dict[str, str]) -> dict[str, Any]:
        from alibabacloud_mts20140618 import models as tea_models
        from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
        from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
        from darabonba.exceptions import RetryError as DaraRetryError
        from darabonba.runtime import RuntimeOptions
        from Tea.exceptions import RetryError, UnretryableException

        runtime = RuntimeOptions(connect_timeout=self._connect_ms, read_timeout=self._read_ms)
        try:
            if action == SUBMIT:
                submit = tea_models.SubmitFpShotJobRequest().from_map(params)
                body: dict[str, Any] = self._tea.submit_fp_shot_job_with_options(submit, runtime).body.to_map()
                return body
            if action == QUERY:
                query = tea_models.QueryFpShotJobListRequest().from_map(params)
                body = self._tea.query_fp_shot_job_list_with_options(query, runtime).body.to_map()
                return body
            api = Params(
                action=action,
                version=API_VERSION,
                protocol=self.endpoint.scheme.upper(),
                pathname="/",
                method="POST",
                auth_type="AK",
                style="RPC",
                req_body_type="formData",
                body_type="json",
            )
            result = self._tea.call_api(api, OpenApiRequest(query=dict(params)), runtime)
            return _decode_json(result.get("body") or b"", action)
        except AlibabaCloudException as exc:
            data = exc.data if isinstance(exc.data, dict) else {}
            code = _present(exc.code) or _present(data.get("Code")) or "SDK.UnknownServerError"
            status = exc.status_code
            raise MpsError(
                code,
                str(data.get("Message") or exc.message or ""),
                http_status=status,
                request_id=_present(exc.request_id) or _present(data.get("RequestId")),
                retryable=is_retryable(code, status),
            ) from exc
        except UnretryableException as exc:
            inner = exc.inner_exception
            # Transport failures (requests' errors are OSErrors) and bodies that are not JSON (typically a
            # proxy's 502 page) are transient; anything else is a bug on one side or the other.
            transport = isinstance(inner, OSError | RetryError | DaraRetryError)  # darabonba wraps IOErrors
            code = TRANSPORT_ERROR if transport else INVALID_RESPONSE
            transient = transport or isinstance(inner, ValueError)
            raise MpsError(code, f"{action}: {inner!r}", retryable=transient) from exc


def _present(value: Any) -> str | None:
    """Tea formats missing fields as the string 'None'; treat that (and empty) as absent."""
    if value is None:
        return None
    text = str(value)
    return None if text in ("", "None") else text
