"""The budget round's queries do not queue behind the writer: they run on read-only clients."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.integration


def test_budget_queries_run_while_the_writer_holds_the_store(tmp_path, monkeypatch):
    from llm_margin.processor.budgets import evaluator as ev
    from llm_margin.processor.budgets.config import BudgetConfig
    from llm_margin.processor.storage import Store

    # The roll-up refresh writes, so it needs the writer's client; only the reads are at stake.
    monkeypatch.setattr(ev, "refresh_usage_rollup", lambda store, **options: 0)
    store = Store.open(data_dir=str(tmp_path / "data"))
    try:
        evaluator = ev.BudgetEvaluator(store, BudgetConfig(max_attempts_per_task=4), sinks=[])
        evaluator.evaluate()
        done = threading.Event()
        worker = threading.Thread(target=lambda: (evaluator.evaluate(), done.set()), daemon=True)
        with store._lock:  # an insert or a link pass in progress on the writer's client
            worker.start()
            finished = done.wait(10)
        worker.join(30)
        assert finished, "the budget round waited for the writer's insert"
    finally:
        store.close()
