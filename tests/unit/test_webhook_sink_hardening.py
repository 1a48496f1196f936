"""The alert webhook sink against hostile or broken receivers: untrusted ids cannot ping a
Slack channel or plant a link, a redirect is not followed, a drip-feeding receiver cannot hold
the evaluation round past the delivery deadline, and a huge response body is not read whole.

Real HTTP servers on 127.0.0.1 (free ports), stopped after each test."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from llm_margin.processor.budgets import evaluator as ev
from llm_margin.processor.budgets.config import BudgetConfig
from llm_margin.processor.budgets.sinks import WebhookSink, slack_payload
from llm_margin.processor.budgets.thresholds import Alert
from llm_margin.processor.metrics import Metrics
from llm_margin.processor.storage import QueryResult

from tests.http_replies import reply_ok

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
        self.stopping = threading.Event()
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
                reply_ok(self)

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()  # ends drip-feeding handlers
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


def test_slack_context_names_a_workspace_and_its_customer():
    workspace = replace(alert("<!here>/default"), scope="workspace")
    payload = slack_payload(workspace, NOW)
    assert payload["blocks"][1]["elements"][0]["text"] == (
        "workspace `default` · customer `&lt;!here&gt;` · period 2026-11-22 · threshold 100%"
    )
    assert payload["llm_margin"]["scope_id"] == "<!here>/default"


# -- receivers that never finish answering ---------------------------------------------------

DRIP_SECONDS = 0.3  # shorter than any socket timeout: a per-read timeout never trips
DEADLINE = 1.0
SLACK = 3.0  # generous for a loaded 2-core CI machine


def drip(request, server, data: bytes) -> None:
    """Writes ``data`` a byte at a time, one every DRIP_SECONDS, until the client goes away or
    the server stops (about 30 s of drip: far past any deadline)."""
    for byte in data:
        if server.stopping.wait(DRIP_SECONDS):
            return
        try:
            request.wfile.write(bytes([byte]))
            request.wfile.flush()
        except OSError:
            return


def drip_status_line(request, server, body):
    server.bodies.append(json.loads(body))
    drip(request, server, b"HTTP/1.1 200 OK\r\n" * 10)


def drip_body(request, server, body):
    server.bodies.append(json.loads(body))
    request.send_response(200)
    request.send_header("Content-Length", "100")
    request.end_headers()
    request.wfile.flush()
    drip(request, server, b"x" * 100)


def test_a_receiver_dripping_its_status_line_fails_at_the_deadline(serve):
    server = serve(drip_status_line)
    metrics = Metrics()
    sink = WebhookSink(server.url, timeout=DEADLINE, attempts=3, metrics=metrics)
    started = time.monotonic()
    sink.send([alert("c1")], NOW)
    assert time.monotonic() - started < DEADLINE + SLACK
    # No answer: kept for the next round (at-least-once), the failure counted.
    assert sink.pending == 1 and metrics.get("alert_webhook_failures") == 1
    started = time.monotonic()
    sink.retry_pending()
    assert time.monotonic() - started < DEADLINE + SLACK
    assert sink.pending == 1 and metrics.get("alert_webhook_failures") == 2


def test_a_receiver_dripping_its_body_after_200_took_the_alert(serve):
    server = serve(drip_body)
    sink = WebhookSink(server.url, timeout=DEADLINE, attempts=3)
    started = time.monotonic()
    sink.send([alert("c1"), alert("c2")], NOW)
    assert time.monotonic() - started < DEADLINE + SLACK
    # The first was taken (200); the deadline of the round ran out on it, the second waits.
    assert [b["llm_margin"]["scope_id"] for b in server.bodies] == ["c1"]
    assert sink.pending == 1


class _Store:
    def query(self, sql, parameters=None):
        return QueryResult(["period", "rule", "scope", "scope_id", "threshold_pct"], [])

    def query_readonly(self, sql, parameters=None, *, own_sql=False):
        return self.query(sql, parameters)


def test_a_hanging_receiver_does_not_stall_the_evaluation_round(serve, monkeypatch):
    server = serve(drip_status_line)

    def run_sql(store, name, parameters):
        if "daily_spend" in name:
            return [
                {
                    "scope": "customer",
                    "scope_id": "acme",
                    "customer_id": "acme",
                    "spent_usd": Decimal("60"),
                    "calls": 3,
                }
            ]
        return []

    monkeypatch.setattr(ev, "refresh_usage_rollup", lambda store, **options: 0)
    monkeypatch.setattr(ev, "run_sql", run_sql)
    sink = WebhookSink(server.url, timeout=DEADLINE, attempts=3)
    evaluator = ev.BudgetEvaluator(
        _Store(), BudgetConfig(daily_spend_usd=Decimal(50)), sinks=[sink]
    )
    for hour in (12, 13):  # an alert fired (send), then a round with only a retry
        started = time.monotonic()
        evaluator.evaluate(datetime(2026, 11, 22, hour, tzinfo=timezone.utc))
        assert time.monotonic() - started < DEADLINE + SLACK
        assert evaluator.decision("acme")["action"] == "block"
    assert sink.pending == 1  # still waiting for a receiver that answers


# -- redirects and big answers ---------------------------------------------------------------


def redirect(request, server, body):
    request.send_response(302)
    request.send_header("Location", f"http://127.0.0.1:{server.port}/internal-admin")
    request.send_header("Content-Length", "0")
    request.end_headers()


def test_a_redirect_is_not_followed_and_is_a_failed_delivery(serve, caplog):
    server = serve(redirect)
    metrics = Metrics()
    sink = WebhookSink(server.url, timeout=5, attempts=3, metrics=metrics)
    with caplog.at_level(logging.WARNING, logger="llm_margin.budgets"):
        sink.send([alert("c1")], NOW)
    assert server.requests == [("POST", "/hook")]  # no GET to the redirect target, no retry
    assert sink.pending == 1 and metrics.get("alert_webhook_failures") == 1
    reasons = [r.getMessage() for r in caplog.records if "redirect" in r.getMessage()]
    assert len(reasons) == 1 and "302" in reasons[0] and "/internal-admin" in reasons[0]


def huge_answer(request, server, body):
    """Announces 1 MiB, sends 64 KiB, then nothing until the server stops."""
    server.bodies.append(json.loads(body))
    request.send_response(200)
    request.send_header("Content-Length", str(1024 * 1024))
    request.end_headers()
    request.wfile.write(b"x" * 64 * 1024)
    request.wfile.flush()
    server.stopping.wait(30)


def test_at_most_64_kib_of_the_answer_is_read(serve):
    server = serve(huge_answer)
    sink = WebhookSink(server.url, timeout=20, attempts=1)
    started = time.monotonic()
    sink.send([alert("c1")], NOW)
    # Reading the whole announced body would wait for the deadline (20 s) and fail.
    assert time.monotonic() - started < SLACK
    assert sink.pending == 0 and len(server.bodies) == 1


def test_an_https_receiver_that_never_finishes_the_handshake_fails_at_the_deadline():
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    try:
        metrics = Metrics()
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/hook"
        sink = WebhookSink(url, timeout=DEADLINE, attempts=3, metrics=metrics)
        started = time.monotonic()
        sink.send([alert("c1")], NOW)
        assert time.monotonic() - started < DEADLINE + SLACK
        assert sink.pending == 1 and metrics.get("alert_webhook_failures") == 1
    finally:
        for sock in accepted:
            sock.close()
        listener.close()
