"""The alert webhook sink against hostile or broken receivers: untrusted ids cannot ping a
Slack channel or plant a link, a redirect is not followed, a drip-feeding receiver cannot hold
the evaluation round past the delivery deadline, and a huge response body is not read whole.

Real HTTP servers on 127.0.0.1 (free ports), stopped after each test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from llm_margin.processor.budgets.sinks import WebhookSink, slack_payload
from llm_margin.processor.budgets.thresholds import Alert

NOW = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)
EVIL = "<!channel> <https://evil.example/login|Click> & co"


def alert(scope_id: str = "c1") -> Alert:
    return Alert(
        "daily_spend", "critical", "customer", scope_id, scope_id, "2026-11-22", Decimal(100),
        Decimal(60), Decimal(50), "60 of 50 USD", f"customer {scope_id} spent 60 USD today",
    )  # fmt: skip


class Server:
    """A ThreadingHTTPServer on a free loopback port running ``handler`` for POST."""

    def __init__(self, handler) -> None:
        self.bodies: list[dict] = []
        self.requests: list[tuple[str, str]] = []  # (method, path)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                outer.requests.append(("POST", self.path))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                handler(self, outer, body)

            def do_GET(self):  # noqa: N802
                outer.requests.append(("GET", self.path))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator:
    servers: list[Server] = []

    def start(handler) -> Server:
        servers.append(Server(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def ok(request, server, body):
    server.bodies.append(json.loads(body))
    request.send_response(200)
    request.send_header("Content-Length", "2")
    request.end_headers()
    request.wfile.write(b"ok")


# -- Slack escaping --------------------------------------------------------------------------


def test_untrusted_ids_are_escaped_in_slack_text_but_not_in_structured_fields(serve):
    server = serve(ok)
    sink = WebhookSink(server.url, timeout=5, attempts=1)
    sink.send([alert(EVIL)], NOW)
    assert sink.pending == 0
    [body] = server.bodies
    texts = [body["text"], body["blocks"][0]["text"]["text"]]
    texts += [element["text"] for element in body["blocks"][1]["elements"]]
    escaped = "&lt;!channel&gt; &lt;https://evil.example/login|Click&gt; &amp; co"
    for text in texts:
        assert "<" not in text and ">" not in text, text
    assert escaped in body["text"] and escaped in body["blocks"][0]["text"]["text"]
    assert f"`{escaped}`" in body["blocks"][1]["elements"][0]["text"]
    # The structured alert is data for other receivers: raw.
    assert body["llm_margin"]["scope_id"] == EVIL
    assert body["llm_margin"]["customer_id"] == EVIL
    assert body["llm_margin"]["message"] == f"customer {EVIL} spent 60 USD today"


def test_plain_ids_read_as_before():
    payload = slack_payload(alert("acme"), NOW)
    assert (
        payload["text"] == ":rotating_light: llm-margin critical: customer acme spent 60 USD today"
    )
    assert payload["blocks"][1]["elements"][0]["text"] == (
        "customer `acme` · period 2026-11-22 · threshold 100%"
    )
