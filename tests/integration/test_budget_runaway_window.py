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


def test_a_capped_loop_is_alerted_once_not_again_at_midnight(tmp_path):
    """A loop trips the cap at 23:50 and the app blocks it: its calls stay in the 24-hour
    window past midnight (still blocked), but it is the same loop, so no second alert fires
    with the new day, from this processor or a restarted one. Once its calls have slid out of
    the window it is let through, and the same task looping again is alerted again."""
    calls = [loop_call(i, MIDNIGHT - timedelta(minutes=20 - i)) for i in range(5)]  # to 23:44
    with store_with_billing(tmp_path, BILLING) as store:
        store.insert_calls(calls)
        config = BudgetConfig(max_attempts_per_task=5, min_projection_hours=1e6)
        evaluator = BudgetEvaluator(store, config)  # llm_alerts remembers what fired
        fired = [a.scope_id for a in evaluator.evaluate(MIDNIGHT - timedelta(minutes=10))]
        assert fired == ["loop-1"]
        after_midnight = MIDNIGHT + timedelta(minutes=10)
        assert evaluator.evaluate(after_midnight) == []
        assert "loop-1" in evaluator.decision("acme")["blocked_tasks"]
        assert BudgetEvaluator(store, config).evaluate(after_midnight) == []  # restarted
        # a day later the calls have slid out: let through; looping again, alerted again
        next_day = MIDNIGHT + timedelta(hours=23, minutes=50)
        assert evaluator.evaluate(next_day) == []
        assert evaluator.decision("acme")["blocked_tasks"] == {}
        store.insert_calls(
            [loop_call(i, next_day + timedelta(minutes=i - 10)) for i in range(10, 15)]
        )
        again = evaluator.evaluate(next_day + timedelta(minutes=5))
        assert [(a.scope_id, a.period) for a in again] == [("loop-1", "2026-11-16")]
