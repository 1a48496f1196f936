"""`llm-margin report` on a store it owns refreshes the roll-up of its own window only, and at
most a bounded number of hours (the newest): a backlog of stale hours elsewhere (old data after
`reprice`, an upgrade, a stopped processor) no longer makes a report wait for all of history.
The answer is the same either way (stale hours are read from llm_calls)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from llm_margin.clickhouse import read_sql
from llm_margin.processor import cli
from llm_margin.processor.commands import report
from llm_margin.processor.records import CallRecord
from llm_margin.processor.storage import Store

pytestmark = pytest.mark.integration

UNTIL = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
RECENT_HOURS = 10  # one call in each of the 10 hours before UNTIL
OLD_HOURS = 5  # and in 5 hours 40 days earlier: outside every period the report reads


def _call(i: int, ts: datetime) -> CallRecord:
    return CallRecord(
        ts=ts,
        trace_id=f"{i:032x}",
        span_id=f"{i:016x}",
        task_id=f"t{i}",
        customer_id=("acme", "globex")[i % 2],
        plan="pro",
        route="openai/gpt-4o-mini",
        cost_usd=Decimal("0.000123456789") * (i + 1),
        priced=True,
        input_tokens=100 + i,
        version=1,
    )


def _stale_hours(store: Store) -> list[datetime]:
    rows = store.query(read_sql("queries/rollup_stale_hours.sql"), {"settled_seconds": 0}).rows
    return [row[0].replace(tzinfo=None) for row in rows]


def test_report_refreshes_only_its_window_and_at_most_the_cap(tmp_path, monkeypatch, capsys):
    data_dir = str(tmp_path / "data")
    recent = [UNTIL - timedelta(hours=h, minutes=30) for h in range(RECENT_HOURS)]
    old = [UNTIL - timedelta(days=40, hours=h, minutes=30) for h in range(OLD_HOURS)]
    store = Store.open(data_dir=data_dir)
    try:
        store.insert_calls([_call(i, ts) for i, ts in enumerate(recent + old)])
        assert len(_stale_hours(store)) == RECENT_HOURS + OLD_HOURS
    finally:
        store.close()

    monkeypatch.setattr(report, "REPORT_REFRESH_MAX_HOURS", 4)
    since = UNTIL - timedelta(hours=12)
    argv = ["report", "customers", "--data-dir", data_dir, "--format", "json"]
    argv += ["--since", since.isoformat(), "--until", UNTIL.isoformat()]
    assert cli.main(argv) == 0
    rows = json.loads(capsys.readouterr().out)

    store = Store.open(data_dir=data_dir)
    try:
        stale = _stale_hours(store)
        newest_four = {(UNTIL - timedelta(hours=h + 1)).replace(tzinfo=None) for h in range(4)}
        # the 4 newest hours of the window were refreshed, nothing else
        assert len(stale) == RECENT_HOURS + OLD_HOURS - 4
        assert not newest_four & set(stale)
        old_hours = {
            (ts.replace(minute=0, second=0, microsecond=0)).replace(tzinfo=None) for ts in old
        }
        assert old_hours <= set(stale)
        # and the report, read half from the roll-up and half from llm_calls, is exact
        expected = store.query(
            "SELECT customer_id, toString(sum(cost_usd)), count() FROM llm_calls FINAL "
            "WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)} "
            "GROUP BY customer_id",
            {"since": since.replace(tzinfo=None), "until": UNTIL.replace(tzinfo=None)},
        ).rows
    finally:
        store.close()
    got = {r["customer_id"]: (Decimal(r["cost_usd"]), r["calls"]) for r in rows if r["calls"]}
    assert got == {c: (Decimal(cost), n) for c, cost, n in expected}
    assert sum(n for _, n in got.values()) == RECENT_HOURS
