"""The threading HTTP server of the processor's ports (OTLP/HTTP, ClickHouse HTTP), bounded.

The standard library's server takes one thread per connection, for as long as the client
keeps it open, with no limit: a thousand idle connections used up the process's file
descriptors (a 1024 default), and the chDB store and the budget thread failed with them.
Here connections beyond ``max_connections`` are closed at once (OTLP exporters retry), and a
connection that sends nothing for ``IDLE_TIMEOUT_SECONDS`` is closed (handlers set it as their
``timeout``; exporters reconnect for their next export).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any, BinaryIO
from urllib.parse import urlsplit

IDLE_TIMEOUT_SECONDS = 120
MAX_CONNECTIONS = 256
# A chunk-size line (with extensions) or trailer field longer than this is refused, and so is
# a body with more trailer fields: reading them must not hold unbounded memory.
MAX_CHUNK_LINE_BYTES = 4096
MAX_TRAILER_FIELDS = 64
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


class BodyError(ValueError):
    """The request body cannot be read as framed (or is over the limit). ``status`` is the
    HTTP answer; after it the connection must be closed, as where the next request starts
    is unknown."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def read_chunked(
    rfile: BinaryIO, max_bytes: int, reserve: Callable[[int], None] | None = None
) -> bytes:
    """A ``Transfer-Encoding: chunked`` body (RFC 9112 section 7.1) from ``rfile``, trailers
    consumed; BodyError 413 past ``max_bytes``, 400 if malformed or cut short.
    ``reserve(size)`` is called before each chunk is read (a memory budget); what it raises
    is let out."""
    body = bytearray()
    while True:
        line = _line(rfile)
        size_text = line.split(b";", 1)[0].strip()
        # int(x, 16) alone would take "0x1f", "-1", "+1" and "1_0".
        if not size_text or not _HEX_DIGITS.issuperset(size_text):
            raise BodyError(400, f"bad chunk size {size_text[:40]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > max_bytes:
            raise BodyError(413, f"body exceeds {max_bytes} bytes")
        if reserve is not None:
            reserve(size)
        data = rfile.read(size)
        if len(data) < size:
            raise BodyError(400, "chunked body cut short")
        body += data
        if _line(rfile).strip():
            raise BodyError(400, "chunk data longer than its size")
    for _ in range(MAX_TRAILER_FIELDS + 1):
        if not _line(rfile).strip():
            return bytes(body)
    raise BodyError(400, "too many trailer fields")


def _line(rfile: BinaryIO) -> bytes:
    line = rfile.readline(MAX_CHUNK_LINE_BYTES + 1)
    if not line.endswith(b"\n"):
        raise BodyError(400, "chunked body cut short or line too long")
    return line


class BoundedHTTPServer(ThreadingHTTPServer):
    # The standard library's listen backlog is 5: a Collector opening its exporter's
    # connections at once (10 consumers each) overflowed it and saw connections reset.
    request_queue_size = 128
    daemon_threads = True
    # Set by the owner: refuse requests whose Host is not a loopback name (LoopbackHostCheck).
    loopback_only = False

    def __init__(
        self,
        *args: Any,
        max_connections: int = MAX_CONNECTIONS,
        on_refused: Callable[[], None] | None = None,
        **kwargs: Any,
    ):
        self._slots = threading.BoundedSemaphore(max_connections)
        self.refused_connections = 0
        # Called for each connection closed past the cap: the owner's metrics count it.
        self._on_refused = on_refused
        super().__init__(*args, **kwargs)

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused_connections += 1
            if self._on_refused is not None:
                self._on_refused()
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: socket.socket, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def is_loopback_host(host: str | None) -> bool:
    """Whether a Host header (or a bind address) names this machine's loopback: localhost,
    127.0.0.0/8 or ::1, with or without a port. No header (HTTP/1.0) counts as loopback."""
    if not host:
        return True
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:4318
        name = host[1:].partition("]")[0]
    elif host.count(":") == 1:  # name:port
        name = host.partition(":")[0]
    else:  # a name, or a bare IPv6 address
        name = host
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name == "localhost" or name.endswith(".localhost")


def is_loopback_origin(origin: str) -> bool:
    """Whether an ``Origin`` header names a page served from this machine's loopback
    (``http://localhost:3000``); ``null`` (a sandboxed or local-file page) is not one."""
    parts = urlsplit(origin.strip())
    return (
        parts.scheme in ("http", "https") and bool(parts.netloc) and is_loopback_host(parts.netloc)
    )


class LoopbackHostCheck:
    """Handler mixin. A processor on a loopback address without a token trusts every local
    process; a web page can be one. Through DNS rebinding (its own name, re-pointed at
    127.0.0.1, makes the page same-origin with the port) such a page sends its own name as
    Host; without it, it still sends requests to 127.0.0.1 it cannot read the answers of (a
    form's text/plain POST: a statement, to the writable ClickHouse HTTP interface), with its
    own Origin. When the server's ``loopback_only`` is set, a Host or Origin that is not a
    loopback name is refused (403); programs (exporters, curl, ClickHouse clients) send no
    Origin."""

    def parse_request(self) -> bool:
        if not super().parse_request():  # type: ignore[misc]
            return False
        if not self.server.loopback_only:  # type: ignore[attr-defined]
            return True
        origin = self.headers.get("Origin")  # type: ignore[attr-defined]
        if not is_loopback_host(self.headers.get("Host")):  # type: ignore[attr-defined]
            refused = "Host is not a loopback name"
        elif origin is not None and not is_loopback_origin(origin):
            refused = "a web page of another origin sent this request"
        else:
            return True
        self.close_connection = True
        self.send_error(  # type: ignore[attr-defined]
            403, f"{refused}; give the processor an auth token to serve others"
        )
        return False
