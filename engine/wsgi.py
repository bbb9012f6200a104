"""One HTTP server for every local API (engine MPS service, local MNS, local OSS): waitress in a background thread.

Why waitress: its event loop reads each request (line, headers, body) completely before a worker thread sees it,
so slow or stalled clients hold a socket, not a thread; `max_request_body_size` / `max_request_header_size`
bound what it buffers, `channel_timeout` closes idle connections, and malformed framing (`Content-Length: -1`
or `abc`, broken request lines) is answered 400 by the parser. Errors waitress answers itself are rendered by
the service's `render_error` (Alibaba JSON, MNS XML) instead of waitress's plain text.

    server = WsgiServer(app, "127.0.0.1", 0, limits=HttpLimits(threads=8), render_error=render, name="mps-http")
    server.start(); server.port; ...; server.stop()
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, WSGITask

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# (HTTP status, reason phrase, detail) -> (Content-Type, body)
ErrorRenderer = Callable[[int, str, str], tuple[str, bytes]]

MAX_TARGET_BYTES = 64 * 1024  # longer request targets: 414
MAX_HEADER_COUNT = 100  # more header fields: 431


def plain_error(status: int, reason: str, detail: str) -> tuple[str, bytes]:
    return "text/plain; charset=utf-8", f"{reason}: {detail}\n".encode()


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one client may cost the server. Defaults suit a loopback API with small bodies."""

    threads: int = 8  # worker threads: requests being answered at once (reading them costs none)
    connection_limit: int = 100  # open sockets; beyond it new connections wait in the listen backlog
    channel_timeout: int = 30  # seconds without any byte in either direction before a connection is closed
    max_request_body_size: int = 1 << 20
    # Above MAX_TARGET_BYTES so an over-long URL gets its own 414 from `limit_request` (beyond this: 431).
    max_request_header_size: int = 256 * 1024
    max_target_bytes: int = MAX_TARGET_BYTES
    max_header_count: int = MAX_HEADER_COUNT


def _status_line(status: int) -> str:
    from http import HTTPStatus

    return f"{status} {HTTPStatus(status).phrase}"


def error_response(
    environ: dict[str, Any], start_response: Callable[..., Any], render_error: ErrorRenderer, status: int, detail: str
) -> list[bytes]:
    """Answer a WSGI request with `render_error`'s body for `status` (headers only for HEAD)."""
    line = _status_line(status)
    content_type, body = render_error(status, line.partition(" ")[2], detail)
    start_response(line, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def limit_request(app: WsgiApp, limits: HttpLimits, render_error: ErrorRenderer) -> WsgiApp:
    """Checks waitress does not make: request-target length (414) and header count (431)."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("REQUEST_URI") or ""
        if len(target) > limits.max_target_bytes:
            return error_response(environ, start_response, render_error, 414, "The request URL is too long.")
        count = sum(1 for key in environ if key.startswith("HTTP_")) + sum(
            1 for key in ("CONTENT_TYPE", "CONTENT_LENGTH") if environ.get(key)
        )
        if count > limits.max_header_count:
            return error_response(environ, start_response, render_error, 431, "The request has too many header fields.")
        return app(environ, start_response)

    return guarded


class _ErrorTask(ErrorTask):
    """Waitress's own error answers (400 bad framing, 413, 431, 501) in the service's error format."""

    def execute(self) -> None:
        error = self.request.error
        render: ErrorRenderer = self.channel.server.render_error
        content_type, body = render(error.code, error.reason, error.body)
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", content_type))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


class _WsgiTask(WSGITask):
    """Sends header names as the application spelled them. Waitress title-cases them, but the MNS SDK looks
    response headers up case-sensitively in a dict (`resp.header["x-mns-request-id"]`), as real MNS sends them."""

    def build_response_header(self) -> bytes:
        spelled = {_title(name): name for name, _ in self.response_headers}
        head: bytes = super().build_response_header()
        lines = head.decode("latin-1").split("\r\n")
        for i, line in enumerate(lines[1:], start=1):
            name, sep, value = line.partition(":")
            if sep and name in spelled:
                lines[i] = f"{spelled[name]}{sep}{value}"
        return "\r\n".join(lines).encode("latin-1")


class _Channel(HTTPChannel):
    task_class = _WsgiTask
    error_task_class = _ErrorTask


class _Server(TcpWSGIServer):
    channel_class = _Channel
    render_error: ErrorRenderer


class WsgiServer:
    """`app` on `host:port` (0: a free port) until `stop()`; the event loop runs in one daemon thread."""

    def __init__(
        self,
        app: WsgiApp,
        host: str,
        port: int,
        *,
        limits: HttpLimits = HttpLimits(),
        render_error: ErrorRenderer = plain_error,
        name: str = "http",
        ident: str = "fpscreen",
    ) -> None:
        self.limits = limits
        options = asdict(limits)
        del options["max_target_bytes"], options["max_header_count"]
        adjustments = Adjustments(
            host=host,
            port=port,
            ident=ident,
            asyncore_use_poll=True,  # select() fails beyond fd 1024
            expose_tracebacks=False,
            **options,
        )
        self._server = _Server(limit_request(app, limits, render_error), adj=adjustments)
        self._server.render_error = render_error
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    @property
    def host(self) -> str:
        return str(self._server.effective_host)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    def start(self) -> WsgiServer:
        self._thread.start()
        self._started = True
        return self

    def _run(self) -> None:
        server = self._server
        while not self._stopping.is_set():
            wasyncore.loop(timeout=1.0, map=server._map, use_poll=True, count=1)
        # Closing on the loop's own thread: wasyncore maps are not thread-safe.
        for dispatcher in list(server._map.values()):
            try:
                dispatcher.close()
            except OSError:  # already gone
                log.debug("closing %r", dispatcher, exc_info=True)

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listening socket and every connection, then wait up to `timeout` for requests in flight."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._started:
            # Wake the poll now rather than after its timeout (unless the loop already closed everything).
            with contextlib.suppress(OSError):
                self._server.pull_trigger()
            self._thread.join(timeout)
        else:
            for dispatcher in list(self._server._map.values()):
                dispatcher.close()
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=timeout)
