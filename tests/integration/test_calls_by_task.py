"""llm_calls_by_task: the by-task copy of llm_calls that linking reads (schema 011/012).

Kept in step by a materialized view, back-filled once when an existing store is upgraded, and
linking through it gives the same llm_tasks rows as before."""

from __future__ import annotations

import pytest
from llm_margin.processor.metrics import Metrics
from llm_margin.processor.pipeline import Pipeline
from llm_margin.processor.pricing import default_price_book
from llm_margin.processor.receiver.synthetic import make_request
from llm_margin.processor.storage import Store

pytestmark = pytest.mark.integration


def _calls(first: int, count: int):
    return Pipeline(default_price_book(), Metrics()).extract(make_request(first, count)).calls


def _by_task(store: Store) -> list[tuple]:
    return store.query(
        "SELECT task_id, span_id, cost_usd, attempt FROM llm_calls_by_task FINAL ORDER BY span_id"
    ).rows


def _calls_view(store: Store) -> list[tuple]:
    return store.query(
        "SELECT task_id, span_id, cost_usd, attempt FROM llm_calls FINAL ORDER BY span_id"
    ).rows


def test_every_insert_and_rewrite_reaches_the_by_task_table(tmp_path):
    store = Store.open(data_dir=str(tmp_path / "d"))
    try:
        calls = _calls(0, 40)
        store.insert_calls(calls)
        store.insert_calls(calls[:10])  # an exporter's re-delivery
        store.link_tasks({c.task_id for c in calls})
        assert len(_by_task(store)) == 40
        assert _by_task(store) == _calls_view(store)
        tasks = store.query("SELECT task_id, calls, cost_usd FROM llm_tasks FINAL").rows
        assert len(tasks) == 10 and all(row[1] == 4 for row in tasks)
        assert sum(row[2] for row in tasks) == sum(c.cost_usd for c in calls)
    finally:
        store.close()


def test_a_store_from_before_the_table_is_back_filled_on_open(tmp_path):
    path = str(tmp_path / "old")
    store = Store.open(data_dir=path)
    try:
        store.command("DROP VIEW llm_calls_by_task_mv")
        store.command("DROP TABLE llm_calls_by_task")
        store.insert_calls(_calls(0, 20))  # stored by a release without the table
    finally:
        store.close()
    store = Store.open(data_dir=path)
    try:
        assert len(_by_task(store)) == 20
        store.insert_calls(_calls(20, 8))  # and the view follows new inserts
        assert _by_task(store) == _calls_view(store)
        store.link_tasks({f"task-{n}" for n in range(7)})
        assert store.query("SELECT count(), sum(calls) FROM llm_tasks FINAL").rows == [(7, 28)]
    finally:
        store.close()
