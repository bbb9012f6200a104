"""A loopback test double of the MPS (Mts 2014-06-18) media fingerprint API.

It verifies request signatures with `engine.service.auth` (RPC v1 and ACS3, as the official SDKs send them),
routes on the query `Action` or the `x-acs-action` header, and answers `SubmitFpShotJob`,
`QueryFpShotJobList` and `ReportFpShotJobResult` with Alibaba's JSON. Tests steer job outcomes
(`complete`, `fail`), inject faults (`throttle_next`, `fail_next`, `disconnect_next`) and read the request log.

    with FakeMps() as mps:
        client = MpsClient(mps.credentials(), endpoint=mps.url)
        job_id = client.submit_fp_shot_job(request).job_id
        mps.complete(job_id, result=FpShotResult(...))

or, as a fixture: `from tests.support.fake_mps import fake_mps  # noqa: F401` in a conftest, then
`def test_x(fake_mps: FakeMps): ...`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError

from engine.service.auth import AuthError, NonceCache, error_body, new_request_id, parse_query, verify_request
from shared.contracts.mps import (
    API_VERSION,
    MAX_QUERY_JOB_IDS,
    FpShotJob,
    FpShotJobList,
    FpShotResult,
    QueryFpShotJobListRequest,
    QueryFpShotJobListResponse,
    ReportFpShotJobResultRequest,
    ReportFpShotJobResultResponse,
    StringList,
    SubmitFpShotJobRequest,
    SubmitFpShotJobResponse,
)
from shared.credentials import Credentials

DEFAULT_ACCESS_KEY_ID = "testAK"
DEFAULT_ACCESS_KEY_SECRET = "testSecret"
HOST_ID = "mts.cn-shanghai.aliyuncs.com"

# Alibaba's gateway messages for the codes tests inject most.
DEFAULT_MESSAGES: dict[str, str] = {
    "Throttling": "Request was denied due to request throttling.",
    "Throttling.User": "Request was denied due to user flow control.",
    "Throttling.Api": "Request was denied due to api flow control.",
    "InternalError": "The request processing has failed due to some unknown error, exception or failure.",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
}


class _Reply(Exception):
    """An error answer from inside an action handler."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass(slots=True)
class RecordedRequest:
    method: str
    target: str  # raw request-target, query included, as received (for replays)
    path: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: bytes
    action: str | None = None  # from the query or x-acs-action, even when auth failed
    style: Literal["RPC", "ACS3"] | None = None  # set once the signature verified
    access_key_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    status: int = 0  # 0 = connection dropped by an injected fault
    code: str | None = None  # error code, None on success
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass(slots=True)
class FakeJob:
    job_id: str
    request: SubmitFpShotJobRequest
    state: str = "Queuing"
    code: str | None = None
    message: str | None = None
    result: FpShotResult | None = None
    creation_time: str = ""
    finish_time: str | None = None
    file_id: str | None = None
    duration: int | None = None

    def to_wire_model(self) -> FpShotJob:
        return FpShotJob(
            id=self.job_id,
            pipeline_id=self.request.pipeline_id,
            state=self.state,  # type: ignore[arg-type]
            code=self.code,
            message=self.message,
            user_data=self.request.user_data,
            creation_time=self.creation_time,
            finish_time=self.finish_time,
            duration=self.duration,
            file_id=self.file_id,
            input=self.request.input.to_wire_json(),
            input_file=self.request.input,
            fp_shot_config=self.request.fp_shot_config,
            fp_shot_result=self.result if self.state == "Success" else None,
        )


@dataclass(slots=True)
class _Fault:
    kind: Literal["error", "disconnect"]
    action: str | None
    status: int = 0
    code: str = ""
    message: str = ""
    after: bool = False  # act on the request first (the job exists), then fail: a lost answer


class FakeMps:
    """The fake MPS endpoint. Thread-safe; every public method may be called while requests are served."""

    def __init__(
        self,
        *,
        secrets: dict[str, str] | None = None,
        security_tokens: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        initial_state: str = "Queuing",
        host: str = "127.0.0.1",
    ) -> None:
        self.secrets = dict(secrets) if secrets is not None else {DEFAULT_ACCESS_KEY_ID: DEFAULT_ACCESS_KEY_SECRET}
        self.security_tokens = dict(security_tokens) if security_tokens is not None else None
        self.clock = clock  # epoch seconds; replace it to test clock skew
        self.initial_state = initial_state
        self._host = host
        self._lock = threading.RLock()
        self._nonces = NonceCache(max_entries=100_000)
        self._jobs: dict[str, FakeJob] = {}
        self._reports: list[ReportFpShotJobResultRequest] = []
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------- lifecycle

    def start(self) -> FakeMps:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((self._host, 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        # A short poll interval: shutdown() waits up to one interval, and tests start and stop many servers.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-mps", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeMps:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeMps is not started")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """`127.0.0.1:PORT` (the Tea SDK's `endpoint`; pair it with protocol http)."""
        return f"{self._host}:{self.port}"

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, for `MpsClient(endpoint=...)`."""
        return f"http://{self.endpoint}"

    @property
    def access_key_id(self) -> str:
        return next(iter(self.secrets))

    @property
    def access_key_secret(self) -> str:
        return self.secrets[self.access_key_id]

    def credentials(self, access_key_id: str | None = None) -> Credentials:
        key = access_key_id or self.access_key_id
        token = (self.security_tokens or {}).get(key)
        return Credentials(key, self.secrets[key], token)

    # ------------------------------------------------------------------------------------ jobs

    def add_job(self, request: SubmitFpShotJobRequest, *, job_id: str | None = None, state: str | None = None) -> str:
        """Create a job as if it had been submitted (for tests that start from an existing job)."""
        job = FakeJob(
            job_id=job_id or uuid.uuid4().hex,
            request=request,
            state=state or self.initial_state,
            creation_time=self._now_text(),
        )
        with self._lock:
            self._jobs[job.job_id] = job
        return job.job_id

    def job(self, job_id: str) -> FakeJob:
        with self._lock:
            return self._jobs[job_id]

    @property
    def jobs(self) -> dict[str, FakeJob]:
        with self._lock:
            return dict(self._jobs)

    def set_state(self, job_id: str, state: str) -> None:
        with self._lock:
            self._jobs[job_id].state = state

    def complete(
        self,
        job_id: str,
        state: str = "Success",
        result: FpShotResult | None = None,
        *,
        code: str | None = None,
        message: str | None = None,
        duration: int | None = None,
    ) -> FakeJob:
        """Finish a job: `Success` with `result` (default: no matches), or any state with code/message."""
        with self._lock:
            job = self._jobs[job_id]
            job.state = state
            job.code, job.message = code, message
            job.result = result if result is not None else (FpShotResult() if state == "Success" else None)
            job.finish_time = self._now_text()
            job.duration = duration
            if state == "Success" and job.file_id is None:
                job.file_id = uuid.uuid4().hex
            return job

    def fail(self, job_id: str, code: str, message: str) -> FakeJob:
        return self.complete(job_id, "Fail", code=code, message=message)

    @property
    def reports(self) -> list[ReportFpShotJobResultRequest]:
        with self._lock:
            return list(self._reports)

    # ---------------------------------------------------------------------------------- faults

    def throttle_next(
        self,
        n: int = 1,
        code: str = "Throttling.User",
        *,
        status: int = 400,
        action: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next `n` authenticated requests (of `action`, or any) with a throttling error.

        Alibaba's gateway documents `Throttling`, `Throttling.User` and `Throttling.Api` with HTTP 400; some
        products answer 503. Pass `status=503` to test that form.
        """
        self.fail_next(n, status=status, code=code, message=message, action=action)

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 500,
        code: str = "InternalError",
        message: str | None = None,
        action: str | None = None,
    ) -> None:
        text = message or DEFAULT_MESSAGES.get(code, code)
        with self._lock:
            self._faults.extend(_Fault("error", action, status, code, text) for _ in range(n))

    def disconnect_next(self, n: int = 1, *, action: str | None = None) -> None:
        """Close the next `n` connections without answering (a transport error for the client)."""
        with self._lock:
            self._faults.extend(_Fault("disconnect", action) for _ in range(n))

    def accept_then_fail_next(
        self,
        n: int = 1,
        *,
        action: str | None = "SubmitFpShotJob",
        status: int = 0,
        code: str = "InternalError",
    ) -> None:
        """Carry out the next `n` requests, then lose the answer: drop the connection (`status=0`, what a read
        timeout looks like to the client) or answer `status` with `code` although the work was done."""
        kind: Literal["error", "disconnect"] = "disconnect" if status == 0 else "error"
        text = DEFAULT_MESSAGES.get(code, code)
        with self._lock:
            self._faults.extend(_Fault(kind, action, status, code, text, after=True) for _ in range(n))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # ------------------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def calls(self, action: str | None = None, *, ok: bool | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if (action is None or r.action == action) and (ok is None or r.ok is ok)]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def replay(self, recorded: RecordedRequest, *, timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
        """Send a captured request again, byte for byte (signature, nonce and timestamp included)."""
        conn = http.client.HTTPConnection(self._host, self.port, timeout=timeout)
        try:
            conn.request(recorded.method, recorded.target, body=recorded.body, headers=dict(recorded.headers))
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            conn.close()

    # -------------------------------------------------------------------------------- handling

    def _handle(self, record: RecordedRequest) -> tuple[int, dict[str, Any]] | None:
        """Answer one request; None means drop the connection."""
        try:
            auth = verify_request(
                record.method,
                record.path,
                record.query,
                record.headers,
                record.body,
                secrets=self.secrets,
                now=self.clock(),
                nonce_cache=self._nonces,
                security_tokens=self.security_tokens,
                expected_version=API_VERSION,
            )
        except AuthError as exc:
            return exc.http_status, exc.to_body(host_id=HOST_ID)
        record.style, record.access_key_id, record.params = auth.style, auth.access_key_id, auth.params
        record.action = auth.action
        fault = self._take_fault(auth.action)
        if fault is not None and fault.after:
            handler_first = {"SubmitFpShotJob": self._submit, "ReportFpShotJobResult": self._report}.get(auth.action)
            if handler_first is not None:
                with contextlib.suppress(_Reply):
                    handler_first(auth.params)
        if fault is not None:
            if fault.kind == "disconnect":
                return None
            return fault.status, error_body(fault.code, fault.message, host_id=HOST_ID)
        routes: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "SubmitFpShotJob": self._submit,
            "QueryFpShotJobList": self._query,
            "ReportFpShotJobResult": self._report,
        }
        handler = routes.get(auth.action)
        try:
            if handler is None:
                raise _Reply(
                    404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
                )
            return 200, handler(auth.params)
        except _Reply as reply:
            return reply.status, error_body(reply.code, reply.message, host_id=HOST_ID)

    def _take_fault(self, action: str) -> _Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.action is None or fault.action == action:
                    return self._faults.pop(index)
        return None

    def _submit(self, params: dict[str, str]) -> dict[str, Any]:
        for name in ("Input", "FpShotConfig"):
            _require_json_object(params, name)
        try:
            request = SubmitFpShotJobRequest.model_validate(params)
        except ValidationError as exc:
            raise _invalid(exc) from exc
        job_id = self.add_job(request)
        return SubmitFpShotJobResponse(request_id=new_request_id(), job_id=job_id).to_wire()

    def _query(self, params: dict[str, str]) -> dict[str, Any]:
        ids = [part.strip() for part in params.get("JobIds", "").split(",") if part.strip()]
        if len(ids) > MAX_QUERY_JOB_IDS:
            raise _Reply(
                400,
                "InvalidParameter",
                f'The parameter "JobIds" exceeds the limit: at most {MAX_QUERY_JOB_IDS} ids, got {len(ids)}.',
            )
        try:
            request = QueryFpShotJobListRequest.model_validate(params)
        except ValidationError as exc:
            raise _invalid(exc) from exc
        with self._lock:
            if ids:
                found = [self._jobs[i].to_wire_model() for i in ids if i in self._jobs]
                missing = [i for i in ids if i not in self._jobs]
                response = QueryFpShotJobListResponse(
                    request_id=new_request_id(),
                    fp_shot_job_list=FpShotJobList(fp_shot_job=found),
                    non_exist_ids=StringList(string=missing),
                )
                return response.to_wire()
            page, next_token = self._page(request)
        return QueryFpShotJobListResponse(
            request_id=new_request_id(), next_page_token=next_token, fp_shot_job_list=FpShotJobList(fp_shot_job=page)
        ).to_wire()

    def _page(self, request: QueryFpShotJobListRequest) -> tuple[list[FpShotJob], str | None]:
        jobs = [
            job
            for job in self._jobs.values()  # insertion order = creation order
            if (request.state in (None, "All") or job.state == request.state)
            and (request.pipeline_id is None or job.request.pipeline_id == request.pipeline_id)
            and (
                request.start_of_job_created_time_range is None
                or job.creation_time >= request.start_of_job_created_time_range
            )
            and (
                request.end_of_job_created_time_range is None
                or job.creation_time <= request.end_of_job_created_time_range
            )
        ]
        start = 0
        if request.next_page_token:
            positions = [i for i, job in enumerate(jobs) if job.job_id == request.next_page_token]
            if not positions:
                raise _Reply(400, "InvalidParameter", 'The specified parameter "NextPageToken" is not valid.')
            start = positions[0]
        size = request.maximum_page_size or 10
        page = jobs[start : start + size]
        next_token = jobs[start + size].job_id if start + size < len(jobs) else None
        return [job.to_wire_model() for job in page], next_token

    def _report(self, params: dict[str, str]) -> dict[str, Any]:
        for name in ("JobId", "Result"):
            if not params.get(name):
                raise _Reply(400, f"Missing{name}", f"{name} is mandatory for this action.")
        try:
            request = ReportFpShotJobResultRequest.model_validate(params)
        except ValidationError as exc:
            raise _invalid(exc) from exc
        with self._lock:
            if request.job_id not in self._jobs:
                raise _Reply(404, "InvalidParameter.ResourceNotFound", 'The resource operated "JobId" cannot be found.')
            self._reports.append(request)
        return ReportFpShotJobResultResponse(request_id=new_request_id(), job_id=request.job_id).to_wire()

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(record)

    def _now_text(self) -> str:
        return datetime.fromtimestamp(self.clock(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Handler(BaseHTTPRequestHandler):
    server_version = "fake-mps"
    protocol_version = "HTTP/1.0"  # one request per connection: a dropped connection never poisons a pool

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake: FakeMps = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        query = parse_query(split.query)
        record = RecordedRequest(
            method=self.command,
            target=self.path,
            path=split.path or "/",
            query=query,
            headers=list(self.headers.items()),
            body=body,
            action=dict(query).get("Action") or self.headers.get("x-acs-action"),
        )
        answer = fake._handle(record)
        if answer is None:
            fake._record(record)
            self.close_connection = True
            return
        record.status, record.response = answer
        record.code = None if record.ok else str(record.response.get("Code"))
        fake._record(record)
        payload = json.dumps(record.response, ensure_ascii=False).encode()
        self.send_response(record.status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-acs-request-id", str(record.response.get("RequestId", "")))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return


def _require_json_object(params: dict[str, str], name: str) -> None:
    raw = params.get(name)
    if not raw:
        raise _Reply(400, f"Missing{name}", f"{name} is mandatory for this action.")
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise _Reply(
            400, "InvalidParameter.JsonFormatInvalid", f'The parameter "{name}" is not a valid JSON string.'
        ) from exc
    if not isinstance(value, dict):
        raise _Reply(400, "InvalidParameter.JsonObjectFormatInvalid", f'The parameter "{name}" must be a JSON object.')


def _invalid(exc: ValidationError) -> _Reply:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
    where = ".".join(str(part) for part in first.get("loc", ())) or "request"
    return _Reply(400, "InvalidParameter", f'The specified parameter "{where}" is not valid: {first.get("msg")}')


@pytest.fixture
def fake_mps() -> Iterator[FakeMps]:
    """A started `FakeMps` with the default key (`testAK`/`testSecret`), stopped after the test."""
    with FakeMps() as server:
        yield server
