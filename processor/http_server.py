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
from http.server import ThreadingHTTPServer
from typing import Any

IDLE_TIMEOUT_SECONDS = 120
MAX_CONNECTIONS = 256


class BoundedHTTPServer(ThreadingHTTPServer):
    # The standard library's listen backlog is 5: a Collector opening its exporter's
    # connections at once (10 consumers each) overflowed it and saw connections reset.
    request_queue_size = 128
    daemon_threads = True
    # Set by the owner: refuse requests whose Host is not a loopback name (LoopbackHostCheck).
    loopback_only = False

    def __init__(self, *args: Any, max_connections: int = MAX_CONNECTIONS, **kwargs: Any):
        self._slots = threading.BoundedSemaphore(max_connections)
        self.refused_connections = 0
        super().__init__(*args, **kwargs)

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused_connections += 1
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


class LoopbackHostCheck:
    """Handler mixin. A processor on a loopback address without a token trusts every local
    process; a web page can be one, through DNS rebinding (its own name, re-pointed at
    127.0.0.1, makes the page same-origin with the port). Such a page sends its own name as
    Host: when the server's ``loopback_only`` is set, any other Host is refused (403)."""

    def parse_request(self) -> bool:
        if not super().parse_request():  # type: ignore[misc]
            return False
        if self.server.loopback_only and not is_loopback_host(  # type: ignore[attr-defined]
            self.headers.get("Host")  # type: ignore[attr-defined]
        ):
            self.close_connection = True
            self.send_error(  # type: ignore[attr-defined]
                403, "Host is not a loopback name; give the processor an auth token to serve others"
            )
            return False
        return True
