"""Report numbers against hand computations from the definitions (docs/reports-budgets-billing.md):
spend growth, the plan a customer counts under, margin status at its thresholds, and the plan
of an invoice line. Each dataset is small enough to check by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from llm_margin.processor.billing import parse_billing, store_billing
from llm_margin.processor.records import CallRecord
from llm_margin.processor.reports.customers import customer_rows
from llm_margin.processor.reports.export import usage_lines
from llm_margin.processor.reports.rollup import refresh_usage_rollup
from llm_margin.processor.reports.views import VIEWS, view_rows
from llm_margin.processor.storage import Store

pytestmark = pytest.mark.integration

# November 2026: 30 days, so a customer's revenue is exactly its monthly price.
SINCE = datetime(2026, 11, 1, tzinfo=timezone.utc)
UNTIL = datetime(2026, 12, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)

BILLING = {
    "plans": {
        "pro": {"monthly_price_usd": "100", "target_gross_margin_pct": 80},
        "enterprise": {"monthly_price_usd": "1000", "target_gross_margin_pct": 75},
    },
    "customers": {
        "acme": {"plan": "pro"},
        "globex": {"plan": "pro"},
        "hooli": {"plan": "pro"},
        "umbrella": {"plan": "enterprise"},
    },
}


def _call(n: int, ts: datetime, customer: str, cost: str, **fields) -> CallRecord:
    defaults = {"route": "openai/gpt-4o", "provider": "openai", "request_model": "gpt-4o"}
    return CallRecord(
        ts=ts.replace(tzinfo=None),
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        task_id=f"t{n}",
        customer_id=customer,
        cost_usd=Decimal(cost),
        priced=True,
        latency_ms=100.0,
        version=1,
        **{**defaults, **fields},
    )


CALLS = [
    # Spend growth (runaway): October (the previous 30 days) against November.
    _call(1, SINCE - 10 * DAY, "acme", "5", workspace_id="ws_shrink"),
    _call(2, SINCE + 3 * DAY, "acme", "1", workspace_id="ws_shrink"),  # 5 -> 1: -80%
    _call(3, SINCE - 10 * DAY, "acme", "1", workspace_id="ws_grow"),
    _call(4, SINCE + 3 * DAY, "acme", "12", workspace_id="ws_grow"),  # 1 -> 12: +1100%
    _call(5, SINCE - 10 * DAY, "acme", "0.5", workspace_id="ws_small"),
    _call(6, SINCE + 3 * DAY, "acme", "0.7", workspace_id="ws_small"),  # 0.5 -> 0.7: +40%
    # initech has no billing entry: its calls carried pro, then (the newest) no plan.
    _call(7, SINCE + 4 * DAY, "initech", "2", plan="pro"),
    _call(8, SINCE + 5 * DAY, "initech", "3"),
    # globex (pro, revenue 100, target 80%): cost 20.004, margin 79.996% (shown 80.00): thin.
    _call(9, SINCE + 6 * DAY, "globex", "20.004", plan="pro"),
    # hooli (pro, revenue 100): cost 100.004, margin -0.004% (shown 0.00): underwater.
    _call(10, SINCE + 6 * DAY, "hooli", "100.004", plan="pro"),
    # umbrella is billed on enterprise; its spans still say pro (stale baggage), or nothing.
    _call(11, SINCE + 7 * DAY, "umbrella", "4", plan="pro"),
    _call(12, SINCE + 8 * DAY, "umbrella", "6", provider="anthropic", route="anthropic/x"),
]


@pytest.fixture(scope="module", params=["raw", "rollup"])
def store(request, tmp_path_factory):
    store = Store.open(data_dir=str(tmp_path_factory.mktemp("semantics") / "data"))
    store_billing(store, *parse_billing(BILLING))
    store.insert_calls(CALLS)
    if request.param == "rollup":
        assert refresh_usage_rollup(store) > 0
    yield store
    store.close()


def test_spend_growth_is_the_change_over_the_previous_cost(store):
    rows = view_rows(store, VIEWS["runaway"], SINCE, UNTIL, limit=100)
    growth = {r["workspace_id"]: r for r in rows if r["customer_id"] == "acme"}
    assert growth["ws_shrink"]["previous_cost_usd"] == Decimal(5)
    assert growth["ws_shrink"]["spend_growth_pct"] == Decimal("-80")
    assert growth["ws_grow"]["spend_growth_pct"] == Decimal("1100")
    assert growth["ws_small"]["spend_growth_pct"] == Decimal("40")


def test_plans_count_a_customer_under_the_plan_the_customer_report_shows(store):
    customers = {r["customer_id"]: r for r in customer_rows(store, SINCE, UNTIL)}
    assert customers["initech"]["plan"] == "pro"
    plans = {r["plan"]: r for r in view_rows(store, VIEWS["plans"], SINCE, UNTIL)}
    assert "(no plan)" not in plans
    pro = plans["pro"]
    # acme 13.7 + globex 20.004 + hooli 100.004 + initech 5; revenue 3 x 100 (initech: none)
    assert (pro["customers"], pro["active_customers"], pro["calls"]) == (4, 4, 7)
    assert pro["cost_usd"] == Decimal("138.708")
    assert pro["revenue_usd"] == Decimal(300)
    assert pro["cost_per_active_customer_usd"] == Decimal("34.677")
    # Every customer's cost is in exactly one plan.
    assert sum(p["cost_usd"] for p in plans.values()) == sum(
        c["cost_usd"] for c in customers.values()
    )


def test_status_compares_the_exact_margin_with_the_target(store):
    rows = {r["customer_id"]: r for r in customer_rows(store, SINCE, UNTIL)}
    globex, hooli = rows["globex"], rows["hooli"]
    assert (globex["revenue_usd"], globex["margin_pct"]) == (Decimal(100), Decimal(80))
    assert globex["status"] == "thin"  # 79.996% < 80%
    assert hooli["margin_usd"] == Decimal("-0.004")
    assert hooli["status"] == "underwater"  # losing money, though 0.00% when rounded
    assert rows["umbrella"]["status"] == "healthy"  # 99% >= 75%


def test_export_lines_carry_the_customers_billing_plan(store):
    lines = usage_lines(store, "2026-11", Decimal(0))
    plans = {(line["customer_id"], line["provider"]): line["plan"] for line in lines}
    customers = {r["customer_id"]: r["plan"] for r in customer_rows(store, SINCE, UNTIL)}
    assert plans[("umbrella", "openai")] == plans[("umbrella", "anthropic")] == "enterprise"
    assert plans[("initech", "openai")] == "pro"
    for (customer, _), plan in plans.items():
        assert plan == customers[customer]
    total = sum((line["cost_usd"] for line in lines), Decimal(0))
    assert total == sum((r["cost_usd"] for r in customer_rows(store, SINCE, UNTIL)), Decimal(0))
