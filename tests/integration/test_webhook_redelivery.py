"""A webhook receiver that is down delays alerts, it does not lose them: undelivered alerts are
kept (bounded, oldest dropped and counted) and sent in order once it answers again."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from llm_margin.processor.budgets.sinks import WebhookSink
from llm_margin.processor.budgets.thresholds import Alert
from llm_margin.processor.metrics import Metrics

from tests.conftest import WebhookReceiver, free_port

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)


def alert(n: int) -> Alert:
    return Alert(
        "allowance_used", "warning", "customer", f"c{n}", f"c{n}", "2026-11", Decimal(50),
        Decimal(10), Decimal(20), "50% used", f"customer c{n} has used 50%",
    )  # fmt: skip


def test_alerts_wait_for_the_receiver_and_arrive_in_order():
    port = free_port()
    metrics = Metrics()
    sink = WebhookSink(f"http://127.0.0.1:{port}/hook", timeout=5, attempts=1, metrics=metrics)
    sink.send([alert(1), alert(2)], NOW)  # nobody listening
    sink.send([alert(3)], NOW)
    assert sink.pending == 3 and metrics.get("alert_webhook_failures") == 2
    receiver = WebhookReceiver(port)
    try:
        sink.retry_pending()
        assert [b["llm_margin"]["scope_id"] for b in receiver.bodies] == ["c1", "c2", "c3"]
        assert sink.pending == 0
        sink.send([alert(4)], NOW)  # delivered at once now
        assert [b["llm_margin"]["scope_id"] for b in receiver.bodies][-1] == "c4"
    finally:
        receiver.stop()


def test_pending_alerts_are_bounded_and_drops_counted():
    metrics = Metrics()
    sink = WebhookSink(
        f"http://127.0.0.1:{free_port()}/hook", timeout=5, attempts=1, metrics=metrics,
        max_pending=2,
    )  # fmt: skip
    sink.send([alert(1), alert(2), alert(3)], NOW)
    assert sink.pending == 2 and metrics.get("alert_webhook_dropped") == 1


@pytest.mark.parametrize("status", [400, 413, 422])
def test_an_alert_the_receiver_refuses_for_good_does_not_hold_back_the_rest(status):
    """Slack answers 400 invalid_payload (413/422 likewise) to a payload it will never take:
    sending it again gets the same answer, so it is dropped and counted, and the alerts after
    it are delivered instead of waiting behind it until the queue overflows."""
    metrics = Metrics()
    receiver = WebhookReceiver(
        refuse=lambda b: status if b["llm_margin"]["scope_id"] == "c1" else 0
    )
    try:
        sink = WebhookSink(receiver.url, timeout=5, attempts=3, metrics=metrics)
        sink.send([alert(1), alert(2)], NOW)
        sink.send([alert(3)], NOW)
        assert [b["llm_margin"]["scope_id"] for b in receiver.bodies] == ["c2", "c3"]
        assert sink.pending == 0
        assert metrics.get("alert_webhook_rejected") == 1
        assert metrics.get("alert_webhook_failures") == 0
    finally:
        receiver.stop()


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500, 503])
def test_an_alert_refused_for_the_endpoint_or_the_moment_is_kept(status):
    """A wrong or revoked URL (401/403/404), rate limiting and server errors say nothing about
    the alert: it is kept, first in line, for the next round."""
    metrics = Metrics()
    receiver = WebhookReceiver(refuse=lambda b: status)
    try:
        sink = WebhookSink(receiver.url, timeout=5, attempts=1, metrics=metrics)
        sink.send([alert(1), alert(2)], NOW)
        assert sink.pending == 2 and metrics.get("alert_webhook_rejected") == 0
        assert metrics.get("alert_webhook_failures") == 1
    finally:
        receiver.stop()


def test_an_unreadable_pending_file_is_set_aside_and_delivery_goes_on(tmp_path):
    state = tmp_path / "webhook-pending.json"
    state.write_text('{"not": "a list"')
    metrics = Metrics()
    receiver = WebhookReceiver()
    try:
        sink = WebhookSink(
            receiver.url, timeout=5, attempts=1, metrics=metrics, state_file=str(state)
        )
        assert sink.pending == 0
        assert (tmp_path / "webhook-pending.json.bad").read_text() == '{"not": "a list"'
        sink.send([alert(1)], NOW)
        assert [b["llm_margin"]["scope_id"] for b in receiver.bodies] == ["c1"]
        assert not state.exists()  # nothing waiting: no file
    finally:
        receiver.stop()


def test_pending_alerts_kept_in_the_file_stay_bounded_and_in_order(tmp_path):
    state = str(tmp_path / "webhook-pending.json")
    port = free_port()
    dead = f"http://127.0.0.1:{port}/hook"  # nobody listening yet
    metrics = Metrics()
    first = WebhookSink(dead, timeout=5, attempts=1, metrics=metrics, state_file=state)
    first.send([alert(1), alert(2), alert(3)], NOW)
    assert first.pending == 3
    # restarted with a smaller bound: the oldest is dropped, counted
    again = WebhookSink(
        dead, timeout=5, attempts=1, metrics=metrics, max_pending=2, state_file=state
    )
    assert again.pending == 2 and metrics.get("alert_webhook_dropped") == 1
    receiver = WebhookReceiver(port)
    try:
        again.retry_pending()
        assert [b["llm_margin"]["scope_id"] for b in receiver.bodies] == ["c2", "c3"]
    finally:
        receiver.stop()


@pytest.mark.parametrize(
    "content",
    [
        b'["{\\"text\\": \\"cut sh',  # truncated
        b"\xff\xfe not text",
        b'{"pending": []}',  # another shape
        b'["\\ud800"]',  # a string no payload can be (a lone surrogate)
        b"[" * 100_000,  # nested past the parser's recursion limit
    ],
)
def test_an_unreadable_pending_file_never_stops_the_start_and_is_counted(tmp_path, content):
    """Whatever the file holds, the processor starts (the sink is built in serve's start-up):
    the file is set aside as .bad for a person to read, logged, and counted."""
    state = tmp_path / "webhook-pending.json"
    state.write_bytes(content)
    metrics = Metrics()
    sink = WebhookSink(
        f"http://127.0.0.1:{free_port()}/hook", metrics=metrics, state_file=str(state)
    )
    assert sink.pending == 0 and not state.exists()
    assert (tmp_path / "webhook-pending.json.bad").read_bytes() == content
    assert metrics.get("alert_webhook_state_errors") == 1


def test_a_failed_write_of_the_pending_file_is_tried_again_next_round(tmp_path):
    """The file could not be written when the alert came (disk full, a read-only moment): it
    is written at the next round, though nothing was delivered since, so a restart after the
    disk recovered does not lose the alert."""
    state = tmp_path / "webhook-pending.json"
    (tmp_path / "webhook-pending.json.tmp").mkdir()  # the write fails: a directory in its way
    dead = f"http://127.0.0.1:{free_port()}/hook"
    metrics = Metrics()
    sink = WebhookSink(dead, timeout=5, attempts=1, metrics=metrics, state_file=str(state))
    sink.send([alert(1)], NOW)
    assert sink.pending == 1 and metrics.get("alert_webhook_state_errors") == 2
    (tmp_path / "webhook-pending.json.tmp").rmdir()
    sink.retry_pending()  # the receiver is still down: nothing changed but the disk
    restarted = WebhookSink(dead, timeout=5, attempts=1, state_file=str(state))
    assert restarted.pending == 1
