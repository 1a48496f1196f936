"""The processor's HTTP ports bound their connections: idle ones are closed and those past
the cap are refused at once, so idle clients cannot use up threads and file descriptors."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest
from llm_margin.processor.http_server import (
    BoundedHTTPServer,
    LoopbackHostCheck,
    is_loopback_host,
    is_loopback_origin,
)

from tests.http_replies import reply_ok


class Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 2.0  # serve's handlers use IDLE_TIMEOUT_SECONDS

    def do_GET(self):  # noqa: N802 (http.server's name)
        reply_ok(self)

    def log_message(self, *args):
        return

    def log_error(self, *args):
        return


@pytest.fixture
def server():
    httpd = BoundedHTTPServer(("127.0.0.1", 0), Hello, max_connections=3)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def hello(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status
    finally:
        connection.close()


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


def test_connections_past_the_cap_are_closed_at_once(server):
    port = server.server_address[1]
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        time.sleep(0.1)
        extra = socket.create_connection(("127.0.0.1", port))
        assert closed_by_server(extra, within=1.0)  # before the idle timeout could close it
        extra.close()
        assert server.refused_connections >= 1
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the slots come back once the idle ones close
        try:
            if hello(port) == 200:
                break
        except (ConnectionError, http.client.HTTPException):
            time.sleep(0.05)
    else:
        pytest.fail("the server did not serve again after the idle connections closed")


def test_an_idle_connection_is_closed_after_the_handler_timeout(server):
    port = server.server_address[1]
    idle = socket.create_connection(("127.0.0.1", port))
    try:
        assert closed_by_server(idle, within=5)
    finally:
        idle.close()
    assert hello(port) == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:4318", True),
        ("127.0.0.1", True),
        ("127.1.2.3:80", True),
        ("localhost:4318", True),
        ("LOCALHOST", True),
        ("[::1]:4318", True),
        ("::1", True),
        (None, True),  # HTTP/1.0, no Host
        ("evil.example:4318", False),
        ("evil.example", False),
        ("10.0.0.5:4318", False),
        ("0.0.0.0", False),
        ("localhost.evil.example", False),
        ("[2001:db8::1]:4318", False),
    ],
)
def test_is_loopback_host(host, loopback):
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    ("origin", "loopback"),
    [
        ("http://localhost:3000", True),
        ("http://127.0.0.1:8123", True),
        ("https://[::1]", True),
        ("https://evil.example", False),
        ("http://127.0.0.1.evil.example", False),
        ("null", False),  # sandboxed iframes, file: pages
        ("", False),
        ("file://", False),
    ],
)
def test_is_loopback_origin(origin, loopback):
    assert is_loopback_origin(origin) is loopback


class CheckedHello(LoopbackHostCheck, Hello):
    pass


def test_loopback_only_refuses_other_host_names():
    """DNS rebinding: a page's own name, re-pointed at 127.0.0.1, arrives as its Host."""
    httpd = BoundedHTTPServer(("127.0.0.1", 0), CheckedHello)
    httpd.loopback_only = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    try:
        here = f"127.0.0.1:{port}"
        for headers, status in (
            ({"Host": "evil.example"}, 403),
            ({"Host": here}, 200),
            # A page elsewhere sending to 127.0.0.1 (it cannot read the answer, but the
            # request is made): its Origin gives it away.
            ({"Host": here, "Origin": "https://evil.example"}, 403),
            ({"Host": here, "Origin": "null"}, 403),
            ({"Host": here, "Origin": "http://localhost:3000"}, 200),
        ):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.request("GET", "/", headers=headers)
                assert connection.getresponse().status == status, headers
            finally:
                connection.close()
        httpd.loopback_only = False  # a token is set, or the port is not on loopback
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request(
                "GET", "/", headers={"Host": "processor.internal", "Origin": "https://app.example"}
            )
            assert connection.getresponse().status == 200
        finally:
            connection.close()
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- chunked request bodies (OTLP/HTTP senders that stream a body send one) --------------------
@pytest.mark.parametrize(
    ("wire", "body"),
    [
        (b"0\r\n\r\n", b""),
        (b"3\r\nabc\r\n0\r\n\r\n", b"abc"),
        (b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", b"abcde"),
        (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),  # hex, either case
        (b"3;ext=1\r\nabc\r\n0\r\n\r\n", b"abc"),  # chunk extensions ignored
        (b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n", b"abc"),  # trailer fields consumed
        (b"3\nabc\n0\n\n", b"abc"),  # bare LF line ends
    ],
)
def test_read_chunked_reads_the_body_and_its_trailers(wire, body):
    import io

    from llm_margin.processor.http_server import read_chunked

    stream = io.BytesIO(wire + b"NEXT")
    assert read_chunked(stream, 10) == body
    assert stream.read() == b"NEXT"  # nothing of the next request consumed


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        (b"b\r\n01234567890\r\n0\r\n\r\n", 413),  # 11 bytes, limit 10
        (b"6\r\nabcdef\r\n6\r\nabcdef\r\n0\r\n\r\n", 413),  # over the limit in total
        (b"0x3\r\nabc\r\n0\r\n\r\n", 400),  # int(, 16) would take these
        (b"-1\r\n\r\n", 400),
        (b"+3\r\nabc\r\n0\r\n\r\n", 400),
        (b"1_0\r\n", 400),
        (b"\r\n", 400),  # no size
        (b"zz\r\n", 400),
        (b"5\r\nabc", 400),  # cut short
        (b"3\r\nabcdef\r\n0\r\n\r\n", 400),  # more data than the size said
        (b"3\r\nabc\r\n0\r\n", 400),  # no end of trailers
        (b"3\r\nabc\r\n", 400),  # no last chunk
        (b"3" + b"0" * 5000 + b"\r\n", 400),  # size line too long
        (b"0\r\n" + b"X: 1\r\n" * 100 + b"\r\n", 400),  # too many trailer fields
    ],
)
def test_read_chunked_refuses_malformed_or_oversized_bodies(wire, status):
    import io

    from llm_margin.processor.http_server import BodyError, read_chunked

    with pytest.raises(BodyError) as info:
        read_chunked(io.BytesIO(wire), 10)
    assert info.value.status == status
