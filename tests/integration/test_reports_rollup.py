"""The hourly roll-up changes speed, never answers: customer margin is identical with no
roll-up, a current one, a stale one (duplicates inserted after the refresh) and a refreshed
one, and equals what llm_calls FINAL says."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from llm_margin.processor.billing import load_billing_file, store_billing
from llm_margin.processor.records import CallRecord
from llm_margin.processor.reports.customers import customer_rows
from llm_margin.processor.reports.rollup import refresh_usage_rollup
from llm_margin.processor.reports.views import VIEWS, bind, view_rows
from llm_margin.processor.storage import Store

from tests.integration.test_html import BILLING

pytestmark = pytest.mark.integration


def calls(now: datetime, n: int = 240) -> list[CallRecord]:
    return [
        CallRecord(
            ts=now - timedelta(minutes=37 * i),
            trace_id=f"{i:032x}",
            span_id=f"{i:016x}",
            task_id=f"t{i // 3}",
            customer_id=("acme", "globex", "(unattributed)")[i % 3],
            plan="pro",
            cost_usd=Decimal("0.000001") * (i + 1),
            priced=i % 4 != 0,
            input_tokens=i,
            version=1,
        )
        for i in range(n)
    ]


ROLLUP_VIEWS = ("plans", "daily", "unpriced", "budgets")


def answers(store: Store, since: datetime, until: datetime) -> dict:
    out = {"customers": customer_rows(store, since, until)}
    for name in ROLLUP_VIEWS:
        out[name] = view_rows(store, VIEWS[name], since, until)
    return out


def fresh_hours(store: Store, since: datetime, until: datetime) -> int:
    """How many hours the queries would take from the roll-up right now."""
    sql = (
        "SELECT fresh_to - fresh_from FROM llm_rollup_fresh("
        "since = {since:DateTime64(6)}, until = {until:DateTime64(6)})"
    )
    return store.query(sql, bind(sql, {"since": since, "until": until})).rows[0][0] // 3600


def test_rollup_never_changes_the_answer(tmp_path):
    store = Store.open(data_dir=str(tmp_path / "data"))
    try:
        store_billing(store, *load_billing_file(BILLING))
        # Sub-second instants, one within the last second before `until`: the raw ranges must
        # compare in ts's own type (a DateTime bound once dropped such calls).
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        rows = calls(now)
        store.insert_calls(rows)
        store.insert_calls(rows[:80])  # at-least-once delivery: duplicates
        # A part of its own holding one sub-second call, just before `until`.
        store.insert_calls(
            [
                CallRecord(
                    ts=now,
                    trace_id="y",
                    span_id="last",
                    customer_id="acme",
                    cost_usd=Decimal("0.5"),
                    priced=True,
                    version=1,
                )
            ]
        )
        since, until = now - timedelta(days=3, minutes=7), now + timedelta(microseconds=1)
        baseline = answers(store, since, until)
        assert fresh_hours(store, since, until) == 0
        assert refresh_usage_rollup(store) > 0
        assert refresh_usage_rollup(store) == 0  # nothing changed since
        assert fresh_hours(store, since, until) > 48  # the roll-up is really used
        assert answers(store, since, until) == baseline
        store.insert_calls(rows[40:70])  # duplicates after the refresh: those hours are stale
        assert answers(store, since, until) == baseline
        assert refresh_usage_rollup(store) > 0
        assert answers(store, since, until) == baseline
        baseline = baseline["customers"]
        # A genuinely new call shows up at once, before any refresh.
        store.insert_calls(
            [
                CallRecord(
                    ts=now - timedelta(hours=30),
                    trace_id="x",
                    span_id="new",
                    customer_id="acme",
                    cost_usd=Decimal("1"),
                    priced=True,
                    version=1,
                )
            ]
        )
        after = {r["customer_id"]: r for r in customer_rows(store, since, until)}
        before = {r["customer_id"]: r for r in baseline}
        assert after["acme"]["cost_usd"] == before["acme"]["cost_usd"] + 1
        final = store.query(
            "SELECT count(), sum(cost_usd) FROM llm_calls FINAL "
            "WHERE ts >= {s:DateTime64(6)} AND ts < {u:DateTime64(6)}",
            {"s": since, "u": until},
        ).rows[0]
        assert sum(r["calls"] for r in after.values()) == final[0]
        assert sum((r["cost_usd"] for r in after.values()), Decimal(0)) == final[1]
    finally:
        store.close()
