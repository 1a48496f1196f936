"""Read-only queries run on a pool of clients: they overlap each other and the writer, stay
read-only on every client, and a report built from concurrent queries equals one built
query by query."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from llm_margin.processor.billing import load_billing_file, store_billing
from llm_margin.processor.reports.weekly import build_weekly, to_document
from llm_margin.processor.storage import READ_CLIENTS, Store

from tests.conftest import wait_until
from tests.integration.test_html import BILLING
from tests.integration.test_reports_rollup import calls

pytestmark = pytest.mark.integration

SLOW_QUERY = "SELECT 'pool-probe', sleep(2)"
RUNNING = "SELECT count() FROM system.processes WHERE query LIKE '%pool-probe%sleep%'"


@pytest.fixture
def store(tmp_path):
    store = Store.open(data_dir=str(tmp_path / "data"))
    try:
        yield store
    finally:
        store.close()


def test_a_read_runs_while_another_read_and_the_writer_are_busy(store):
    slow = threading.Thread(target=store.query_readonly, args=(SLOW_QUERY,))
    slow.start()
    try:
        # Seen from another pooled client while it runs: the reads did not queue behind it.
        wait_until(
            lambda: store.query_readonly(RUNNING).rows[0][0] >= 2,  # the probe and this query
            timeout=10,
            message="a second read-only query while the first one runs",
        )
        # The main (writer's) client is free meanwhile too.
        assert store.query("SELECT 1").rows == [(1,)]
    finally:
        slow.join(10)


def test_many_threads_share_at_most_the_pool_and_every_client_is_read_only(store):
    results, errors = [], []

    def read(i: int) -> None:
        try:
            results.append(store.query_readonly("SELECT {i:UInt32} * 2", {"i": i}).rows[0][0])
            store.query_readonly("DROP TABLE llm_calls; SELECT 1")
        except Exception as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=read, args=(i,)) for i in range(3 * READ_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [2 * i for i in range(3 * READ_CLIENTS)]
    assert len(errors) == 3 * READ_CLIENTS and all("readonly" in e.lower() for e in errors)
    assert store._readers._opened <= READ_CLIENTS
    assert store.query("EXISTS TABLE llm_calls").rows == [(1,)]


def test_weekly_from_concurrent_queries_equals_the_sequential_one(store):
    store_billing(store, *load_billing_file(BILLING))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    store.insert_calls(calls(now))
    since, until = now - timedelta(days=7), now + timedelta(seconds=1)
    assert store.read_concurrency == READ_CLIENTS > 1
    concurrent = to_document(build_weekly(store, since, until))
    store.read_concurrency = 1
    sequential = to_document(build_weekly(store, since, until))
    assert concurrent == sequential
    assert concurrent["top_customers"] and concurrent["routes"] and concurrent["daily"]


def test_remote_queries_leave_a_read_client_for_the_budget_rounds(tmp_path):
    """/api/query callers holding every read client (queries may run 300 s) stopped the budget
    rounds, which read on the same clients: decisions went stale, then 503."""
    import json
    import time
    import urllib.request

    from llm_margin.processor.config import ServeConfig
    from llm_margin.processor.server import Processor

    from tests.conftest import free_port

    config = ServeConfig(
        data_dir=str(tmp_path / "data"), otlp_grpc_port=free_port(), otlp_http_port=free_port()
    ).validate()
    proc = Processor(config)
    proc.start()

    def remote(sql):
        body = json.dumps({"sql": sql}).encode()
        request = urllib.request.Request(proc.http_url + "/api/query", data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        urllib.request.urlopen(request, timeout=30).read()

    # The callers' queries outlast the check by far, so a read that waited for one of them
    # (>= 2.4 s) cannot be mistaken for a slow one on a loaded machine (< 2 s).
    slow = "SELECT 'pool-probe', sleep(3)"
    callers = [threading.Thread(target=remote, args=(slow,)) for _ in range(READ_CLIENTS)]
    try:
        for caller in callers:
            caller.start()
        # Seen from the main client (not a read client): three callers' queries and this one.
        wait_until(lambda: proc.store.query(RUNNING).rows[0][0] >= READ_CLIENTS)
        time.sleep(0.3)  # the fourth caller's query starts too, if it may
        started = time.monotonic()
        # How a budget round reads (processor/reports/parallel.py): not after a caller's query.
        assert proc.store.query_readonly("SELECT 1", own_sql=True).rows == [(1,)]
        assert time.monotonic() - started < 2.0
    finally:
        for caller in callers:
            caller.join()
        proc.stop()
