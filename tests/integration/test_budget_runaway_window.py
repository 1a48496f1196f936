"""The runaway caps count a task's calls of the last 24 hours: a loop running past midnight UTC
stays blocked, instead of starting from zero with the new day. Real evaluator, real embedded
store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from llm_margin.processor.budgets.config import BudgetConfig
from llm_margin.processor.budgets.evaluator import BudgetEvaluator
from llm_margin.processor.records import CallRecord

from tests.conftest import store_with_billing

pytestmark = pytest.mark.integration

BILLING = {
    "plans": {"pro": {"monthly_price_usd": "100", "included_ai_usd": "100"}},
    "customers": {"acme": {"plan": "pro"}},
}
MIDNIGHT = datetime(2026, 11, 16, tzinfo=timezone.utc)


def loop_call(i: int, ts: datetime, task: str = "loop-1") -> CallRecord:
    return CallRecord(
        ts=ts, trace_id=f"{i:032x}", span_id=f"{i:016x}", task_id=task, customer_id="acme",
        plan="pro", cost_usd=Decimal("0.01"), priced=True, version=1,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("now", "blocked"),
    [
        (MIDNIGHT + timedelta(minutes=10), True),  # 3 calls before midnight, 2 after: 5
        (MIDNIGHT + timedelta(hours=23, minutes=49), True),  # all 5 within the last 24 hours
        (MIDNIGHT + timedelta(hours=23, minutes=56), False),  # 3 calls older than 24 hours
    ],
)
def test_a_loop_running_past_midnight_stays_capped(tmp_path, now, blocked):
    calls = [loop_call(i, MIDNIGHT - timedelta(minutes=10 - i)) for i in range(3)]
    calls += [loop_call(i, MIDNIGHT + timedelta(minutes=i)) for i in range(3, 5)]
    calls.append(loop_call(9, MIDNIGHT - timedelta(hours=30), task="old-task"))  # 1 call
    with store_with_billing(tmp_path, BILLING) as store:
        store.insert_calls(calls)
        evaluator = BudgetEvaluator(
            store, BudgetConfig(max_attempts_per_task=5, min_projection_hours=1e6), sinks=[]
        )
        alerts = evaluator.evaluate(now)
        decision = evaluator.decision("acme")
    runaway = [a.scope_id for a in alerts if a.rule == "runaway_task"]
    assert runaway == (["loop-1"] if blocked else [])
    assert ("loop-1" in decision.get("blocked_tasks", {})) is blocked
