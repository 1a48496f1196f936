"""The budget evaluator's memory of fired alerts stays bounded over days and months."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from llm_margin.processor.budgets import evaluator as ev
from llm_margin.processor.budgets.config import BudgetConfig
from llm_margin.processor.storage import QueryResult


class _Store:
    """Just enough store: no alerts fired before this evaluator started."""

    def query(self, sql, parameters=None):
        return QueryResult(["period", "rule", "scope", "scope_id", "threshold_pct"], [])

    def query_readonly(self, sql, parameters=None, *, own_sql=False):
        return self.query(sql, parameters)


def _runaway(task: str, first_call_day: str) -> dict:
    return {
        "task_id": task,
        "first_call_day": first_call_day,
        "customer_id": "acme",
        "workspace_id": "ws",
        "feature": "chat",
        "calls": 9,
        "cost_usd": Decimal("0.01"),
    }


def test_fired_alerts_of_past_periods_are_forgotten(monkeypatch):
    tasks_of_day = {"01": [f"day1-{n}" for n in range(50)], "02": ["day2-0"], "03": ["day3-0"]}
    day = {"now": "01"}

    def run_sql(store, name, parameters):
        if "runaway" not in name:
            return []
        return [_runaway(t, f"2026-11-{day['now']}") for t in tasks_of_day[day["now"]]]

    monkeypatch.setattr(ev, "refresh_usage_rollup", lambda store, **options: 0)
    monkeypatch.setattr(ev, "run_sql", run_sql)
    evaluator = ev.BudgetEvaluator(_Store(), BudgetConfig(max_attempts_per_task=8), sinks=[])

    first = evaluator.evaluate(datetime(2026, 11, 1, 12, tzinfo=timezone.utc))
    assert len(first) == 50
    assert evaluator.evaluate(datetime(2026, 11, 1, 13, tzinfo=timezone.utc)) == []  # once a day

    # Yesterday's runaway tasks are still in the 24-hour window: their keys are kept.
    day["now"] = "02"
    second = evaluator.evaluate(datetime(2026, 11, 2, 0, 5, tzinfo=timezone.utc))
    assert [a.scope_id for a in second] == ["day2-0"]
    assert len(evaluator._fired) == 51

    # The day before yesterday's 50 are no longer remembered: with thousands of runaway tasks
    # a day the set grew for as long as the processor ran.
    day["now"] = "03"
    third = evaluator.evaluate(datetime(2026, 11, 3, 0, 5, tzinfo=timezone.utc))
    assert [a.scope_id for a in third] == ["day3-0"]
    assert {key[0] for key in evaluator._fired} <= {"2026-11", "2026-11-02", "2026-11-03"}
    assert len(evaluator._fired) == 2
    assert evaluator._loaded_periods <= {"2026-11", "2026-11-02", "2026-11-03"}
