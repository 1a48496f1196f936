"""The finalisation sweep (linking.TaskFinalizer, clickhouse/link_open_tasks.sql): each sweep
reads what arrived since the previous one, not the stored history, and still finds every due
task, also after a restart and for a call whose insert was still running during a sweep."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal

import clickhouse_connect
import pytest
from llm_margin.clickhouse import read_sql
from llm_margin.processor.linking import TaskFinalizer
from llm_margin.processor.records import CALL_COLUMNS, CallRecord
from llm_margin.processor.storage import Store

pytestmark = pytest.mark.integration

HOUR = datetime(2026, 10, 5, 10, 0)
WINDOW = 0.5  # seconds; linking right after an insert comes well inside it


def _call(n: int, task: str) -> CallRecord:
    return CallRecord(
        ts=HOUR + timedelta(seconds=n % 3600),
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        task_id=task,
        customer_id="acme",
        workspace_id="ws_1",
        route="openai/gpt-4o",
        status="ok",
        latency_ms=10.0,
        cost_usd=Decimal("0.000123"),
        priced=True,
        version=1,
    )


@pytest.fixture
def store(tmp_path):
    store = Store.open(data_dir=str(tmp_path / "data"))
    store.task_finalize_seconds = WINDOW
    yield store
    store.close()


def _store_held_back(store: Store, *calls: CallRecord) -> None:
    store.insert_calls(list(calls))
    store.link_tasks({c.task_id for c in calls})  # no root: held back for the window


def _store_stamped(store: Store, call: CallRecord, inserted_at: datetime) -> None:
    """A call whose insert the store stamped at ``inserted_at`` (as a slow insert that began
    then and became visible now)."""
    store.insert_rows("llm_calls", [(*call.row(), inserted_at)], [*CALL_COLUMNS, "inserted_at"])


def _store_now(store: Store) -> datetime:
    return store.query("SELECT now64(3, 'UTC')").rows[0][0].replace(tzinfo=None)


def _linked(store: Store, task: str) -> list[tuple]:
    return store.query(
        "SELECT calls, outcome FROM llm_tasks FINAL WHERE task_id = {t:String}", {"t": task}
    ).rows


def test_a_sweep_reads_neither_old_calls_nor_old_tasks(store):
    # A store with history: 30,000 calls in old parts, 60,000 linked tasks. The sweep used to
    # scan inserted_at of every call and hash every task id each time (every window/4).
    store.command("SYSTEM STOP MERGES llm_calls")  # a merge would rewrite old rows: read once
    store.command("SYSTEM STOP MERGES llm_tasks")
    for part in range(3):
        store.insert_calls([_call(part * 10_000 + n, f"old-{n // 4}") for n in range(10_000)])
    store.insert_rows("llm_tasks", [(f"old-{n}",) for n in range(60_000)], ["task_id"])
    time.sleep(3.2)  # old parts' modification_time (whole seconds) well before the next range
    finalizer = TaskFinalizer(store, WINDOW, overlap_seconds=0.5)
    assert finalizer.sweep() == 0  # the first sweep reads the whole lookback
    # New calls: a task without a root, and tasks with rows spread over llm_tasks' key (their
    # linking rewrites them at once); a lookup by key alone would read a granule for each.
    _store_held_back(store, _call(900_001, "t-new"))
    _store_held_back(store, *(_call(900_002 + n, f"old-{n * 14_000 + 100}") for n in range(5)))
    time.sleep(WINDOW + 0.2)
    store.command("SET max_rows_to_read = 20000")  # below the old calls, over 2 granules
    try:
        assert finalizer.sweep() == 1
    finally:
        store.command("SET max_rows_to_read = 0")
    assert _linked(store, "t-new") == [(1, "unknown")]


def test_each_sweep_reads_from_the_previous_one_and_a_restart_reads_the_lookback(store):
    store.task_finalize_seconds = 1.0  # long enough that linking at insert is held back
    finalizer = TaskFinalizer(store, 1.0, overlap_seconds=0.5)
    _store_held_back(store, _call(1, "t-a"))
    assert finalizer.sweep() == 0  # not due yet
    time.sleep(0.6)
    _store_held_back(store, _call(2, "t-a"))  # its newest call arrives between sweeps
    assert _linked(store, "t-a") == []
    time.sleep(1.1)
    assert finalizer.sweep() == 1
    assert _linked(store, "t-a") == [(2, "unknown")]
    time.sleep(1.1)
    assert finalizer.sweep() == 0  # linked once
    assert finalizer.finalized == 1
    # Stamped a minute ago while this finaliser ran (a task held back when the processor
    # stopped, stored by another one): before its range, so it is not re-read; a restarted
    # finaliser's first sweep reads the whole lookback and finds it.
    _store_stamped(store, _call(3, "t-b"), _store_now(store) - timedelta(minutes=1))
    assert finalizer.sweep() == 0
    restarted = TaskFinalizer(store, 1.0, overlap_seconds=0.5)
    assert restarted.sweep() == 1
    assert _linked(store, "t-b") == [(1, "unknown")]
    assert restarted.sweep() == 0


def test_a_call_visible_only_after_a_sweep_is_found_by_the_next(store):
    finalizer = TaskFinalizer(store, WINDOW, overlap_seconds=5.0)
    assert finalizer.sweep() == 0
    until = finalizer._until
    # An insert stamped before the sweep's end that became visible after the sweep: inside the
    # overlap it is read by the next sweep; before it, not (nothing is re-read for ever).
    _store_stamped(store, _call(1, "t-slow"), until - timedelta(seconds=4))
    _store_stamped(store, _call(2, "t-older"), until - timedelta(seconds=6))
    assert finalizer.sweep() == 1
    assert _linked(store, "t-slow") == [(1, "unknown")]
    assert _linked(store, "t-older") == []


def test_a_store_whose_parts_system_parts_does_not_list_is_read_whole(store):
    # On a cluster llm_calls is a Distributed table: system.parts lists no part of it, and the
    # sweep must then read every part, not none. A Merge table over the calls stands in.
    store.insert_calls([_call(1, "t-far")])
    store.command("RENAME TABLE llm_calls TO llm_calls_shard")
    store.command(
        "CREATE TABLE llm_calls AS llm_calls_shard "
        "ENGINE = Merge(currentDatabase(), '^llm_calls_shard$')"
    )
    time.sleep(WINDOW + 0.1)
    assert TaskFinalizer(store, WINDOW).sweep() == 1
    assert _linked(store, "t-far") == [(1, "unknown")]


def test_calls_whose_parts_merge_during_a_sweep_are_still_read(store, tmp_path, monkeypatch):
    """A merge that ends between the sweep listing llm_calls' parts and reading them replaces
    the listed parts with one the list does not name: the sweep read none of their calls, and
    the next sweep's range starts after them, so their task was never finalised. Here the
    listing is slowed (the shipped query, with a sleep in its scan of system.parts) while
    another connection merges the calls' parts."""
    finalizer = TaskFinalizer(store, WINDOW, overlap_seconds=0.1)
    assert finalizer.sweep() == 0
    store.command("SYSTEM STOP MERGES llm_calls")
    for n in range(3):  # one part each
        _store_held_back(store, _call(n + 1, "t-merged"))
    time.sleep(WINDOW + 0.2)

    listing = "WHERE database = currentDatabase() AND table = 'llm_calls' AND active"
    sweep_sql = read_sql("link_open_tasks.sql")
    assert sweep_sql.count(listing) == 1
    slowed = sweep_sql.replace(listing, f"{listing} AND sleep(0.8) = 0")
    query = store.query
    monkeypatch.setattr(
        store,
        "query",
        lambda sql, parameters=None: query(slowed if sql == sweep_sql else sql, parameters),
    )
    merger = clickhouse_connect.get_client(
        interface="chdb", path=str(tmp_path / "data"), database=store._database()
    )

    def merge() -> None:
        time.sleep(0.3)  # the listing has begun
        merger.command("SYSTEM START MERGES llm_calls")
        merger.command("OPTIMIZE TABLE llm_calls FINAL")

    thread = threading.Thread(target=merge)
    thread.start()
    try:
        found = finalizer.sweep()
    finally:
        thread.join()
    parts = store.query(
        "SELECT count() FROM system.parts "
        "WHERE database = currentDatabase() AND table = 'llm_calls' AND active"
    ).rows[0][0]
    assert parts == 1  # merged while the sweep ran
    time.sleep(0.3)
    found += finalizer.sweep()
    assert found == 1
    assert _linked(store, "t-merged") == [(3, "unknown")]
