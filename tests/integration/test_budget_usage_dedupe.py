"""budget_usage.sql, daily_spend.sql and runaway_tasks.sql deduplicate the calls they read
from llm_calls in two ways (LIMIT BY for a short raw range, FINAL for a long one, e.g. a
month-to-date read with no current roll-up): both must count each call once, at its newest
version."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from llm_margin.processor.billing import load_billing_file, store_billing
from llm_margin.processor.records import CallRecord
from llm_margin.processor.reports.rollup import refresh_usage_rollup
from llm_margin.processor.reports.views import run_sql
from llm_margin.processor.storage import Store

from tests.integration.test_html import BILLING

pytestmark = pytest.mark.integration

MONTH_START = datetime(2026, 10, 1)


def call(i: int, version: int, cost: str) -> CallRecord:
    return CallRecord(
        ts=MONTH_START + timedelta(hours=7 * i, microseconds=i),
        trace_id=f"{i:032x}",
        span_id=f"{i:016x}",
        task_id=f"t{i}",
        customer_id=("acme", "globex")[i % 2],
        workspace_id=("ws_acme_legal", "ws_globex_main")[i % 2],
        plan="pro",
        cost_usd=Decimal(cost),
        priced=True,
        version=version,
    )


def newest_versions(rows: list[CallRecord]) -> dict[tuple[str, str], CallRecord]:
    newest: dict[tuple[str, str], CallRecord] = {}
    for row in rows:
        key = (row.customer_id, row.span_id)
        if key not in newest or row.version > newest[key].version:
            newest[key] = row
    return newest


def expected_spend(
    rows: list[CallRecord], until: datetime, since: datetime = MONTH_START
) -> dict[str, Decimal]:
    spend = {"acme": Decimal(0), "globex": Decimal(0)}
    for row in newest_versions(rows).values():
        if since <= row.ts < until:
            spend[row.customer_id] += row.cost_usd
    return spend


@pytest.mark.parametrize("rolled_up", [False, True])
def test_month_to_date_counts_each_call_once_at_its_newest_version(tmp_path, rolled_up):
    store = Store.open(data_dir=str(tmp_path / "data"))
    try:
        store_billing(store, *load_billing_file(BILLING))
        first = [call(i, 1, f"0.{i + 1:06d}") for i in range(90)]  # ~26 days, 7 h apart
        store.insert_calls(first)
        store.insert_calls(first[::3])  # exact re-deliveries
        newer = [call(i, 2, f"1.{i + 1:06d}") for i in range(0, 90, 5)]  # repriced
        store.insert_calls(newer)
        if rolled_up:
            refresh_usage_rollup(store)
        rows = first + first[::3] + newer
        # 25 days of raw calls (FINAL), then 1.5 days (LIMIT BY), then a sub-second bound.
        for until in (
            MONTH_START + timedelta(days=25),
            MONTH_START + timedelta(hours=36),
            first[40].ts + timedelta(microseconds=1),
        ):
            got = {
                r["customer_id"]: r["spent_usd"]
                for r in run_sql(store, "queries/budget_usage.sql", {"until": until})
                if r["scope"] == "customer" and r["customer_id"] in ("acme", "globex")
            }
            want = expected_spend(rows, until)
            assert got == want, until
    finally:
        store.close()


@pytest.mark.parametrize("rolled_up", [False, True])
def test_daily_spend_and_runaway_tasks_dedupe_on_both_paths(tmp_path, rolled_up):
    store = Store.open(data_dir=str(tmp_path / "data"))
    try:
        first = [call(i, 1, f"0.{i + 1:06d}") for i in range(90)]
        newer = [call(i, 2, f"1.{i + 1:06d}") for i in range(0, 90, 5)]
        store.insert_calls(first)
        store.insert_calls(first[::3])
        store.insert_calls(newer)
        if rolled_up:  # daily spend then reads whole current hours from llm_usage_hourly
            assert refresh_usage_rollup(store) > 0
        rows = first + first[::3] + newer
        # 20 days (FINAL unless rolled up), 2 days and a part of an hour (LIMIT BY), all
        # ending mid-month.
        until = MONTH_START + timedelta(days=20)
        for since in (MONTH_START, until - timedelta(days=2), first[60].ts):
            want = expected_spend(rows, until, since)
            daily = run_sql(store, "queries/daily_spend.sql", {"since": since, "until": until})
            spend = {r["customer_id"]: r["spent_usd"] for r in daily if r["scope"] == "customer"}
            assert spend == {k: v for k, v in want.items() if v}, since
            workspaces = {r["scope_id"]: r for r in daily if r["scope"] == "workspace"}
            for customer, workspace in (("acme", "ws_acme_legal"), ("globex", "ws_globex_main")):
                if want[customer]:
                    assert workspaces[workspace]["spent_usd"] == want[customer]
                    assert workspaces[workspace]["customer_id"] == customer
            newest = [r for r in newest_versions(rows).values() if since <= r.ts < until]
            assert sum(r["calls"] for r in daily if r["scope"] == "customer") == len(newest)
            tasks = run_sql(
                store,
                "queries/runaway_tasks.sql",
                {"since": since, "until": until, "max_attempts": 1, "max_cost_usd": 0},
            )
            assert sum(r["calls"] for r in tasks) == sum(
                1 for r in newest_versions(rows).values() if since <= r.ts < until
            )
            assert sum(r["cost_usd"] for r in tasks) == sum(want.values())
    finally:
        store.close()


def test_projection_starts_after_the_months_first_day(tmp_path):
    """A straight line through the month's first hours is noise (1 hour in, any spend projects
    to 720x itself): budget_usage.sql projects nothing for the first 24 hours."""
    store = Store.open(data_dir=str(tmp_path / "data"))
    try:
        store_billing(store, *load_billing_file(BILLING))
        store.insert_calls([call(0, 1, "0.50")])  # acme, at the month's first microsecond
        month_seconds = 31 * 86400  # October
        for hours, projected in (
            (1, None),
            (23.99, None),
            (24, Decimal("15.5")),  # 0.50 a day, 31 days
            (72, (Decimal("0.50") * month_seconds / (3 * 86400)).quantize(Decimal("1e-6"))),
        ):
            until = MONTH_START + timedelta(hours=hours)
            acme = next(
                r
                for r in run_sql(store, "queries/budget_usage.sql", {"until": until})
                if r["scope"] == "customer" and r["customer_id"] == "acme"
            )
            assert acme["spent_usd"] == Decimal("0.50")
            assert acme["projected_usd"] == projected, hours
            assert (acme["projected_pct"] is None) == (projected is None), hours
    finally:
        store.close()
