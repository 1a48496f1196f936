"""The AI allowance budget_usage.sql measures against: the share of a customer's revenue its
plan's target margin leaves for AI cost, with the customer's custom price where it has one."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from llm_margin.processor.budgets.config import BudgetConfig
from llm_margin.processor.budgets.evaluator import BudgetEvaluator
from llm_margin.processor.records import CallRecord
from llm_margin.processor.reports.views import run_sql

from tests.conftest import store_with_billing

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 15, tzinfo=timezone.utc)
BILLING = {
    "plans": {
        # Negotiated-only plan: no list price, every customer on it has a custom price.
        "enterprise": {"monthly_price_usd": "0", "target_gross_margin_pct": 75},
        "pro": {"monthly_price_usd": "299", "included_ai_usd": "100"},
        "free": {"monthly_price_usd": "0"},
    },
    "customers": {
        "big": {"plan": "enterprise", "custom_price_usd": "1000"},
        "odd": {"plan": "pro", "custom_price_usd": "99.99"},
        "listed": {"plan": "pro"},
        "freeloader": {"plan": "free"},
    },
}


def call(i: int, customer: str, cost: str) -> CallRecord:
    return CallRecord(
        ts=datetime(2026, 11, 2, i, tzinfo=timezone.utc),
        trace_id=f"{i:032x}",
        span_id=f"{i:016x}",
        task_id=f"t{i}",
        customer_id=customer,
        plan="",
        cost_usd=Decimal(cost),
        priced=True,
        version=1,
    )


@pytest.fixture
def store(tmp_path):
    with store_with_billing(tmp_path, BILLING) as store:
        yield store


def test_allowance_per_customer_from_price_custom_price_and_target_margin(store):
    store.insert_calls([call(1, "big", "150"), call(2, "freeloader", "3")])
    rows = run_sql(store, "queries/budget_usage.sql", {"until": NOW})
    allowance = {r["scope_id"]: r["allowance_usd"] for r in rows if r["scope"] == "customer"}
    assert allowance == {
        # a custom price on a plan without a list price: 1000 x (100 - 75)%, as its revenue
        # in `report customers` is 1000 (it used to be 0: no alert ever, whatever it spent)
        "big": Decimal(250),
        # the plan's allowance scaled by custom / list price: 100 x 99.99 / 299, 6 decimals
        "odd": Decimal("33.441471"),
        "listed": Decimal(100),
        "freeloader": Decimal(0),  # no revenue, no allowance: no allowance rules
    }
    plans = {r["scope_id"]: r["allowance_usd"] for r in rows if r["scope"] == "plan"}
    assert plans == {"enterprise": Decimal(250), "pro": Decimal("133.441471"), "free": 0}

    alerts = BudgetEvaluator(store, BudgetConfig(), sinks=[]).evaluate(NOW)
    assert {(a.rule, a.scope, a.scope_id, a.threshold_pct) for a in alerts} == {
        ("allowance_used", "customer", "big", Decimal(50)),  # 150 of 250
        ("allowance_used", "plan", "enterprise", Decimal(50)),
        # 150 x 30 days / 14 days = 321.43 projected: over 80% of 250
        ("allowance_projected", "customer", "big", Decimal(50)),
        ("allowance_projected", "customer", "big", Decimal(80)),
        ("allowance_projected", "plan", "enterprise", Decimal(50)),
        ("allowance_projected", "plan", "enterprise", Decimal(80)),
    }
