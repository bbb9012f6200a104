"""A loopback HTTP proxy in front of the engine's MPS API that loses answers on demand: it forwards a request,
lets the engine act on it, then drops the connection (what a read timeout looks like to the client) or answers
a 5xx instead of the engine's reply. The engine is the real one; only the wire between it and the functions
misbehaves."""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, urlsplit

Fault = Literal["drop", "503"]


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        split = urlsplit(upstream)
        self.upstream_host = split.hostname or "127.0.0.1"
        self.upstream_port = split.port or 80
        self._lock = threading.Lock()
        self._plan: dict[str, list[Fault]] = {}
        self.injected: Counter[str] = Counter()  # action → faults injected
        self.forwarded: Counter[str] = Counter()  # action → requests forwarded
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def lose_answers(self, action: str, *faults: Fault) -> None:
        """The next requests of `action` reach the engine, but their answers are replaced by `faults`, in order."""
        with self._lock:
            self._plan.setdefault(action, []).extend(faults)

    def pending(self, action: str) -> int:
        with self._lock:
            return len(self._plan.get(action, []))

    def _take(self, action: str) -> Fault | None:
        with self._lock:
            self.forwarded[action] += 1
            plan = self._plan.get(action)
            if not plan:
                return None
            self.injected[action] += 1
            return plan.pop(0)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        query = parse_qs(urlsplit(self.path).query)
        action = (query.get("Action") or [self.headers.get("x-acs-action", "")])[0]
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=30)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            reply = upstream.getresponse()
            payload = reply.read()
            status, reply_headers = reply.status, reply.getheaders()
        finally:
            upstream.close()
        fault = proxy._take(action)  # the engine has acted: now lose its answer, if planned
        if fault == "drop":
            self.close_connection = True
            self.connection.close()
            return
        if fault == "503":
            status, payload = 503, b'{"Code":"ServiceUnavailable","Message":"lost answer","RequestId":"proxy"}'
            reply_headers = [("Content-Type", "application/json")]
        self.send_response(status)
        for name, value in reply_headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
