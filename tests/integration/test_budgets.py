"""Budgets end to end: real OTLP spans into a real processor drive a customer through 50%, 80%
of its AI allowance and its daily hard cap; alerts reach the log, a webhook (a real HTTP
server on loopback) and the llm_alerts table, each once; the decision endpoint and the app-side
client follow (allow -> degrade -> block)."""

from __future__ import annotations

import json
import logging
import socket
import threading
from dataclasses import replace
from decimal import Decimal

import genai_prices
import pytest
from llm_margin import budget as app_budget
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.conftest import WebhookReceiver, budget_processor_with, free_port, wait_until

pytestmark = pytest.mark.integration

ALLOWANCE = Decimal("19.8")  # pro: 99 USD at an 80% target margin
DAILY_CAP = "18"


@pytest.fixture
def webhook():
    receiver = WebhookReceiver()
    try:
        yield receiver.url, receiver.bodies
    finally:
        receiver.stop()


@pytest.fixture
def budget_processor(tmp_path, webhook):
    with budget_processor_with(
        tmp_path,
        f"""
plans:
  pro: {{monthly_price_usd: "99", target_gross_margin_pct: 80}}
customers:
  acme: {{plan: pro, workspaces: [ws_a]}}
  globex: {{plan: pro}}
budgets:
  interval_seconds: 3600   # the test drives evaluation itself
  soft_alert_pct: [50, 80]
  degrade_at_pct: 80
  daily_spend_usd: "{DAILY_CAP}"
  max_attempts_per_task: 4
  webhook_url: {webhook[0]}
""",
    ) as proc:
        yield proc


def cost_of(input_tokens: int) -> Decimal:
    price = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=input_tokens, output_tokens=0),
        "gpt-4o",
        provider_id="openai",
    )
    return Decimal(price.total_price)


def spend(
    proc,
    input_tokens: int,
    sent: list[int],
    task_id: str = "",
    *,
    customer: str = "acme",
    workspace: str = "ws_a",
    plan: str = "pro",
) -> None:
    """One gpt-4o call of ``customer`` (acme by default), over real OTLP/HTTP; waits until it
    is stored."""
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{proc.http_url}/v1/traces"))
    )
    attributes = {
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": 0,
        "customer.id": customer,
        "workspace.id": workspace,
    }
    if plan:
        attributes["plan"] = plan
    if task_id:
        attributes["task.id"] = task_id
    with provider.get_tracer("t").start_as_current_span("chat gpt-4o", attributes=attributes):
        pass
    provider.shutdown()
    sent.append(input_tokens)
    wait_until(lambda: proc.metrics.get("stored_calls") >= len(sent), message="stored")


def fired(alerts, rule, scope="customer"):
    return sorted(a.threshold_pct for a in alerts if a.rule == rule and a.scope == scope)


def test_customer_through_50_80_and_cap(budget_processor, webhook, caplog):
    proc = budget_processor
    url, received = webhook
    sent: list[int] = []
    client = app_budget.BudgetClient(
        app_budget.BudgetSettings(
            url=proc.http_url, ttl_seconds=0, degrade_models={"gpt-4o": "gpt-4o-mini"}
        )
    )
    assert proc.budgets.evaluate() == []
    assert client.choose_model("gpt-4o", "acme", "ws_a") == "gpt-4o"

    # 50%: ~10 USD of gpt-4o input.
    spend(proc, 4_000_000, sent)
    assert cost_of(4_000_000) >= ALLOWANCE / 2 > cost_of(3_000_000)
    with caplog.at_level(logging.WARNING, logger="llm_margin.budgets"):
        first = proc.budgets.evaluate()
    assert fired(first, "allowance_used") == [Decimal(50)]
    assert fired(first, "allowance_used", "workspace") == [Decimal(50)]
    assert fired(first, "allowance_used", "plan") == []  # plan allowance is two customers'
    assert any("50" in r.getMessage() and "acme" in r.getMessage() for r in caplog.records)
    assert proc.budgets.evaluate() == []  # once per threshold per period
    assert client.choose_model("gpt-4o", "acme") == "gpt-4o"

    # 80%: +6 USD -> 16 USD of 19.8.
    spend(proc, 2_400_000, sent)
    second = proc.budgets.evaluate()
    assert fired(second, "allowance_used") == [Decimal(80)]
    assert not [a for a in second if a.rule == "daily_spend"]
    # Soft cap: the app switches to the cheaper model.
    assert client.choose_model("gpt-4o", "acme", "ws_a") == "gpt-4o-mini"
    assert client.choose_model("gpt-4o", "globex") == "gpt-4o"

    # Daily hard cap: +2.5 USD -> 18.5 USD today >= 18.
    spend(proc, 1_000_000, sent)
    third = proc.budgets.evaluate()
    caps = [a for a in third if a.rule == "daily_spend" and a.scope == "customer"]
    assert len(caps) == 1 and caps[0].severity == "critical"
    assert caps[0].spent_usd == sum(cost_of(t) for t in sent)
    with pytest.raises(app_budget.BudgetExceeded, match="daily spend cap"):
        client.choose_model("gpt-4o", "acme", "ws_a")
    assert proc.budgets.evaluate() == []

    # Every alert reached the webhook (Slack shape) and the table, exactly once.
    everything = first + second + third
    wait_until(lambda: len(received) == len(everything), message="webhook deliveries")
    assert all(isinstance(p["text"], str) and p["blocks"] for p in received)
    assert {p["llm_margin"]["rule"] for p in received} >= {"allowance_used", "daily_spend"}
    rows = proc.store.query(
        "SELECT rule, scope, scope_id, threshold_pct FROM llm_alerts FINAL"
    ).rows
    assert len(rows) == len(everything)
    assert ("allowance_used", "customer", "acme", Decimal(80)) in {
        (r[0], r[1], r[2], Decimal(r[3])) for r in rows
    }


def test_alerts_not_refired_after_restart(budget_processor, webhook):
    """The llm_alerts table is the evaluator's memory: a new evaluator fires nothing again."""
    from llm_margin.processor.budgets.evaluator import BudgetEvaluator

    proc = budget_processor
    spend(proc, 4_000_000, [])
    assert fired(proc.budgets.evaluate(), "allowance_used") == [Decimal(50)]
    again = BudgetEvaluator(proc.store, proc.budgets.config, sinks=[])
    assert again.evaluate() == []


def test_decision_endpoint_needs_customer_and_auth(budget_processor):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{budget_processor.http_url}/api/budget/decision", timeout=5)
    assert info.value.code == 400
    with urllib.request.urlopen(
        f"{budget_processor.http_url}/api/budget/decision?customer_id=nobody", timeout=5
    ) as response:
        assert json.loads(response.read())["action"] == "allow"


def test_app_side_fails_open_and_closed():
    dead = f"http://127.0.0.1:{free_port()}"
    open_client = app_budget.BudgetClient(app_budget.BudgetSettings(url=dead, timeout_seconds=0.2))
    assert open_client.choose_model("gpt-4o", "acme") == "gpt-4o"
    assert open_client.failures == 1
    closed = app_budget.BudgetClient(
        app_budget.BudgetSettings(url=dead, timeout_seconds=0.2, fail_open=False)
    )
    with pytest.raises(app_budget.BudgetExceeded, match="unavailable"):
        closed.choose_model("gpt-4o", "acme")


def _answering(payload: bytes) -> tuple[str, socket.socket]:
    """A loopback server that answers every request with these raw bytes, then closes."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(payload)

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}", server


@pytest.mark.parametrize(
    "payload",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",  # not HTTP: something else on the port
        b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"action":',  # cut short
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n[1,2]",
        b'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"x"',
    ],
    ids=["not-http", "truncated", "json-list", "json-string"],
)
def test_app_side_odd_answers_fail_open_or_closed(payload):
    """Whatever the address answers, the client allows (fail open) or raises BudgetExceeded
    (fail closed): never another exception, which the wrappers would let through even when
    configured to fail closed."""
    url, server = _answering(payload)
    try:
        open_client = app_budget.BudgetClient(app_budget.BudgetSettings(url=url))
        assert open_client.choose_model("gpt-4o", "acme") == "gpt-4o"
        assert open_client.failures == 1
        closed = app_budget.BudgetClient(app_budget.BudgetSettings(url=url, fail_open=False))
        with pytest.raises(app_budget.BudgetExceeded, match="unavailable"):
            closed.choose_model("gpt-4o", "acme")
    finally:
        server.close()


def test_decision_endpoint_requires_the_token(tmp_path):
    """With auth configured, the decision route is behind the bearer token like the rest."""
    import urllib.error
    import urllib.request

    from llm_margin.processor.config import ServeConfig
    from llm_margin.processor.server import Processor

    config = ServeConfig(
        data_dir=str(tmp_path / "data"),
        otlp_grpc_port=free_port(),
        otlp_http_port=free_port(),
        auth_token="s3cret-token",
    ).validate()
    proc = Processor(config)
    proc.start()
    try:
        wait_until(lambda: proc.budgets.decision("-")["evaluated_at"], message="evaluated")
        url = f"{proc.http_url}/api/budget/decision?customer_id=acme"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url, timeout=5)
        assert info.value.code == 401
        client = app_budget.BudgetClient(
            app_budget.BudgetSettings(url=proc.http_url, token="s3cret-token", fail_open=False)
        )
        assert client.choose_model("gpt-4o", "acme") == "gpt-4o"  # answered, not failed
        assert client.failures == 0
    finally:
        proc.stop()


def test_runaway_loop_hard_cap(budget_processor, webhook):
    """A task that keeps calling (an agent loop) trips the attempts cap once, as critical."""
    proc = budget_processor
    sent: list[int] = []
    for _ in range(3):
        spend(proc, 100, sent, task_id="loop-1")
    assert [a for a in proc.budgets.evaluate() if a.rule == "runaway_task"] == []
    spend(proc, 100, sent, task_id="loop-1")
    loops = [a for a in proc.budgets.evaluate() if a.rule == "runaway_task"]
    assert [(a.scope, a.scope_id, a.severity) for a in loops] == [("task", "loop-1", "critical")]
    assert "4 calls" in loops[0].message and loops[0].customer_id == "acme"
    # the app is told to stop the loop: the decision lists the task (its customer stays allowed)
    decision = proc.budgets.decision("acme")
    assert list(decision["blocked_tasks"]) == ["loop-1"]
    assert "runaway task loop-1" in decision["blocked_tasks"]["loop-1"]
    assert proc.budgets.decision("globex")["blocked_tasks"] == {}
    spend(proc, 100, sent, task_id="loop-1")
    assert [a for a in proc.budgets.evaluate() if a.rule == "runaway_task"] == []
    assert list(proc.budgets.decision("acme")["blocked_tasks"]) == ["loop-1"]  # still blocked


def test_no_decision_before_the_first_round_app_applies_its_fail_setting(tmp_path):
    """Until the processor has evaluated (a restart, a first round that takes seconds on a big
    store, or fails), the decision endpoint answers 503: the app's fail-open / fail-closed
    setting decides, not an 'allow' made from no data."""
    import urllib.error
    import urllib.request

    from llm_margin.processor.config import ServeConfig
    from llm_margin.processor.server import Processor

    config = ServeConfig(
        data_dir=str(tmp_path / "data"), otlp_grpc_port=free_port(), otlp_http_port=free_port()
    ).validate()
    proc = Processor(config)
    first_round = proc.budgets._evaluate_lock
    first_round.acquire()  # the first round is still running
    proc.start()
    try:
        url = f"{proc.http_url}/api/budget/decision?customer_id=acme"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url, timeout=5)
        assert info.value.code == 503
        settings = app_budget.BudgetSettings(url=proc.http_url, ttl_seconds=0)
        closed = app_budget.BudgetClient(replace(settings, fail_open=False))
        with pytest.raises(app_budget.BudgetExceeded, match="unavailable"):
            closed.choose_model("gpt-4o", "acme")
        opened = app_budget.BudgetClient(settings)
        assert opened.choose_model("gpt-4o", "acme") == "gpt-4o"
        assert opened.failures == 1
        first_round.release()
        wait_until(lambda: proc.budgets.decision("acme")["evaluated_at"], message="evaluated")
        assert closed.choose_model("gpt-4o", "acme") == "gpt-4o"  # answered now
    finally:
        if first_round.locked():
            first_round.release()
        proc.stop()


def test_no_decision_when_rounds_stopped_succeeding(tmp_path, monkeypatch):
    """Decisions from a round several intervals old (the store unavailable since) are not
    served as current: 503, and the app's fail setting decides."""
    import time

    from llm_margin.processor.budgets import evaluator as ev
    from llm_margin.processor.budgets.config import BudgetConfig
    from llm_margin.processor.storage import Store

    monkeypatch.setattr(ev, "STALE_GRACE_SECONDS", 30)  # a loaded machine's pause stays fresh
    monkeypatch.setattr(ev, "FIRST_ROUND_WAIT_SECONDS", 0)
    store = Store.open(data_dir=str(tmp_path / "data"))
    try:
        evaluator = ev.BudgetEvaluator(store, BudgetConfig(interval_seconds=0.1), sinks=[])
        assert evaluator.http_decision("customer_id=acme")[0] == 503
        evaluator.evaluate()
        assert evaluator.http_decision("customer_id=acme")[0] == 200
        monkeypatch.setattr(ev, "STALE_GRACE_SECONDS", 0)
        time.sleep(0.4)  # more than 3 intervals without a round
        assert evaluator.http_decision("customer_id=acme")[0] == 503
    finally:
        store.close()


def test_a_decision_asked_during_the_first_round_waits_for_it(tmp_path, monkeypatch):
    """An app started with its processor asks before the first round has finished: it gets
    that round's answer, not 503 (the round takes well under FIRST_ROUND_WAIT_SECONDS)."""
    import urllib.request

    from llm_margin.processor.budgets import evaluator
    from llm_margin.processor.config import ServeConfig
    from llm_margin.processor.server import Processor

    # 2 s by default: a loaded CI machine can take longer over a first round (without the
    # wait, the answer is 503 at once, whatever the round's length)
    monkeypatch.setattr(evaluator, "FIRST_ROUND_WAIT_SECONDS", 30.0)

    config = ServeConfig(
        data_dir=str(tmp_path / "data"), otlp_grpc_port=free_port(), otlp_http_port=free_port()
    ).validate()
    proc = Processor(config)
    first_round = proc.budgets._evaluate_lock
    first_round.acquire()  # the first round is still running
    proc.start()
    try:
        threading.Timer(0.3, first_round.release).start()
        url = f"{proc.http_url}/api/budget/decision?customer_id=acme"
        with urllib.request.urlopen(url, timeout=40) as response:
            assert response.status == 200
            body = json.loads(response.read())
            assert body["action"] == "allow" and body["evaluated_at"]
    finally:
        proc.stop()


def test_alerts_waiting_for_the_webhook_are_delivered_after_a_restart(tmp_path):
    """The webhook is down when 50% fires; the processor restarts before it is back. The alert
    is recorded in llm_alerts (so it never fires again): held only in memory, it was lost."""
    port = free_port()
    billing = f"""
plans:
  pro: {{monthly_price_usd: "99", target_gross_margin_pct: 80}}
customers:
  acme: {{plan: pro, workspaces: [ws_a]}}
budgets:
  interval_seconds: 3600   # the test drives evaluation itself
  soft_alert_pct: [50]
  webhook_url: http://127.0.0.1:{port}/hook
"""
    with budget_processor_with(tmp_path, billing) as proc:
        spend(proc, 4_000_000, [])
        first = proc.budgets.evaluate()
        assert fired(first, "allowance_used") == [Decimal(50)]
        assert proc.metrics.get("alert_webhook_failures") >= 1  # nobody listening
    receiver = WebhookReceiver(port)
    try:
        with budget_processor_with(tmp_path, billing) as proc:
            assert proc.budgets.evaluate() == []  # on record: not fired again
            wait_until(lambda: len(receiver.bodies) >= 3, message="alerts delivered")
            scopes = [body["llm_margin"]["scope"] for body in receiver.bodies]
            assert scopes == [alert.scope for alert in first]  # each once, in order
            assert all(body["llm_margin"]["threshold_pct"] == "50" for body in receiver.bodies)
    finally:
        receiver.stop()
    assert not list((tmp_path / "data").rglob("webhook-pending.json"))  # delivered: none left
