"""A workspace is (customer, workspace): apps name workspaces "default" or "main" for every
customer, so one customer's workspace reaching a cap must not block, degrade or silence another
customer's workspace of the same name. Real evaluators on a real embedded store (and two on one
store, as replicas), and the decision endpoint of a real processor over HTTP."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import genai_prices
import pytest
from llm_margin.processor.budgets import thresholds
from llm_margin.processor.budgets.config import BudgetConfig
from llm_margin.processor.budgets.evaluator import BudgetEvaluator
from llm_margin.processor.budgets.sinks import TableSink
from llm_margin.processor.records import CallRecord

from tests.conftest import budget_processor_with, store_with_billing
from tests.integration.test_budgets import spend as spend_as

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 15, 12, tzinfo=timezone.utc)
BILLING = {
    "plans": {"pro": {"monthly_price_usd": "100", "included_ai_usd": "100"}},
    "customers": {"acme": {"plan": "pro"}, "globex": {"plan": "pro"}},
}
# Projections off: only the alerts each test means to trip.
RULES = BudgetConfig(
    soft_alert_pct=(Decimal(50),),
    min_projection_hours=1e6,
    degrade_at_pct=None,
    workspace_daily_spend_usd=Decimal(10),
)


class Recorder:
    """A sink standing for the log and the webhook: what reached people."""

    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[thresholds.Alert] = []

    def send(self, alerts, fired_at) -> None:
        self.sent += alerts


def call(i: int, customer: str, cost: str, workspace: str = "default") -> CallRecord:
    return CallRecord(
        ts=datetime(2026, 11, 15, 1, i, tzinfo=timezone.utc),
        trace_id=f"{i:032x}",
        span_id=f"{i:016x}",
        task_id=f"t{i}",
        customer_id=customer,
        workspace_id=workspace,
        cost_usd=Decimal(cost),
        priced=True,
        version=1,
    )


@pytest.fixture
def store(tmp_path):
    with store_with_billing(tmp_path, BILLING) as store:
        yield store


def workspace_alerts(alerts) -> set[tuple]:
    return {(a.rule, a.customer_id, a.threshold_pct) for a in alerts if a.scope == "workspace"}


def stored_workspace_alerts(store) -> set[tuple]:
    rows = store.query(
        "SELECT rule, customer_id, threshold_pct FROM llm_alerts FINAL WHERE scope = 'workspace'"
    ).rows
    return {(r[0], r[1], Decimal(r[2])) for r in rows}


def test_daily_cap_blocks_only_the_customer_whose_workspace_reached_it(store):
    evaluator = BudgetEvaluator(store, RULES, sinks=[TableSink(store)])
    store.insert_calls([call(1, "acme", "12"), call(2, "globex", "6")])
    fired = evaluator.evaluate(NOW)
    # globex's "default" spent 6 of its own 10: not acme's 12 + its 6
    assert workspace_alerts(fired) == {("daily_spend", "acme", Decimal(100))}
    (cap,) = [a for a in fired if a.rule == "daily_spend"]
    assert cap.spent_usd == Decimal(12)
    assert "workspace default (customer acme)" in cap.message
    assert evaluator.decision("acme", "default")["action"] == "block"
    globex = evaluator.decision("globex", "default")
    assert globex["action"] == "allow" and globex["reasons"] == []

    # globex's own "default" crosses later the same day: its alert fires (it is not acme's),
    # and now it is blocked too.
    store.insert_calls([call(3, "globex", "5")])
    fired = evaluator.evaluate(NOW)
    assert workspace_alerts(fired) == {("daily_spend", "globex", Decimal(100))}
    assert evaluator.decision("globex", "default")["action"] == "block"
    assert stored_workspace_alerts(store) == {
        ("daily_spend", "acme", Decimal(100)),
        ("daily_spend", "globex", Decimal(100)),
    }
    # Both are on record: a restarted processor fires neither again.
    assert BudgetEvaluator(store, RULES, sinks=[]).evaluate(NOW) == []


def test_allowance_alert_of_one_customers_workspace_does_not_silence_anothers(store):
    rules = replace(RULES, workspace_daily_spend_usd=None)
    evaluator = BudgetEvaluator(store, rules, sinks=[TableSink(store)])
    store.insert_calls([call(1, "acme", "55"), call(2, "globex", "9")])
    fired = evaluator.evaluate(NOW)
    assert workspace_alerts(fired) == {("allowance_used", "acme", Decimal(50))}
    (ws,) = [a for a in fired if a.scope == "workspace"]
    assert "workspace default (customer acme)" in ws.message

    # globex's own "default" crosses 50% of globex's allowance: its alert is not acme's
    store.insert_calls([call(3, "globex", "46")])
    fired = evaluator.evaluate(NOW)
    assert workspace_alerts(fired) == {("allowance_used", "globex", Decimal(50))}
    assert stored_workspace_alerts(store) == {
        ("allowance_used", "acme", Decimal(50)),
        ("allowance_used", "globex", Decimal(50)),
    }
    assert BudgetEvaluator(store, rules, sinks=[]).evaluate(NOW) == []


def test_block_at_pct_on_a_workspace_is_that_customers(store):
    """Each customer's "default" gets its own allowance decision (a guard for the table's
    keys: the customer's own decision is at least as strict, so a mix-up here stays hidden)."""
    rules = BudgetConfig(soft_alert_pct=(Decimal(50),), min_projection_hours=1e6,
                         degrade_at_pct=Decimal(5), block_at_pct=Decimal(50))  # fmt: skip
    evaluator = BudgetEvaluator(store, rules, sinks=[])
    store.insert_calls([call(1, "acme", "60"), call(2, "globex", "1")])
    evaluator.evaluate(NOW)
    assert evaluator.decision("acme", "default")["action"] == "block"
    assert evaluator.decision("globex", "default")["action"] == "allow"
    store.insert_calls([call(3, "globex", "6")])
    evaluator.evaluate(NOW)
    assert evaluator.decision("globex", "default")["action"] == "degrade"
    assert evaluator.decision("acme", "default")["action"] == "block"


def test_replicas_send_each_customers_workspace_alert_once(store):
    seen = [Recorder(), Recorder()]
    replicas = [BudgetEvaluator(store, RULES, sinks=[TableSink(store), r]) for r in seen]
    store.insert_calls([call(1, "acme", "11")])
    assert workspace_alerts(replicas[0].evaluate(NOW)) == {("daily_spend", "acme", Decimal(100))}
    assert replicas[1].evaluate(NOW) == []
    store.insert_calls([call(2, "globex", "11")])
    # The second replica reaches globex's alert first; the first must not send it again.
    assert workspace_alerts(replicas[1].evaluate(NOW)) == {("daily_spend", "globex", Decimal(100))}
    assert replicas[0].evaluate(NOW) == []
    sent = [a for r in seen for a in r.sent if a.scope == "workspace"]
    assert sorted(a.customer_id for a in sent) == ["acme", "globex"]


def test_alerts_recorded_before_the_upgrade_do_not_fire_again(store):
    """Rows an older release wrote name the workspace alone in scope_id (the customer in
    customer_id): they still count as fired for that customer's workspace, and only for it."""
    old = [
        (NOW, "2026-11-15", "daily_spend", "critical", "workspace", "default", "acme",
         Decimal(100), Decimal(12), Decimal(10), "1 call today", "workspace default ...", 1),
        (NOW, "2026-11", "allowance_used", "warning", "workspace", "acme/x", "acme",
         Decimal(50), Decimal(60), Decimal(100), "60% used", "workspace acme/x ...", 1),
    ]  # fmt: skip
    store.insert_rows("llm_alerts", [(r[0].replace(tzinfo=None), *r[1:]) for r in old],
                      ("fired_at", "period", "rule", "severity", "scope", "scope_id",
                       "customer_id", "threshold_pct", "spent_usd", "limit_usd", "observed",
                       "message", "version"))  # fmt: skip
    store.insert_calls(
        [call(1, "acme", "12"), call(2, "globex", "11"), call(3, "acme", "60", "acme/x")]
    )
    fired = BudgetEvaluator(store, RULES, sinks=[TableSink(store)]).evaluate(NOW)
    ws = thresholds.workspace_scope_id
    assert {(a.rule, a.scope_id) for a in fired if a.scope == "workspace"} == {
        ("daily_spend", ws("globex", "default")),  # globex's own: never fired before
        ("daily_spend", ws("acme", "acme/x")),  # today's, not last month's allowance row
    }


# -- the decision endpoint of a real processor, over HTTP ---------------------------------------


@pytest.fixture
def processor(tmp_path):
    with budget_processor_with(
        tmp_path,
        """
plans:
  pro: {monthly_price_usd: "1000", included_ai_usd: "1000"}
customers:
  acme: {plan: pro}
  globex: {plan: pro}
budgets:
  interval_seconds: 3600   # the test drives evaluation itself
  workspace_daily_spend_usd: "5"
""",
    ) as proc:
        yield proc


def spend(proc, customer: str, input_tokens: int, sent: list[int]) -> None:
    """One gpt-4o call of ``customer`` in its workspace "default", over real OTLP/HTTP."""
    spend_as(proc, input_tokens, sent, customer=customer, workspace="default", plan="")


def ask(proc, customer: str) -> dict:
    query = urllib.parse.urlencode({"customer_id": customer, "workspace_id": "default"})
    with urllib.request.urlopen(f"{proc.http_url}/api/budget/decision?{query}", timeout=5) as r:
        return json.loads(r.read())


def test_decision_endpoint_keeps_same_named_workspaces_apart(processor):
    price = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=2_400_000, output_tokens=0), "gpt-4o", provider_id="openai"
    )
    assert Decimal(price.total_price) >= 5  # 2.4M tokens of gpt-4o input: over the cap of 5
    sent: list[int] = []
    spend(processor, "acme", 2_400_000, sent)
    spend(processor, "globex", 400_000, sent)
    fired = processor.budgets.evaluate()
    assert workspace_alerts(fired) == {("daily_spend", "acme", Decimal(100))}
    acme, globex = ask(processor, "acme"), ask(processor, "globex")
    assert acme["action"] == "block" and acme["workspace_id"] == "default"
    assert any("daily spend cap 5 USD" in r for r in acme["reasons"])
    assert globex["action"] == "allow" and globex["reasons"] == []

    spend(processor, "globex", 2_000_000, sent)
    fired = processor.budgets.evaluate()
    assert workspace_alerts(fired) == {("daily_spend", "globex", Decimal(100))}
    assert ask(processor, "globex")["action"] == "block"
