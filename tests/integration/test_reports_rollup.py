"""The hourly roll-ups change speed, never answers: every report that reads them is identical
with no roll-up, a current one, a stale one (duplicates inserted after the refresh, late calls
of already rolled-up tasks) and a refreshed one, and equals what llm_calls FINAL says."""

from __future__ import annotations

from dataclasses import replace
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
            # One customer and workspace per task, as baggage gives them (runaway reports a
            # task under any one of its calls' workspaces).
            customer_id=("acme", "globex", "(unattributed)")[i // 3 % 3],
            workspace_id=f"ws_{i // 3 % 5}",
            plan="pro",
            route=("openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude")[i % 7 % 3],
            attempt_kind=("first", "retry", "fallback")[i % 3],
            status="ok" if i % 5 else "error",
            cost_usd=Decimal("0.000001") * (i + 1),
            priced=i % 4 != 0,
            input_tokens=i,
            version=1,
        )
        for i in range(n)
    ]


ROLLUP_VIEWS = ("plans", "daily", "unpriced", "budgets", "routes", "runaway")


def answers(store: Store, since: datetime, until: datetime) -> dict:
    out = {"customers": customer_rows(store, since, until)}
    for name in ROLLUP_VIEWS:
        out[name] = view_rows(store, VIEWS[name], since, until)
    # One customer's (`report --customer`): its filter sits in every roll-up and raw branch,
    # and acme has tasks across hours and late calls.
    out["acme"] = customer_rows(store, since, until, "acme")
    for name in ROLLUP_VIEWS:
        if name != "plans":
            out["acme", name] = view_rows(store, VIEWS[name], since, until, customer="acme")
    return out


def fresh_hours(store: Store, since: datetime, until: datetime) -> int:
    """How many hours the queries would take from the roll-up right now."""
    sql = (
        "SELECT fresh_to - fresh_from FROM llm_rollup_fresh("
        "since = {since:DateTime64(6)}, until = {until:DateTime64(6)})"
    )
    return store.query(sql, bind(sql, {"since": since, "until": until})).rows[0][0] // 3600


def raw_answers(store: Store, since: datetime, until: datetime) -> dict:
    """The answers from llm_calls alone: forget every refresh (the roll-up rows stay)."""
    store.command("TRUNCATE TABLE llm_rollup_hours")
    assert fresh_hours(store, since, until) == 0
    return answers(store, since, until)


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
        # A task whose calls all fall in one hour (the others span hours).
        store.insert_calls(
            [
                CallRecord(
                    ts=now.replace(minute=10) - timedelta(hours=50, minutes=-m),
                    trace_id="solo",
                    span_id=f"solo{m}",
                    task_id="solo",
                    customer_id="acme",
                    workspace_id="ws_solo",
                    route="openai/gpt-4o",
                    status="error" if m == 0 else "ok",
                    attempt_kind="first" if m == 0 else "retry",
                    cost_usd=Decimal("0.125"),
                    priced=True,
                    version=1,
                )
                for m in (0, 5)
            ]
        )
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
        # Late calls of tasks already rolled up, into other rolled-up hours: tasks that spanned
        # two hours now span three, the one-hour task now spans two (its hour was rolled up
        # knowing nothing of it, and is still current while the late call's hour is not).
        late = [
            CallRecord(
                ts=now - timedelta(hours=hours),
                trace_id="late",
                span_id=f"late{n}",
                task_id=task,
                customer_id=customer,
                workspace_id="ws_solo" if task == "solo" else f"ws_{int(task[1:]) % 5}",
                route="openai/gpt-4o-mini",
                attempt_kind="fallback",
                cost_usd=Decimal("0.25"),
                priced=True,
                version=1,
            )
            for n, (hours, task, customer) in enumerate(
                [
                    (20, "t3", "acme"),
                    (40, "t30", "acme"),
                    (30, "t61", "globex"),
                    (10, "solo", "acme"),
                ]
            )
        ]
        # No background merge may fold the late parts into a part that spans every hour.
        store.command("SYSTEM STOP MERGES llm_calls")
        for call in late:  # one part each: only the hours they land in go stale
            store.insert_calls([call])
        stale = answers(store, since, until)
        # Read from the roll-up: the hours up to the first late call, the solo task's among them.
        assert fresh_hours(store, since, until) > 24
        assert refresh_usage_rollup(store) > 0
        assert fresh_hours(store, since, until) > 48
        refreshed = answers(store, since, until)
        store.command("SYSTEM START MERGES llm_calls")
        assert stale == refreshed == raw_answers(store, since, until)
        assert stale != baseline  # the late calls count
        assert refresh_usage_rollup(store) > 0
        baseline = answers(store, since, until)["customers"]
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
        # Over a week of raw calls the queries deduplicate with FINAL instead of LIMIT BY: a
        # 10-day period read raw must equal the same period read from a current roll-up
        # (whose raw edges are short), duplicates and newer versions included.
        long_since = now - timedelta(days=10)
        store.insert_calls([replace(r, cost_usd=r.cost_usd * 3, version=2) for r in rows[:9]])
        raw_long = raw_answers(store, long_since, until)
        assert refresh_usage_rollup(store) > 0
        assert fresh_hours(store, long_since, until) > 100
        assert answers(store, long_since, until) == raw_long
    finally:
        store.close()


def test_hours_an_older_release_rolled_up_are_recomputed_after_an_upgrade(tmp_path):
    """A release that changes the roll-up logic raises rollup_format: hours written before
    (here: by a release from before the column, so 0 after ADD COLUMN) count as stale."""
    data_dir = str(tmp_path / "data")
    store = Store.open(data_dir=data_dir)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    since, until = now - timedelta(days=3), now + timedelta(microseconds=1)
    try:
        store.insert_calls(calls(now, n=60))
        assert refresh_usage_rollup(store) > 0
        rolled = fresh_hours(store, since, until)
        assert rolled > 24
        # The store as an older release left it: llm_rollup_hours without rollup_format.
        store.command("ALTER TABLE llm_rollup_hours DROP COLUMN rollup_format")
    finally:
        store.close()
    store = Store.open(data_dir=data_dir)  # the upgrade adds the column, with 0
    try:
        assert fresh_hours(store, since, until) == 0
        assert refresh_usage_rollup(store) >= rolled
        assert fresh_hours(store, since, until) == rolled
        assert refresh_usage_rollup(store) == 0
    finally:
        store.close()


def test_hours_still_being_written_wait_until_they_settle(tmp_path, monkeypatch):
    """The budget thread leaves an hour whose calls changed within ROLLUP_SETTLED_SECONDS to
    the raw reads (under live ingest its roll-up would be stale before anyone read it) and
    rolls it up once it has been quiet that long."""
    import time

    from llm_margin.processor.budgets import evaluator
    from llm_margin.processor.budgets.config import BudgetConfig

    store = Store.open(data_dir=str(tmp_path / "data"))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    since, until = now - timedelta(days=2), now + timedelta(microseconds=1)
    try:
        store.insert_calls(calls(now, n=30))
        budgets = evaluator.BudgetEvaluator(store, BudgetConfig(), sinks=[])
        budgets.evaluate()
        assert fresh_hours(store, since, until) == 0
        assert refresh_usage_rollup(store, settled_seconds=60) == 0
        monkeypatch.setattr(evaluator, "ROLLUP_SETTLED_SECONDS", 1)
        time.sleep(2.1)  # part modification times are whole seconds
        budgets.evaluate()
        assert fresh_hours(store, since, until) > 12
        assert refresh_usage_rollup(store) == 0  # nothing was left behind
    finally:
        store.close()


def test_refresh_runs_beside_the_writer_not_behind_it(tmp_path):
    """A roll-up refresh (seconds for a busy hour) runs on the store's background client: it
    neither waits for the lock that inserts and link passes hold nor holds it itself."""
    import threading

    store = Store.open(data_dir=str(tmp_path / "data"))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        store.insert_calls(calls(now, n=30))
        refreshed: list[int] = []
        with store._lock:  # the writer, busy
            worker = threading.Thread(target=lambda: refreshed.append(refresh_usage_rollup(store)))
            worker.start()
            worker.join(timeout=30)
            assert not worker.is_alive() and refreshed[0] > 12
        store.insert_calls(calls(now + timedelta(minutes=1), n=3))  # the writer still works
        assert refresh_usage_rollup(store) > 0
    finally:
        store.close()
