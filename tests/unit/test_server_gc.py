"""serve keeps CPython's cycle collector off its hot path (processor/server.py)."""

from __future__ import annotations

import gc

import pytest
from llm_margin.processor.server import tune_garbage_collector


@pytest.fixture
def restore_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_startup_objects_leave_the_collector_and_young_collections_are_rarer(restore_gc):
    kept_at_startup = [{} for _ in range(1000)]  # stands for modules, price book...
    _, middle_before, old_before = gc.get_threshold()
    tune_garbage_collector()
    assert gc.get_freeze_count() >= len(kept_at_startup)
    young, middle, old = gc.get_threshold()
    assert young >= 50_000
    assert (middle, old) == (middle_before, old_before)  # older generations keep their pacing
