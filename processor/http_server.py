"""The threading HTTP server of the processor's ports (OTLP/HTTP, ClickHouse HTTP), bounded.

The standard library's server takes one thread per connection, for as long as the client
keeps it open, with no limit: a thousand idle connections used up the process's file
descriptors (a 1024 default), and the chDB store and the budget thread failed with them.
Here connections beyond ``max_connections`` are closed at once (OTLP exporters retry), and a
connection that sends nothing for ``IDLE_TIMEOUT_SECONDS`` is closed (handlers set it as their
``timeout``; exporters reconnect for their next export).
"""

from __future__ import annotations

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
