"""The budget round does not queue behind the writer: its queries run on read-only clients,
its roll-up refresh on the store's background client."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.integration


def test_budget_queries_run_while_the_writer_holds_the_store(tmp_path):
    from llm_margin.processor.budgets import evaluator as ev
    from llm_margin.processor.budgets.config import BudgetConfig
    from llm_margin.processor.storage import Store

    # The round's roll-up refresh writes on the store's background client, its reads on the
    # read-only clients: nothing in it waits for the writer's.
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
