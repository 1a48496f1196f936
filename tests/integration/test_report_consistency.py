"""Report details an outside audit found inconsistent: the routes a task fell back to list only
tasks that fell back, and a customer's plan (without a billing entry) is the newest plan its
calls carried, not an empty one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from llm_margin.processor.records import CallRecord
from llm_margin.processor.reports.customers import customer_rows
from llm_margin.processor.reports.views import VIEWS, view_rows
from llm_margin.processor.storage import Store

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _call(n: int, task: str, route: str, kind: str, ok: bool, *, plan: str = "") -> CallRecord:
    return CallRecord(
        ts=NOW - timedelta(minutes=30 - n),
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        task_id=task,
        customer_id="cust_oa",
        plan=plan,
        route=route,
        attempt=1 if kind == "first" else 2,
        attempt_kind=kind,
        status="ok" if ok else "error",
        cost_usd=Decimal("0.001") * (n + 1),
        priced=True,
        version=1,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = Store.open(data_dir=str(tmp_path_factory.mktemp("consistency") / "data"))
    store.insert_calls(
        [
            # switched route after a success: no fallback
            _call(0, "t-switch", "anthropic/claude-3-5-haiku-latest", "first", True, plan="pro"),
            _call(1, "t-switch", "anthropic/claude-unknown-9000", "first", True),
            # a real fallback
            _call(2, "t-fallback", "openai/gpt-4o", "first", False),
            _call(3, "t-fallback", "openai/gpt-4o-mini", "fallback", True),
        ]
    )
    yield store
    store.close()


@pytest.mark.parametrize("hours", [2, 24 * 10])  # a short read and a long (FINAL) one
def test_fallback_routes_list_only_tasks_that_fell_back(store, hours):
    rows = view_rows(store, VIEWS["routes"], NOW - timedelta(hours=hours), NOW)
    by_route = {r["original_route"]: r for r in rows}
    haiku = by_route["anthropic/claude-3-5-haiku-latest"]
    assert (haiku["tasks"], haiku["fallback_tasks"], haiku["fallback_routes"]) == (1, 0, "")
    gpt = by_route["openai/gpt-4o"]
    assert (gpt["tasks"], gpt["fallback_tasks"]) == (1, 1)
    assert gpt["fallback_routes"] == "openai/gpt-4o-mini"


def test_customer_plan_is_the_newest_plan_its_calls_carried(store):
    rows = {r["customer_id"]: r for r in customer_rows(store, NOW - timedelta(hours=2), NOW)}
    assert rows["cust_oa"]["plan"] == "pro"
    assert rows["cust_oa"]["calls"] == 4
