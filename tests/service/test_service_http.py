"""The engine API's HTTP layer: slow clients cost no worker thread, and malformed or oversized requests get
Alibaba's error JSON with a clear status instead of a dropped connection or a stuck thread."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engine.service.app import ENGINE_HTTP_LIMITS, EngineService
from tests.service.conftest import raw_call, signed_rpc_query

ERROR_KEYS = {"RequestId", "HostId", "Code", "Message"}


def _connect(service: EngineService) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.bound_port), timeout=10)


def _exchange(service: EngineService, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `raw` on a fresh connection, read until the server closes it (requests the server answers itself
    close the connection; the others ask for it); → (status, headers, body)."""
    with _connect(service) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


def _error(service: EngineService, raw: bytes) -> tuple[int, dict[str, Any]]:
    status, headers, body = _exchange(service, raw)
    assert headers["content-type"].startswith("application/json")
    payload = json.loads(body)
    assert set(payload) == ERROR_KEYS
    return status, payload


@contextlib.contextmanager
def _slow_clients(service: EngineService, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections stalled mid-request: half in the headers, half in a declared body."""
    socks = []
    try:
        for i in range(count):
            sock = _connect(service)
            if i % 2:
                sock.sendall(b"POST /?Action=X HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nx")
            else:
                sock.sendall(b"POST /?Action=X HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_slow_clients_do_not_hold_worker_threads(service: EngineService) -> None:
    clients = ENGINE_HTTP_LIMITS.threads + 2  # more stalled clients than there are worker threads
    with _slow_clients(service, clients):
        started = time.monotonic()
        status, payload = raw_call(service, signed_rpc_query("ListFpShotDB", {}))
        elapsed = time.monotonic() - started
    assert status == 200, payload
    assert "FpShotDBList" in payload
    assert elapsed < 2.0  # answered at once, not after a stalled client's read timeout


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1, 2"])
def test_invalid_content_length_is_400(service: EngineService, length: bytes) -> None:
    status, payload = _error(service, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + length + b"\r\n\r\n")
    assert status == 400
    assert payload["Code"] == "InvalidParameter"


def test_oversized_body_is_refused_before_it_is_read(service: EngineService) -> None:
    # Only the headers are sent: the 413 comes back without the server waiting for 400 MB.
    status, payload = _error(service, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 400000000\r\n\r\n")
    assert status == 413
    assert payload["Code"] == "RequestEntityTooLarge"


def test_long_url_is_414(service: EngineService) -> None:
    target = b"/?Action=ListFpShotDB&Pad=" + b"a" * (70 * 1024)
    status, payload = _error(service, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status == 414
    assert payload["Code"] == "RequestURITooLong"


def test_too_many_headers_is_431(service: EngineService) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(101))
    status, payload = _error(service, b"GET / HTTP/1.1\r\nConnection: close\r\n" + headers + b"\r\n")
    assert status == 431
    assert payload["Code"] == "RequestHeaderFieldsTooLarge"


def test_unsupported_methods_are_501(service: EngineService) -> None:
    status, payload = _error(service, b"PUT / HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert (status, payload["Code"]) == (501, "NotImplemented")
    status, headers, body = _exchange(service, b"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status == 501
    assert headers["content-type"].startswith("application/json")
    assert body == b""  # HEAD: headers only


@pytest.mark.parametrize("line", [b"GARBAGE", b"GET", b"GET / HTTP/9.9 extra"])
def test_malformed_request_line_is_400(service: EngineService, line: bytes) -> None:
    status, payload = _error(service, line + b"\r\nHost: a\r\n\r\n")
    assert status == 400
    assert payload["Code"] == "InvalidParameter"


def test_service_keeps_serving_after_bad_requests(service: EngineService) -> None:
    _exchange(service, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n")
    _exchange(service, b"GARBAGE\r\n\r\n")
    status, payload = raw_call(service, signed_rpc_query("ListFpShotDB", {}))
    assert status == 200, payload
