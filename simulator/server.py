"""The simulator's HTTP server: routing, recording, fault injection, SSE framing.

Stdlib only (``http.server.ThreadingHTTPServer``) so the simulator starts in milliseconds
inside any test. HTTP/1.1 with keep-alive: plain answers carry Content-Length, streams use
chunked transfer encoding, which is what lets ``stream-cut`` drop the connection mid-body in
a way the httpx2-based SDKs notice (incomplete chunked read).
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import anthropic_api, faults, gemini_api, openai_api
from .tokens import SSE


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP attempt as it reached the simulator (failed attempts included)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any | None


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (the simulator is not a public server)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _StreamCut(Exception):
    """Raised to abandon a response mid-stream and drop the connection."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llm-margin-simulator/0.1"
    sys_version = ""
    timeout = 60  # idle keep-alive connections end eventually
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: tests run thousands of requests; per-request lines would be noise."""

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    # --- plumbing ------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, body: Any, extra: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _send_stream(
        self, events: list[SSE], plan: faults.Faults, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        sent_content = 0
        for index, event in enumerate(events):
            if index and plan.stream_slow_ms:
                time.sleep(plan.stream_slow_ms / 1000)
            if event.content and plan.stream_cut is not None and sent_content >= plan.stream_cut:
                raise _StreamCut
            data = event.data if isinstance(event.data, str) else json.dumps(event.data)
            frame = (f"event: {event.event}\n" if event.event else "") + f"data: {data}\n\n"
            raw = frame.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
            sent_content += event.content
        if plan.stream_cut is not None and sent_content >= plan.stream_cut:
            raise _StreamCut  # fewer content chunks than the cut: still no clean ending
        self.wfile.write(b"0\r\n\r\n")

    def _abort(self) -> None:
        """Drop the connection without finishing the chunked body."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- routing -------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        self._handle(b"")

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle(b"")

    def do_POST(self) -> None:  # noqa: N802
        self._handle(self._read_body())

    do_PUT = do_PATCH = do_DELETE = do_POST  # noqa: N815

    def _handle(self, body: bytes) -> None:
        path = self.path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        self.server.record(RecordedRequest(self.command, self.path, headers, body, parsed))
        anthropic = path.startswith("/v1/messages") or "anthropic-version" in headers
        gemini = _GEMINI_PATH.match(path) is not None
        errors = (
            gemini_api.error_body
            if gemini
            else anthropic_api.error_body
            if anthropic
            else openai_api.error_body
        )
        if path == "/healthz" and self.command in ("GET", "HEAD"):
            self._send_text(200, "ok")
            return
        route = _gemini_route(self.command, path) if gemini else _ROUTES.get((self.command, path))
        if route is None:
            self._send_json(404, errors(404, f"Invalid URL ({self.command} {path})"))
            return
        try:
            plan = faults.parse_faults(headers.get("x-sim-fault"))
            overrides = faults.parse_overrides(headers)
        except ValueError as exc:
            self._send_json(400, errors(400, str(exc)))
            return
        if not isinstance(parsed, dict):
            self._send_json(400, errors(400, "request body must be a JSON object"))
            return
        if plan.slow_ms:
            time.sleep(plan.slow_ms / 1000)
        status = faults.status_for_attempt(plan, self._attempt(headers))
        if status is not None:
            retry = {"retry-after": "0", "retry-after-ms": "1"}
            self._send_json(status, errors(status), retry)
            return
        result = route(parsed, overrides, plan.invalid_json)
        extra = gemini_api.response_headers(parsed) if gemini else None
        if isinstance(result, list):
            try:
                self._send_stream(result, plan, extra)
            except _StreamCut:
                self._abort()
        else:
            self._send_json(200, result, extra)

    def _attempt(self, headers: dict[str, str]) -> int:
        """The 0-based attempt of this logical request: the openai/anthropic SDKs number their
        retries (``x-stainless-retry-count``); google-genai does not, so a request carrying
        ``x-sim-request-id`` is numbered by the earlier requests recorded with the same id."""
        if "x-stainless-retry-count" in headers or "x-sim-request-id" not in headers:
            return faults.attempt_number(headers.get("x-stainless-retry-count"))
        same = headers["x-sim-request-id"]
        with self.server.lock:
            seen = sum(r.headers.get("x-sim-request-id") == same for r in self.server.recorded)
        return seen - 1  # this request is recorded already

    def _send_text(self, status: int, text: str) -> None:
        payload = text.encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


_ROUTES = {
    ("POST", "/v1/chat/completions"): openai_api.chat_completion,
    ("POST", "/v1/responses"): openai_api.response,
    ("POST", "/v1/embeddings"): lambda body, _ov, _invalid: openai_api.embeddings(body),
    ("POST", "/v1/messages"): anthropic_api.message,
}

# google-genai's Gemini API paths: ``v1`` (its default) or ``v1beta``, then the model's method.
_GEMINI_PATH = re.compile(r"/v1(?:beta)?/models/([^/:]+):([A-Za-z]+)\Z")


def _gemini_route(command: str, path: str) -> Any:
    """``POST /v1[beta]/models/{model}:{method}``: the handler with the model bound, or None."""
    match = _GEMINI_PATH.match(path)
    if command != "POST" or match is None:
        return None
    model, method = match.groups()
    if method in ("generateContent", "streamGenerateContent"):
        stream = method == "streamGenerateContent"
        return lambda body, ov, invalid: gemini_api.generate_content(
            model, body, ov, invalid, stream
        )
    if method == "batchEmbedContents":
        return lambda body, _ov, _invalid: gemini_api.batch_embed_contents(model, body)
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.lock = threading.Lock()
        self.recorded: list[RecordedRequest] = []
        self.connections: set[socket.socket] = set()

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.recorded.append(request)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self.lock:
            (self.connections.add if alive else self.connections.discard)(conn)

    def close_connections(self) -> None:
        """End idle keep-alive connections so handler threads exit on stop()."""
        with self.lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: clients hanging up mid-answer is normal here (stream-cut, SDK timeouts)."""


class Simulator:
    """A running simulator; see ``start_simulator``. Also a context manager."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        self.base_url = f"http://{host}:{port}"
        self.openai_base_url = self.base_url + "/v1"
        self.anthropic_base_url = self.base_url
        # google-genai: ``http_options={"base_url": ...}`` (it adds ``/v1/models/...``)
        self.gemini_base_url = self.base_url

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._server.lock:
            return list(self._server.recorded)

    def clear(self) -> None:
        """Forget recorded requests (e.g. between phases of one test)."""
        with self._server.lock:
            self._server.recorded.clear()

    def stop(self) -> None:
        """Stop serving, drop open connections, and join the serving thread (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        self._server.close_connections()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulator(
    host: str = "127.0.0.1", port: int = 0, allow_remote: bool = False
) -> Simulator:
    """Start a simulator in a background thread; it accepts connections once this returns.

    Non-loopback hosts are refused unless ``allow_remote``: the simulator has no auth and
    records every header it receives, so it must not be reachable from other machines by
    accident.
    """
    if not allow_remote and not is_loopback(host):
        raise ValueError(f"refusing to listen on non-loopback host {host!r} (allow_remote=False)")
    server = _Server((host, port))
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="llm-margin-simulator",
        daemon=True,
    )
    thread.start()
    return Simulator(server, thread)
