"""Task totals and every report exact whatever order, batch, process and duplicates the spans
came in, with roll-ups refreshed at random points (the checker lives in tests/linkaudit.py;
bench/audit_linking.py runs it over many seeds), and the cases it found."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from linkaudit import check_reports, check_store, deliver, generate
from llm_margin.processor.records import CallRecord
from llm_margin.processor.reports.rollup import refresh_usage_rollup
from llm_margin.processor.reports.views import VIEWS, view_rows
from llm_margin.processor.storage import Store

pytestmark = pytest.mark.integration

HOUR = datetime(2026, 10, 5, 10, 0)


def _call(n: int, task: str, customer: str, route: str, status: str, at: timedelta, latency_ms):
    return CallRecord(
        ts=HOUR + at,
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        task_id=task,
        customer_id=customer,
        workspace_id="ws_1",
        route=route,
        status=status,
        latency_ms=latency_ms,
        cost_usd=Decimal("0.000123") * n,
        priced=True,
        version=1,
    )


@pytest.fixture
def store(tmp_path):
    store = Store.open(data_dir=str(tmp_path / "data"))
    yield store
    store.close()


def test_task_ends_when_its_last_call_ends_to_the_microsecond(store):
    # 250.5 ms: the end used to be cut to whole milliseconds (ended_at 0.5 ms early).
    store.insert_calls([_call(1, "t-end", "acme", "openai/gpt-4o", "ok", timedelta(), 250.5)])
    store.link_tasks(["t-end"])
    ended = store.query("SELECT ended_at FROM llm_tasks FINAL WHERE task_id = 't-end'").rows
    assert ended[0][0].replace(tzinfo=None) == HOUR + timedelta(microseconds=250_500)


def test_task_with_calls_under_two_customers_in_one_hour_counts_once(store):
    # A second process without the customer's baggage stores its call as (unattributed): the
    # task has two fragments in one hour, which the per-task roll-up counted as two tasks.
    store.insert_calls(
        [
            _call(1, "t-split", "acme", "openai/gpt-4o", "error", timedelta(minutes=5), 10.0),
            _call(
                2,
                "t-split",
                "(unattributed)",
                "openai/gpt-4o-mini",
                "ok",
                timedelta(minutes=6),
                10.0,
            ),
        ]
    )
    store.link_tasks(["t-split"])
    since, until = HOUR - timedelta(hours=1), HOUR + timedelta(hours=2)
    raw = {name: view_rows(store, VIEWS[name], since, until) for name in ("routes", "runaway")}
    assert refresh_usage_rollup(store) > 0
    rolled = {name: view_rows(store, VIEWS[name], since, until) for name in ("routes", "runaway")}
    assert rolled["routes"] == raw["routes"]
    assert [(r["original_route"], r["tasks"], r["fallback_tasks"]) for r in raw["routes"]] == [
        ("openai/gpt-4o", 1, 1)
    ]
    assert sum(r["tasks"] for r in rolled["runaway"]) == 1


def test_rootless_task_takes_the_first_customer_its_calls_carry(store):
    # The first call came from a process that lost the customer's baggage: the task is still
    # the customer's, not (unattributed).
    store.insert_calls(
        [
            _call(1, "t-lost", "(unattributed)", "openai/gpt-4o", "error", timedelta(), 10.0),
            _call(2, "t-lost", "globex", "openai/gpt-4o", "ok", timedelta(seconds=1), 10.0),
            _call(3, "t-none", "(unattributed)", "openai/gpt-4o", "ok", timedelta(), 10.0),
        ]
    )
    store.link_tasks(["t-lost", "t-none"])
    rows = store.query("SELECT task_id, customer_id FROM llm_tasks FINAL ORDER BY task_id").rows
    assert rows == [("t-lost", "globex"), ("t-none", "(unattributed)")]


def test_linking_and_reports_match_the_raw_calls(processor):
    seed = 1  # fixed: bench/audit_linking.py runs more seeds
    scenario = generate(seed, n_tasks=30)

    def refresh(rng):
        refresh_usage_rollup(processor.store, max_hours=rng.choice([None, 1, 3]))

    deliver(processor, scenario, seed, refresh)
    assert check_store(processor.store, scenario) == []
    assert check_reports(processor.store, seed, "partial") == []
    refresh_usage_rollup(processor.store)
    assert check_reports(processor.store, seed, "current") == []


def test_late_call_of_a_finalised_rootless_task_is_counted(store):
    from llm_margin.processor.linking import TaskFinalizer

    # A window of 1 s, not less: linking right after the insert must come inside it (held
    # back) even on a loaded CI machine, or it writes the row itself and the sweep has none.
    store.task_finalize_seconds = 1.0
    finalizer = TaskFinalizer(store, 1.0)
    store.insert_calls([_call(1, "t-late", "acme", "openai/gpt-4o", "error", timedelta(), 5.0)])
    store.link_tasks(["t-late"])  # held back: no root yet
    time.sleep(1.1)
    assert finalizer.sweep() == 1
    # A call arriving after the sweep wrote the row (outcome unknown) must update it: the
    # sweep only looks for tasks without a row, so nothing else would.
    store.insert_calls(
        [_call(2, "t-late", "acme", "openai/gpt-4o", "ok", timedelta(seconds=1), 5.0)]
    )
    store.link_tasks(["t-late"])
    time.sleep(1.1)
    finalizer.sweep()
    row = store.query(
        "SELECT calls, retries, cost_usd FROM llm_tasks FINAL WHERE task_id = 't-late'"
    ).rows
    assert row == [(2, 1, Decimal("0.000369"))]


@pytest.mark.parametrize("days", [1, 9])  # the LIMIT BY and the FINAL branch
def test_runaway_task_is_blocked_for_its_customer_when_a_worker_lost_the_baggage(store, days):
    # An agent loop whose tool worker lost the customer's baggage: most of its calls are stored
    # (unattributed). The budget hard cap must still list the task under its customer, whose
    # decision the app reads; it was listed under whichever customer a call happened to give.
    from llm_margin.processor.budgets import thresholds
    from llm_margin.processor.budgets.config import BudgetConfig
    from llm_margin.processor.reports.views import run_sql

    customers = ["acme", *["(unattributed)"] * 4, "acme"]
    store.insert_calls(
        [
            _call(n, "t-loop", c, "openai/gpt-4o", "ok", timedelta(seconds=n), 10.0)
            for n, c in enumerate(customers, 1)
        ]
    )
    rows = run_sql(
        store,
        "queries/runaway_tasks.sql",
        {
            "since": HOUR - timedelta(days=days),
            "until": HOUR + timedelta(hours=1),
            "max_attempts": 5,
            "max_cost_usd": Decimal(100),
        },
    )
    assert [(r["task_id"], r["customer_id"], r["workspace_id"], r["calls"]) for r in rows] == [
        ("t-loop", "acme", "ws_1", 6)
    ]
    config = BudgetConfig(max_attempts_per_task=5)
    blocked = thresholds.blocked_tasks(thresholds.runaway_alerts(rows, config, HOUR))
    assert list(blocked) == ["acme"] and list(blocked["acme"]) == ["t-loop"]


@pytest.mark.parametrize("first", ["acme", "(unattributed)"])
def test_runaway_report_puts_a_task_under_its_customer(store, first):
    # A loop whose worker lost the customer's baggage: `report runaway` counted the task under
    # whichever customer one call gave (raw and roll-up could differ); now under llm_tasks'.
    other = "(unattributed)" if first == "acme" else "acme"
    customers = [first, other, "(unattributed)"]
    store.insert_calls(
        [
            _call(n, "t-loop", c, "openai/gpt-4o", "ok", timedelta(minutes=n), 10.0)
            for n, c in enumerate(customers, 1)
        ]
    )
    store.link_tasks(["t-loop"])
    since, until = HOUR - timedelta(hours=1), HOUR + timedelta(hours=2)
    raw = view_rows(store, VIEWS["runaway"], since, until)
    assert refresh_usage_rollup(store) > 0
    rolled = view_rows(store, VIEWS["runaway"], since, until)
    for rows in (raw, rolled):
        assert [(r["customer_id"], r["tasks"], r["calls"]) for r in rows] == [("acme", 1, 3)]
