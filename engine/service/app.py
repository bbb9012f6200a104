"""`EngineService`: the MPS (Mts 2014-06-18) RPC API served over HTTP by the local engine.

    with EngineService(data_dir, oss_root, port=0) as service:
        client = AcsClient(LOCAL_ACCESS_KEY_ID, LOCAL_ACCESS_KEY_SECRET, "cn-shanghai")   # endpoint: service.endpoint
        ...
        service.wait_for_job(job_id)          # woken by the worker pool, no polling

Requests are routed on the query `Action` (RPC v1, CoreSDK) or the `x-acs-action` header (ACS3, TeaSDK) once
`engine.service.auth` verified their signature, clock and nonce. Errors are Alibaba's JSON
`{"RequestId","HostId","Code","Message"}` with its HTTP status. Responses are always JSON (both SDKs ask for it).

Access keys: `credentials` (a `Credentials` or `{AccessKeyId: secret}`), else `ALIBABA_CLOUD_ACCESS_KEY_ID` /
`ALIBABA_CLOUD_ACCESS_KEY_SECRET`, else the documented local pair `LOCAL_ACCESS_KEY_ID` /
`LOCAL_ACCESS_KEY_SECRET`. MNS notifications are signed with the first pair (or `mns_credentials`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

from engine.library import LibraryStore
from engine.matcher import Matcher
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
MAX_BODY_BYTES = 1 << 20  # RPC bodies are empty or small form posts
HTTP_THREADS = 8
REQUEST_TIMEOUT_SECONDS = 30  # a client that stalls mid-request frees its thread after this


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


class _PooledHTTPServer(ThreadingHTTPServer):
    """`ThreadingHTTPServer` on a fixed pool of threads instead of one new thread per connection.

    Why: `LibraryStore` and `ServiceDb` keep one SQLite connection per thread until closed, so a thread per
    request would leak two connections (and their file descriptors) per request.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], threads: int = HTTP_THREADS) -> None:
        super().__init__(address, _Handler)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mps-http")

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self.process_request_thread, request, client_address)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=True)  # requests in flight finish before the stores close


class EngineService:
    """The local MPS endpoint: HTTP front, durable job table, worker pool, notification outbox."""

    def __init__(
        self,
        data_dir: Path | str,
        oss_root: Path | str,
        host: str = DEFAULT_HOST,
        port: int = 0,
        workers: int = DEFAULT_WORKERS,
        credentials: Credentials | Mapping[str, str] | None = None,
        mns_endpoint: str | None = None,
        *,
        mns_credentials: Credentials | None = None,
        notify_backoff: Backoff | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        clock: Callable[[], float] = time.time,
        stop_timeout: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser()
        self.oss_root = Path(oss_root).expanduser()
        self.host = host
        self.port = port
        self.workers = workers
        self.secrets = _secrets(credentials)
        self.mns_endpoint = mns_endpoint
        first_key = next(iter(self.secrets))
        self.mns_credentials = mns_credentials or Credentials(first_key, self.secrets[first_key])
        self.clock = clock  # epoch seconds for signature timestamps; tests move it to check the ±15 min window
        self._notify_backoff = notify_backoff
        self._max_attempts = max_attempts
        self._stop_timeout = stop_timeout
        self._nonces: NonceLedger = NonceCache()  # replaced by the durable ledger once service.db is open
        self._lock = _DataDirLock(self.data_dir / LOCK_FILE)
        self._httpd: _PooledHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
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
        httpd = _PooledHTTPServer((self.host, self.port))
        httpd.service = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._library = LibraryStore(self.data_dir)
        self._db = ServiceDb(self.data_dir / SERVICE_DB_FILE)
        self._nonces = DurableNonceLedger(self._db)  # a replay after a restart is still refused
        pipelines = PipelineStore(self._db)
        self._outbox = Outbox(self._db)
        publisher = MnsPublisher(self.mns_endpoint, self.mns_credentials) if self.mns_endpoint else None
        self._notifier = Notifier(self._outbox, publisher, backoff=self._notify_backoff)
        executor = JobExecutor(self._library, Matcher(self._library), pipelines, self.oss_root)
        self._runner = JobRunner(
            JobStore(self._db),
            executor,
            workers=self.workers,
            max_attempts=self._max_attempts,
            on_finished=self._job_finished,
        )
        self._context = ServiceContext(self._library, self._runner, pipelines, self.oss_root)
        self._notifier.start()  # first: rows left by a previous run go out while jobs are recovered
        self._runner.start()
        # A short poll interval: shutdown() waits up to one interval.
        self._serve_thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="mps-http", daemon=True
        )
        self._serve_thread.start()

    def stop(self) -> None:
        """Stop answering, let running jobs finish (up to `stop_timeout`), flush nothing: state is on disk."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)
            self._serve_thread = None
        self._close()

    def _close(self) -> None:
        if self._runner is not None:
            self._runner.stop(self._stop_timeout)
        if self._notifier is not None:
            self._notifier.stop()
        for closable in (self._db, self._library):
            if closable is not None:
                closable.close()
        if self._httpd is not None:  # start() failed half-way
            self._httpd.server_close()
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
        return int(self._httpd.server_address[1])

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


class _Handler(BaseHTTPRequestHandler):
    server_version = "fpscreen-mps"
    protocol_version = "HTTP/1.0"  # one request per connection: no pool thread waits on an idle keep-alive
    timeout = REQUEST_TIMEOUT_SECONDS

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        service: EngineService = self.server.service  # type: ignore[attr-defined]
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            status, payload = 400, error_body("InvalidParameter", "Bad Content-Length.", host_id=DEFAULT_HOST_ID)
        else:
            body = self.rfile.read(length) if length else b""
            status, payload = service.handle(self.command, self.path, self.headers, body, self.headers.get("Host"))
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-acs-request-id", str(payload.get("RequestId", "")))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)
