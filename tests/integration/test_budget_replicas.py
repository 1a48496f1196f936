"""Two processors on one store (replicas behind the collector's load balancer, one ClickHouse)
each run a budget evaluator: an alert still reaches the log and the webhook once, sent by
whichever recorded it in llm_alerts first."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from llm_margin.processor.billing import parse_billing, store_billing
from llm_margin.processor.budgets.config import BudgetConfig
from llm_margin.processor.budgets.evaluator import BudgetEvaluator
from llm_margin.processor.budgets.sinks import TableSink
from llm_margin.processor.records import CallRecord
from llm_margin.processor.storage import Store

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 15, 12, tzinfo=timezone.utc)
BILLING = {"plans": {"pro": {"monthly_price_usd": "100", "included_ai_usd": "100"}},
           "customers": {"acme": {"plan": "pro"}}}  # fmt: skip


class Recorder:
    """A sink standing for the log and the webhook: what reached people."""

    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def send(self, alerts, fired_at) -> None:
        self.sent += [a.key for a in alerts]


def call(i: int, cost: str) -> CallRecord:
    return CallRecord(
        ts=datetime(2026, 11, 15, 1, i, tzinfo=timezone.utc),
        trace_id=f"{i:032x}",
        span_id=f"{i:016x}",
        task_id=f"t{i}",
        customer_id="acme",
        cost_usd=Decimal(cost),
        priced=True,
        version=1,
    )


def test_each_alert_reaches_people_once_across_two_evaluators(tmp_path):
    store = Store.open(data_dir=str(tmp_path / "data"))
    try:
        store_billing(store, *parse_billing(BILLING))
        config = BudgetConfig(soft_alert_pct=(Decimal(50), Decimal(80)), min_projection_hours=1e6)
        seen = [Recorder(), Recorder()]
        replicas = [BudgetEvaluator(store, config, sinks=[TableSink(store), r]) for r in seen]

        store.insert_calls([call(1, "55")])  # 55 of 100: the 50% alert
        assert len(replicas[0].evaluate(NOW)) == 2  # customer and plan
        assert replicas[1].evaluate(NOW) == []  # it reads the first's rows: nothing new
        store.insert_calls([call(2, "30")])  # 85: the 80% alert, both replicas see it
        fired = [r.evaluate(NOW) for r in replicas]
        # The second replica read this month's alerts before the 80% rows were written: it
        # finds them fresh too, and must not send them again.
        assert [len(f) for f in fired] == [2, 0]
        sent = seen[0].sent + seen[1].sent
        assert sorted(k[4] for k in sent) == [50, 50, 80, 80]
        assert len(set(sent)) == len(sent) == 4
        rows = store.query("SELECT count() FROM llm_alerts FINAL").rows
        assert rows[0][0] == 4
    finally:
        store.close()


class Interleaved(TableSink):
    """The table sink of one replica that lets the other replica run a whole round just before
    (or just after) its own insert: both found the alert before either recorded it."""

    def __init__(self, store, other_round, before: bool) -> None:
        super().__init__(store)
        self.other_round, self.before = other_round, before

    def record(self, alerts, fired_at):
        if self.before:
            self.other_round()
        version = super().record(alerts, fired_at)
        if not self.before:
            self.other_round()
        return version


@pytest.mark.parametrize("other_inserts_first", [True, False])
def test_both_evaluators_find_the_same_alert_in_one_round(tmp_path, other_inserts_first):
    """Whichever inserts the alert first sends it; the other sends nothing."""
    store = Store.open(data_dir=str(tmp_path / "data"))
    try:
        store_billing(store, *parse_billing(BILLING))
        config = BudgetConfig(soft_alert_pct=(Decimal(50), Decimal(80)), min_projection_hours=1e6)
        seen = [Recorder(), Recorder()]
        other_fired: list = []
        other = BudgetEvaluator(store, config, sinks=[TableSink(store), seen[1]])
        table = Interleaved(store, lambda: None, other_inserts_first)
        first = BudgetEvaluator(store, config, sinks=[table, seen[0]])
        store.insert_calls([call(1, "55")])
        assert len(other.evaluate(NOW)) == 2  # both have read this month's alerts by now
        assert first.evaluate(NOW) == []
        store.insert_calls([call(2, "30")])
        table.other_round = lambda: other_fired.extend(other.evaluate(NOW))
        fired = first.evaluate(NOW)
        winner, loser = (other_fired, fired) if other_inserts_first else (fired, other_fired)
        assert len(winner) == 2 and loser == []
        sent = seen[0].sent + seen[1].sent
        assert sorted(k[4] for k in sent) == [50, 50, 80, 80]
    finally:
        store.close()
