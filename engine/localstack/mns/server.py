"""The local MNS endpoint's transport and lifecycle: `MnsServer` serves `MnsApi` over `engine.wsgi.WsgiServer`
(waitress) and runs the push workers, all over one SQLite `MnsStore`. See `engine.localstack.mns` for usage."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from werkzeug.wrappers import Request, Response

from engine.localstack.mns.handlers import MnsApi
from engine.localstack.mns.protocol import MNS_VERSION, error_doc
from engine.localstack.mns.push import LocalCallback, LocalSubscriber, PushWorkers, RetryPolicy
from engine.localstack.mns.store import DeadLetter, MnsError, MnsStore
from engine.wsgi import HttpLimits, WsgiServer
from shared.vocabulary import DEFAULT_REGION

if TYPE_CHECKING:
    from mns.account import Account

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT_ID = "1234567890123456"
LOCAL_ACCESS_KEY_ID = "local-mns-access-key"
LOCAL_ACCESS_KEY_SECRET = "local-mns-access-secret"
# Long polls (up to 30 s) hold a worker thread each, hence more threads than the engine API. Bodies: a batch of
# 16 messages of 64 KB plus XML stays under 2 MB; anything larger is refused (413) before it is buffered whole.
MNS_HTTP_LIMITS = HttpLimits(threads=32, connection_limit=200, channel_timeout=60, max_request_body_size=2 << 20)
_HTTP_ERROR_CODES = {
    400: "InvalidArgument",
    413: "RequestEntityTooLarge",
    414: "RequestURITooLong",
    431: "RequestHeaderFieldsTooLarge",
    501: "NotImplemented",
}


@dataclass(frozen=True, slots=True)
class MnsSettings:
    """How a local MNS endpoint is configured. `credentials` maps AccessKeyId → secret."""

    db_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    credentials: Mapping[str, str] = field(default_factory=lambda: {LOCAL_ACCESS_KEY_ID: LOCAL_ACCESS_KEY_SECRET})
    account_id: str = DEFAULT_ACCOUNT_ID
    region: str = DEFAULT_REGION
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    http: HttpLimits = MNS_HTTP_LIMITS

    def __post_init__(self) -> None:
        object.__setattr__(self, "db_path", Path(self.db_path))
        if not self.credentials:
            raise ValueError("credentials must hold at least one AccessKeyId -> secret pair")
        object.__setattr__(self, "credentials", dict(self.credentials))


def _error_renderer(host_id: Callable[[], str]) -> Callable[[int, str, str], tuple[str, bytes]]:
    def render(status: int, reason: str, detail: str) -> tuple[str, bytes]:
        exc = MnsError(_HTTP_ERROR_CODES.get(status, reason.replace(" ", "")), detail.strip() or reason, status)
        return "text/xml;charset=utf-8", error_doc(exc, secrets.token_hex(12).upper(), host_id())

    return render


class MnsServer:
    """A local MNS endpoint in background threads. `credentials` maps AccessKeyId → secret (default: the
    LOCAL_ACCESS_KEY_ID/SECRET pair); `retry_policy` sets push retry delays (default: the cloud's)."""

    def __init__(
        self,
        db_path: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: Mapping[str, str] | None = None,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        region: str = DEFAULT_REGION,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.settings = MnsSettings(
            Path(db_path),
            host,
            port,
            dict(credentials or {LOCAL_ACCESS_KEY_ID: LOCAL_ACCESS_KEY_SECRET}),
            account_id,
            region,
            retry_policy or RetryPolicy(),
        )
        self._lock = threading.RLock()
        self._subscribers: dict[tuple[str, str], LocalSubscriber] = {}
        self._store: MnsStore | None = None
        self._api: MnsApi | None = None
        self._http: WsgiServer | None = None
        self._push: PushWorkers | None = None

    @classmethod
    def from_settings(cls, settings: MnsSettings) -> MnsServer:
        server = cls(settings.db_path)
        server.settings = settings
        return server

    # settings, as attributes (the public names of before)

    @property
    def db_path(self) -> Path:
        return self.settings.db_path

    @property
    def host(self) -> str:
        return self.settings.host

    @property
    def credentials(self) -> Mapping[str, str]:
        return self.settings.credentials

    @property
    def account_id(self) -> str:
        return self.settings.account_id

    @property
    def region(self) -> str:
        return self.settings.region

    @property
    def retry_policy(self) -> RetryPolicy:
        return self.settings.retry_policy

    # lifecycle

    def __enter__(self) -> MnsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> MnsServer:
        with self._lock:
            if self._http is not None:
                return self
            settings = self.settings
            store = MnsStore(settings.db_path)
            http = WsgiServer(
                self._wsgi,
                settings.host,
                settings.port,
                limits=settings.http,
                render_error=_error_renderer(lambda: self.endpoint),
                name="mns-http",
                ident="fpscreen-mns",
            )
            self._api = MnsApi(
                store, settings.credentials, f"http://{http.host}:{http.port}", settings.account_id, settings.region
            )
            self._store, self._http = store, http
            self._push = PushWorkers(store, settings.retry_policy, settings.account_id, settings.region)
            http.start()
            self._push.start()
            try:
                for subscriber in self._subscribers.values():  # registrations outlive a stop()/start()
                    self._push.activate(subscriber)
            except BaseException:  # e.g. TopicNotExist: don't leave a half-started server behind
                self.stop()
                raise
            log.info("local MNS listening on %s (db %s)", self.endpoint, settings.db_path)
            return self

    def stop(self) -> None:
        with self._lock:
            store, http, push = self._store, self._http, self._push
            if store is None or http is None or push is None:
                return
            push.signal_stop()
            store.begin_close()  # wakes long polls and idle push threads at once
            http.stop(timeout=5.0)  # cuts keep-alive connections; waits for requests in flight
            push.join(timeout=5.0)
            store.close()
            self._store = self._http = self._api = self._push = None

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        api = self._api
        if api is None:  # a request that raced stop()
            unavailable = MnsError("ServiceUnavailable", "The local MNS is stopping.", 503)
            body = error_doc(unavailable, secrets.token_hex(12).upper(), "")
            return Response(body, status=503, content_type="text/xml;charset=utf-8")(environ, start_response)
        request = Request(environ)
        # The signature covers the resource exactly as sent: the raw request target, not the decoded path.
        target = environ.get("REQUEST_URI") or request.full_path
        reply = api.handle(request.method, target, request.headers, request.get_data(cache=False))
        response = Response(reply.body, status=reply.status)
        response.headers["Date"] = formatdate(usegmt=True)
        response.headers.update(reply.headers)
        if reply.body:
            response.headers["Content-Type"] = "text/xml;charset=utf-8"
        else:
            del response.headers["Content-Type"]
        return response(environ, start_response)

    @property
    def running(self) -> bool:
        return self._http is not None

    @property
    def endpoint(self) -> str:
        """`http://127.0.0.1:PORT`, for `mns.account.Account(endpoint, ak, secret)`."""
        if self._api is None:
            raise RuntimeError("MnsServer is not running: call start() first")
        return self._api.host_id

    @property
    def store(self) -> MnsStore:
        """Direct access to the state (inspection in tests, seeding without HTTP)."""
        if self._store is None:
            raise RuntimeError("MnsServer is not running: call start() first")
        return self._store

    def account(self, access_key_id: str | None = None) -> Account:
        """An SDK `mns.account.Account` for this endpoint, signed with one of the configured key pairs."""
        from mns.account import Account  # the SDK is a client-side dependency; the server itself doesn't need it

        key_id = access_key_id or next(iter(self.credentials))
        return Account(self.endpoint, key_id, self.credentials[key_id])

    def queue_endpoint(self, queue: str) -> str:
        """The subscription Endpoint that pushes a topic into `queue`."""
        return f"acs:mns:{self.region}:{self.account_id}:queues/{queue}"

    # local subscribers (FC "MNS topic" triggers)

    def add_local_subscriber(
        self,
        topic: str,
        name: str,
        callback: LocalCallback,
        *,
        content_format: Literal["JSON", "STREAM"] = "JSON",
        filter_tag: str | None = None,
        notify_strategy: str = "BACKOFF_RETRY",
    ) -> None:
        """Subscribe `callback(event_bytes)` to `topic` (which must exist once the server runs). Re-adding the
        same (topic, name) after a restart picks up the deliveries still pending in the database."""
        if content_format not in ("JSON", "STREAM"):
            raise ValueError(f"content_format must be 'JSON' or 'STREAM', not {content_format!r}")
        subscriber = LocalSubscriber(topic, name, callback, content_format, filter_tag or "", notify_strategy)
        with self._lock:
            if self._push is not None:
                self._push.activate(subscriber)
            self._subscribers[(topic, name)] = subscriber

    def remove_local_subscriber(self, topic: str, name: str) -> None:
        """Stop pushing to the callback and unsubscribe (pending deliveries are dropped, as MNS does)."""
        with self._lock:
            self._subscribers.pop((topic, name), None)
            if self._push is not None:
                self._push.stop_one(("local", topic, name))
            if self._store is not None:
                try:
                    self._store.unsubscribe(topic, name)
                except MnsError as exc:  # already gone (topic deleted, unsubscribed through the API): fine
                    if exc.code not in ("TopicNotExist", "SubscriptionNotExist"):
                        raise

    def dead_letters(self, topic: str | None = None) -> list[DeadLetter]:
        """Messages whose pushes exhausted their retries (all topics when `topic` is None), oldest first."""
        return self.store.dead_letters(topic)

    def wait_for_deliveries(self, topic: str, subscription: str | None = None, timeout: float = 10.0) -> bool:
        """Block until every push of `topic` (or of one subscription) is delivered or dead-lettered; False on
        timeout. Local subscribers must be registered, else their deliveries stay pending."""
        return self.store.wait_no_pending(topic, subscription, timeout)


__all__ = ["MNS_VERSION", "MnsServer", "MnsSettings", "RetryPolicy"]
