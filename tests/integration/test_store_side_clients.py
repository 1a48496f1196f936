"""Task linking runs on a client of its own: a link pass (0.15-0.3 s under load) and the next
batch's insert run at once inside chDB instead of taking turns on one client."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from llm_margin.processor.records import CallRecord
from llm_margin.processor.storage import Store

pytestmark = pytest.mark.integration


def test_linking_runs_beside_the_writer_not_behind_it(tmp_path):
    store = Store.open(data_dir=str(tmp_path / "data"))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    calls = [
        CallRecord(
            ts=now - timedelta(seconds=i),
            trace_id=f"{i:032x}",
            span_id=f"{i:016x}",
            task_id=f"t{i // 2}",
            customer_id="acme",
            route="openai/gpt-4o",
            status="error" if i % 2 == 0 else "ok",
            cost_usd=Decimal("0.01"),
            priced=True,
            version=1,
        )
        for i in range(6)
    ]
    try:
        store.insert_calls(calls)
        with store._lock:  # the writer, busy with the next insert
            worker = threading.Thread(target=store.link_tasks, args=({c.task_id for c in calls},))
            worker.start()
            worker.join(timeout=30)
            assert not worker.is_alive()
        rows = store.query(
            "SELECT task_id, calls, toString(cost_usd) FROM llm_tasks FINAL ORDER BY task_id"
        ).rows
        assert rows == [("t0", 2, "0.02"), ("t1", 2, "0.02"), ("t2", 2, "0.02")]
    finally:
        store.close()
