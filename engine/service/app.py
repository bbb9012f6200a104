"""`EngineService`: the MPS (Mts 2014-06-18) RPC API served over HTTP by the local engine.

    with EngineService(EngineSettings(data_dir, oss_root, port=0)) as service:
        client = AcsClient(LOCAL_ACCESS_KEY_ID, LOCAL_ACCESS_KEY_SECRET, "cn-shanghai")   # endpoint: service.endpoint
        ...
        service.wait_for_job(job_id)          # woken by the worker pool, no polling

Requests are routed on the query `Action` (RPC v1, CoreSDK) or the `x-acs-action` header (ACS3, TeaSDK) once
`engine.service.auth` verified their signature, clock and nonce. Errors are Alibaba's JSON
`{"RequestId","HostId","Code","Message"}` with its HTTP status. Responses are always JSON (both SDKs ask for it).

HTTP: `engine.wsgi.WsgiServer` (waitress) serves `EngineService.wsgi`; what waitress refuses itself (bad framing,
413, 431) is answered in the same error JSON.

Access keys: `EngineSettings.credentials` (a `Credentials` or `{AccessKeyId: secret}`), else
`ALIBABA_CLOUD_ACCESS_KEY_ID` / `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, else the documented local pair
`LOCAL_ACCESS_KEY_ID` / `LOCAL_ACCESS_KEY_SECRET`.
MNS notifications are signed with the first pair (or `mns_credentials`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

from engine.library import LibraryStore
from engine.service.actions import ActionError, ServiceContext, run_action
from engine.service.auth import (
    DEFAULT_HOST_ID,
    AuthError,
    NonceCache,
    NonceLedger,
    error_body,
    new_request_id,
    parse_query,
    verify_request,
)
from engine.service.db import SERVICE_DB_FILE, ServiceDb
from engine.service.executors import JobExecutor
from engine.service.jobs import DEFAULT_MAX_ATTEMPTS, EmulatedJob, JobRunner, JobStore
from engine.service.nonces import DurableNonceLedger
from engine.service.notify import Backoff, MnsPublisher, Notifier, Outbox, OutboxRow
from engine.service.pipelines import PipelineStore
from engine.service.sandbox import IsolatedMatcher
from engine.wsgi import HttpLimits, WsgiServer, error_response
from shared.contracts.mps import API_VERSION, FINAL_STATES
from shared.credentials import ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, Credentials

log = logging.getLogger(__name__)

# The key pair a local service accepts when none is configured (documented; not a secret).
LOCAL_ACCESS_KEY_ID = "local-mps-access-key"
LOCAL_ACCESS_KEY_SECRET = "local-mps-access-secret"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_WORKERS = 2
LOCK_FILE = "service.lock"
DATA_DIR_ENV = "FPSCREEN_DATA_DIR"  # same variable as the top-level CLI
OSS_ROOT_ENV = "FPSCREEN_OSS_ROOT"
DEFAULT_DATA_DIR = Path("~/.fpscreen")
# RPC bodies are empty or small form posts. Fixed threads: `LibraryStore` and `ServiceDb` keep one SQLite
# connection per thread, so a thread per request would leak connections. Slow clients cost no thread (waitress
# reads a request whole before dispatching it) and are cut after 30 s of silence.
ENGINE_HTTP_LIMITS = HttpLimits(threads=8, channel_timeout=30, max_request_body_size=1 << 20)
# Alibaba-style codes for what the HTTP layer refuses before a request reaches an action.
_HTTP_ERROR_CODES = {
    400: "InvalidParameter",
    413: "RequestEntityTooLarge",
    414: "RequestURITooLong",
    431: "RequestHeaderFieldsTooLarge",
    501: "NotImplemented",
}


def default_credentials(environ: Mapping[str, str] | None = None) -> Credentials:
    env = os.environ if environ is None else environ
    key_id, secret = env.get(ENV_ACCESS_KEY_ID, ""), env.get(ENV_ACCESS_KEY_SECRET, "")
    if key_id and secret:
        return Credentials(key_id, secret)
    return Credentials(LOCAL_ACCESS_KEY_ID, LOCAL_ACCESS_KEY_SECRET)


def _secrets(credentials: Credentials | Mapping[str, str] | None) -> dict[str, str]:
    if credentials is None:
        credentials = default_credentials()
    if isinstance(credentials, Credentials):
        return {credentials.access_key_id: credentials.access_key_secret}
    secrets = dict(credentials)
    if not secrets:
        raise ValueError("credentials must hold at least one AccessKeyId -> secret pair")
    return secrets


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Everything an `EngineService` is configured with. `from_env` is the one place CLI options and environment
    variables meet; `credentials` is normalised to `{AccessKeyId: secret}`."""

    data_dir: Path
    oss_root: Path
    host: str = DEFAULT_HOST
    port: int = 0
    workers: int = DEFAULT_WORKERS
    credentials: Mapping[str, str] = field(default_factory=dict)  # empty: `default_credentials()`
    mns_endpoint: str | None = None
    mns_credentials: Credentials | None = None  # signs MNS notifications; default: the first credentials pair
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    stop_timeout: float = 30.0  # how long stop() lets running jobs finish
    http: HttpLimits = ENGINE_HTTP_LIMITS

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        object.__setattr__(self, "oss_root", Path(self.oss_root).expanduser())
        creds: Credentials | Mapping[str, str] | None = self.credentials or None
        object.__setattr__(self, "credentials", _secrets(creds))

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        data_dir: Path | None = None,
        oss_root: Path | None = None,
        **options: Any,
    ) -> EngineSettings:
        """Explicit options win, then $FPSCREEN_DATA_DIR / $FPSCREEN_OSS_ROOT / $ALIBABA_CLOUD_ACCESS_KEY_*,
        then defaults (~/.fpscreen, <data-dir>/oss, the local key pair)."""
        env = os.environ if environ is None else environ
        directory = data_dir or Path(env.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)
        root = oss_root or (Path(env[OSS_ROOT_ENV]) if env.get(OSS_ROOT_ENV) else Path(directory).expanduser() / "oss")
        options.setdefault("credentials", default_credentials(env))
        return cls(Path(directory), root, **options)


def _render_error(status: int, reason: str, detail: str) -> tuple[str, bytes]:
    code = _HTTP_ERROR_CODES.get(status, reason.replace(" ", ""))
    body = error_body(code, detail.strip() or reason, host_id=DEFAULT_HOST_ID)
    return "application/json;charset=utf-8", json.dumps(body).encode("utf-8")


class _DataDirLock:
    """One service per data directory: two would run each other's jobs twice."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the service's lifetime
        try:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no flock (Windows): run unguarded
            pass
        except OSError as exc:
            handle.close()
            raise RuntimeError(f"another engine service is using {self.path.parent}") from exc
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


class EngineService:
    """The local MPS endpoint: HTTP front, durable job table, worker pool, notification outbox."""

    def __init__(
        self,
        settings: EngineSettings,
        *,
        notify_backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.oss_root = settings.oss_root
        self.host = settings.host
        self.workers = settings.workers
        self.secrets = dict(settings.credentials)
        self.mns_endpoint = settings.mns_endpoint
        first_key = next(iter(self.secrets))
        self.mns_credentials = settings.mns_credentials or Credentials(first_key, self.secrets[first_key])
        self.clock = clock  # epoch seconds for signature timestamps; tests move it to check the ±15 min window
        self._notify_backoff = notify_backoff
        self._nonces: NonceLedger = NonceCache()  # replaced by the durable ledger once service.db is open
        self._lock = _DataDirLock(self.data_dir / LOCK_FILE)
        self._httpd: WsgiServer | None = None
        self._library: LibraryStore | None = None
        self._db: ServiceDb | None = None
        self._runner: JobRunner | None = None
        self._notifier: Notifier | None = None
        self._outbox: Outbox | None = None
        self._context: ServiceContext | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> EngineService:
        if self._httpd is not None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.oss_root.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            self._open()
        except BaseException:
            self._close()
            raise
        log.info("MPS engine service listening on %s (data %s, oss root %s)", self.url, self.data_dir, self.oss_root)
        return self

    def _open(self) -> None:
        httpd = WsgiServer(
            self.wsgi,
            self.host,
            self.settings.port,
            limits=self.settings.http,
            render_error=_render_error,
            name="mps-http",
            ident="fpscreen-mps",
        )
        self._httpd = httpd
        self._library = LibraryStore(self.data_dir)
        self._db = ServiceDb(self.data_dir / SERVICE_DB_FILE)
        self._nonces = DurableNonceLedger(self._db)  # a replay after a restart is still refused
        pipelines = PipelineStore(self._db)
        self._outbox = Outbox(self._db)
        publisher = MnsPublisher(self.mns_endpoint, self.mns_credentials) if self.mns_endpoint else None
        self._notifier = Notifier(self._outbox, publisher, backoff=self._notify_backoff)
        executor = JobExecutor(self._library, IsolatedMatcher(self._library), pipelines, self.oss_root)
        self._runner = JobRunner(
            JobStore(self._db),
            executor,
            workers=self.workers,
            max_attempts=self.settings.max_attempts,
            on_finished=self._job_finished,
        )
        self._context = ServiceContext(self._library, self._runner, pipelines, self.oss_root)
        self._notifier.start()  # first: rows left by a previous run go out while jobs are recovered
        self._runner.start()
        httpd.start()

    def stop(self) -> None:
        """Stop answering, let running jobs finish (up to `stop_timeout`), flush nothing: state is on disk."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.stop()  # requests in flight finish before the stores close
        self._close()

    def _close(self) -> None:
        if self._runner is not None:
            self._runner.stop(self.settings.stop_timeout)
        if self._notifier is not None:
            self._notifier.stop()
        for closable in (self._db, self._library):
            if closable is not None:
                closable.close()
        if self._httpd is not None:  # start() failed half-way
            self._httpd.stop()
            self._httpd = None
        self._runner = self._notifier = self._outbox = self._context = None
        self._db = self._library = None
        self._lock.release()

    def __enter__(self) -> EngineService:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------ addresses

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def bound_port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the service is not running")
        return self._httpd.port

    @property
    def endpoint(self) -> str:
        """`HOST:PORT` (the TeaSDK `endpoint`, with protocol http; the CoreSDK `set_endpoint`)."""
        return f"{self.host}:{self.bound_port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def access_key(self) -> Credentials:
        """The first accepted key pair (what a local client should sign with)."""
        key = next(iter(self.secrets))
        return Credentials(key, self.secrets[key])

    # ------------------------------------------------------------------------------------------ test hooks

    @property
    def jobs(self) -> JobRunner:
        if self._runner is None:
            raise RuntimeError("the service is not running")
        return self._runner

    @property
    def library(self) -> LibraryStore:
        if self._library is None:
            raise RuntimeError("the service is not running")
        return self._library

    def wait_for_job(self, job_id: str, states: Collection[str] = FINAL_STATES, timeout: float = 30.0) -> EmulatedJob:
        """Block until `job_id` reaches one of `states` (default: Success or Fail); `TimeoutError` otherwise."""
        return self.jobs.wait_for_job(job_id, states, timeout)

    def wait_for_notification(
        self, job_id: str, timeout: float = 10.0, *, failed_attempts: int | None = None
    ) -> OutboxRow | None:
        """Block until the job's MNS notification was published (or had `failed_attempts` failed publishes);
        the outbox row, or None on timeout."""
        if self._notifier is None:
            raise RuntimeError("the service is not running")
        return self._notifier.wait_for(job_id, timeout, failed_attempts=failed_attempts)

    def pending_notifications(self) -> int:
        if self._outbox is None:
            raise RuntimeError("the service is not running")
        return self._outbox.pending_count()

    def _job_finished(self, record: EmulatedJob) -> None:
        log.info("job %s (%s) finished: %s %s", record.id, record.kind, record.state, record.code or "")
        if self._notifier is not None:
            self._notifier.wake()

    # ------------------------------------------------------------------------------------------ requests

    def handle(
        self, method: str, target: str, headers: Any, body: bytes, host_header: str | None
    ) -> tuple[int, dict[str, Any]]:
        """Answer one HTTP request: (status, JSON body)."""
        request_id = new_request_id()
        host_id = host_header or DEFAULT_HOST_ID
        split = urlsplit(target)
        try:
            auth = verify_request(
                method,
                split.path or "/",
                parse_query(split.query),
                headers,
                body,
                secrets=self.secrets,
                now=self.clock(),
                nonce_cache=self._nonces,
                expected_version=API_VERSION,
            )
        except AuthError as exc:
            return exc.http_status, exc.to_body(request_id=request_id, host_id=host_id)
        context = self._context
        if context is None:
            return 503, error_body(
                "ServiceUnavailable", "The service is stopping.", request_id=request_id, host_id=host_id
            )
        try:
            return 200, run_action(context, auth.action, auth.params, request_id)
        except ActionError as exc:
            return exc.status, error_body(exc.code, exc.message, request_id=request_id, host_id=host_id)
        except Exception:
            log.exception("%s failed", auth.action)
            return 500, error_body(
                "InternalError",
                "The request processing has failed due to some unknown error, exception or failure.",
                request_id=request_id,
                host_id=host_id,
            )

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The WSGI application: RPC over GET or POST, JSON out."""
        request = Request(environ)
        if request.method not in ("GET", "POST"):
            return error_response(environ, start_response, _render_error, 501, f"{request.method} is not supported.")
        body = request.get_data(cache=False)
        target = environ.get("REQUEST_URI") or request.full_path
        status, payload = self.handle(request.method, target, request.headers, body, request.headers.get("Host"))
        response = Response(
            json.dumps(payload, ensure_ascii=False), status=status, content_type="application/json;charset=utf-8"
        )
        response.headers["x-acs-request-id"] = str(payload.get("RequestId", ""))
        return response(environ, start_response)
