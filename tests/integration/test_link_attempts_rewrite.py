"""Renumbering a task's attempts (clickhouse/link_attempts_rewrite.sql) reads the llm_calls
partitions of the renumbered calls only: looking their keys up in every monthly partition read
a granule of each, so every batch's rewrite grew with the months stored."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from llm_margin.processor.records import CallRecord
from llm_margin.processor.storage import Store

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 10, 0)


def _call(
    n: int, task: str, ts: datetime, customer: str = "acme", status: str = "ok"
) -> CallRecord:
    # attempt 0 and kind '' on every call, as instrumentations that do not number attempts
    # leave them: linking renumbers each one
    return CallRecord(
        ts=ts,
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        task_id=task,
        customer_id=customer,
        workspace_id="ws_1",
        route="openai/gpt-4o",
        status=status,
        latency_ms=10.0,
        cost_usd=Decimal("0.000123"),
        priced=True,
        version=1,
        attempt=0,
        attempt_kind="",
    )


@pytest.fixture
def store(tmp_path):
    store = Store.open(data_dir=str(tmp_path / "data"))
    yield store
    store.close()


def _attempts(store: Store, task: str) -> list[tuple]:
    return store.query(
        "SELECT attempt, attempt_kind, version FROM llm_calls FINAL "
        "WHERE task_id = {t:String} ORDER BY ts",
        {"t": task},
    ).rows


def test_renumbering_reads_the_calls_months_not_every_month(store):
    # Six months of history, 20,000 calls a month of the same customer as the new calls, with
    # span ids interleaved so that the new calls' keys fall inside every month's key range.
    store.command("SYSTEM STOP MERGES llm_calls")
    for month in range(1, 7):
        start = NOW - timedelta(days=31 * month)
        store.insert_calls(
            [
                _call(n * 8 + month, f"old-{month}-{n // 4}", start + timedelta(seconds=n))
                for n in range(20_000)
            ]
        )
    # A task of this month whose three calls arrive unnumbered (one per second).
    statuses = ("error", "ok", "error")
    calls = [
        _call(80_000 + n * 8, "t-new", NOW + timedelta(seconds=n), status=statuses[n])
        for n in range(3)
    ]
    store.insert_calls(calls)
    # Under the six old months' 120,000 calls; over the granules of the new calls' own reads
    # (llm_calls_by_task and llm_calls by key: a few granules of 8,192 rows).
    # (linking runs on the store's linker client: the guard goes on its session)
    store._linker.command("SET max_rows_to_read = 40000")
    try:
        store.link_tasks({"t-new"})
    finally:
        store._linker.command("SET max_rows_to_read = 0")
    assert [(a, k) for a, k, _ in _attempts(store, "t-new")] == [
        (1, "first"),
        (2, "retry"),
        (3, "first"),
    ]
    assert all(version == 2 for *_, version in _attempts(store, "t-new"))


def test_a_task_across_months_is_renumbered_in_each(store):
    # The first call at the end of one month, the others in the next: both partitions read.
    first = datetime(2026, 10, 31, 23, 59, 59, 999_999)
    calls = [
        _call(1, "t-span", first, status="error"),
        _call(2, "t-span", first + timedelta(microseconds=20_001)),
        _call(3, "t-span", first + timedelta(seconds=5), customer="globex", status="error"),
    ]
    store.insert_calls(calls)
    store.link_tasks({"t-span"})
    assert [(a, k) for a, k, _ in _attempts(store, "t-span")] == [
        (1, "first"),
        (2, "retry"),
        (3, "first"),
    ]
    tasks = store.query("SELECT calls, retries FROM llm_tasks FINAL WHERE task_id = 't-span'")
    assert tasks.rows == [(3, 1)]
