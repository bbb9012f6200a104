"""The local MNS's HTTP layer: bodies are capped before authentication, bad framing gets an MNS `<Error>` instead
of a held thread or a dropped connection, and stalled clients hold no worker thread."""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from mns.account import Account
from mns.queue import Message, QueueMeta

from engine.localstack.mns import MnsServer
from engine.localstack.mns.server import MNS_HTTP_LIMITS

AK, SK = "test-ak", "test-secret"
NS = "{http://mns.aliyuncs.com/doc/v1/}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MnsServer]:
    with MnsServer(tmp_path / "mns.db", credentials={AK: SK}) as srv:
        yield srv


def _connect(server: MnsServer) -> socket.socket:
    host, port = server.endpoint.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _error(server: MnsServer, raw: bytes) -> tuple[int, str]:
    """Send `raw`, read until the server closes the connection; → (status, MNS error Code)."""
    with _connect(server) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    root = ET.fromstring(body)
    assert root.tag == f"{NS}Error"
    assert root.findtext(f"{NS}HostId") == server.endpoint
    assert root.findtext(f"{NS}RequestId")
    return status, root.findtext(f"{NS}Code") or ""


@pytest.mark.parametrize("length", [b"-1", b"abc"])
def test_invalid_content_length_is_400(server: MnsServer, length: bytes) -> None:
    raw = b"POST /queues/q/messages HTTP/1.1\r\nHost: a\r\nContent-Length: " + length + b"\r\n\r\n"
    assert _error(server, raw) == (400, "InvalidArgument")


def test_unauthenticated_huge_body_is_refused_unread(server: MnsServer) -> None:
    # Only the headers go out: the answer comes without the server reading (or waiting for) 400 MB.
    raw = b"POST /queues/q/messages HTTP/1.1\r\nHost: a\r\nContent-Length: 400000000\r\n\r\n"
    assert _error(server, raw) == (413, "RequestEntityTooLarge")


def test_long_url_is_414(server: MnsServer) -> None:
    raw = b"GET /queues/" + b"q" * (70 * 1024) + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    assert _error(server, raw) == (414, "RequestURITooLong")


def test_too_many_headers_is_431(server: MnsServer) -> None:
    headers = b"".join(b"x-h%d: v\r\n" % i for i in range(101))
    raw = b"GET /queues HTTP/1.1\r\nConnection: close\r\n" + headers + b"\r\n"
    assert _error(server, raw) == (431, "RequestHeaderFieldsTooLarge")


@pytest.mark.parametrize("line", [b"GARBAGE", b"GET /queues HTTP/9.9 extra"])
def test_malformed_request_line_is_400(server: MnsServer, line: bytes) -> None:
    assert _error(server, line + b"\r\nHost: a\r\n\r\n") == (400, "InvalidArgument")


def test_stalled_clients_hold_no_worker_thread(server: MnsServer) -> None:
    account = Account(server.endpoint, AK, SK)
    queue = account.get_queue("jobs")
    queue.create(QueueMeta())
    socks = []
    try:
        for i in range(MNS_HTTP_LIMITS.threads + 2):  # more stalled clients than worker threads
            sock = _connect(server)
            stall = b"Content-Length: 100\r\n\r\n<Message>" if i % 2 else b"x-slow: "
            sock.sendall(b"POST /queues/jobs/messages HTTP/1.1\r\nHost: a\r\n" + stall)
            socks.append(sock)
        started = time.monotonic()
        queue.send_message(Message("still served"))
        assert queue.receive_message().message_body == b"still served"
        assert time.monotonic() - started < 2.0
    finally:
        for sock in socks:
            sock.close()
