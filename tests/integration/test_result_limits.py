"""The bound of one answer on the processor's read-only SQL paths (`--max-result-rows`,
`--max-result-bytes`): real `serve` processes on loopback with a small bound, real chDB.

A user's query past the bound is refused clearly (413, naming the bound and what to do) and
the processor keeps serving; the project's own commands that read many rows of a period
(`reprice --dry-run` pages, `export` aggregates) still work over more calls than the bound.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from tests.conftest import bin_path, free_port, running_serve

pytestmark = pytest.mark.integration

CUSTOMERS = ("acme", "globex", "initech")
CALLS_PER_CUSTOMER = 4
CALLS = len(CUSTOMERS) * CALLS_PER_CUSTOMER  # 12: more than the bound of 5 rows
MAX_ROWS = 5
PERIOD = ["--since", "2026-11-01", "--until", "2026-12-01"]


def store_calls(data_dir: str) -> None:
    """CALLS priced calls of November 2026, spread over CUSTOMERS."""
    from llm_margin.processor.pricing import PriceBook
    from llm_margin.processor.records import CallRecord
    from llm_margin.processor.storage import Store

    book = PriceBook()
    store = Store.open(data_dir=data_dir)
    try:
        store.insert_calls(
            [
                book.apply(
                    CallRecord(
                        ts=datetime(2026, 11, 20, n, tzinfo=timezone.utc),
                        trace_id=f"{n:032x}",
                        span_id=f"{n:016x}",
                        customer_id=CUSTOMERS[n % len(CUSTOMERS)],
                        provider="openai",
                        request_model="gpt-4o-mini",
                        input_tokens=1000 + n,
                        output_tokens=100,
                        version=1,
                    )
                )
                for n in range(CALLS)
            ]
        )
    finally:
        store.close()


def start_serve(data_dir: str, *bounds: str):
    http_port, clickhouse_port = free_port(), free_port()
    options = (
        "--otlp-grpc-port", str(free_port()),
        "--otlp-http-port", str(http_port),
        "--clickhouse-http-port", str(clickhouse_port),
        *bounds,
    )  # fmt: skip
    return running_serve(data_dir, *options), {
        "data_dir": data_dir,
        "http_url": f"http://127.0.0.1:{http_port}",
        "clickhouse_url": f"http://127.0.0.1:{clickhouse_port}",
    }


@pytest.fixture(scope="module")
def bounded(tmp_path_factory) -> Iterator[dict]:
    """`serve` over CALLS stored calls, answering at most MAX_ROWS rows."""
    data_dir = str(tmp_path_factory.mktemp("bounded") / "data")
    store_calls(data_dir)
    context, info = start_serve(data_dir, "--max-result-rows", str(MAX_ROWS))
    with context as process:
        yield {**info, "process": process}


def cli(data_dir: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [bin_path("llm-margin"), *args, "--data-dir", data_dir],
        capture_output=True,
        text=True,
        timeout=120,
    )


def sql_json(data_dir: str, text: str) -> list[dict]:
    done = cli(data_dir, "sql", "--format", "json", text)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def post_query(http_url: str, sql: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        http_url + "/api/query",
        data=json.dumps({"sql": sql}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def clickhouse_get(url: str, query: str, **settings: str) -> tuple[int, str]:
    params = urllib.parse.urlencode({"database": "llm_margin", "query": query, **settings})
    try:
        with urllib.request.urlopen(f"{url}/?{params}", timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_user_sql_past_the_bound_is_refused_clearly_and_serve_goes_on(bounded):
    data_dir = bounded["data_dir"]
    refused = cli(data_dir, "sql", "SELECT * FROM llm_calls")
    assert refused.returncode == 2
    message = refused.stderr
    assert "413" in message and f"{MAX_ROWS:,} rows" in message, message
    for advice in ("LIMIT", "llm-margin export", "--max-result-rows", "max_result_rows"):
        assert advice in message, (advice, message)
    assert "Traceback" not in message
    # the same over /api/query itself: 413 with the bound in the body
    status, document = post_query(bounded["http_url"], "SELECT * FROM llm_calls")
    assert status == 413 and document["max_result_rows"] == MAX_ROWS, document
    assert "result limit" in document["message"]
    # the processor is still there, and answers within the bound
    assert sql_json(data_dir, "SELECT count() AS n FROM llm_calls") == [{"n": CALLS}]
    assert len(sql_json(data_dir, f"SELECT * FROM llm_calls LIMIT {MAX_ROWS}")) == MAX_ROWS
    assert bounded["process"].poll() is None


def test_reprice_dry_run_reads_a_period_of_more_calls_than_the_bound(bounded):
    data_dir = bounded["data_dir"]
    dry = cli(data_dir, "reprice", "--dry-run", "--format", "json", *PERIOD)
    assert dry.returncode == 0, dry.stderr
    [summary] = json.loads(dry.stdout)
    assert summary["calls"] == CALLS
    [stored] = sql_json(data_dir, "SELECT toString(sum(cost_usd)) AS usd FROM llm_calls FINAL")
    assert Decimal(summary["charged_usd"]) == Decimal(stored["usd"])
    assert summary["changed_calls"] == 0  # the same book: every call restates to itself


def test_export_of_a_period_of_more_calls_than_the_bound_aggregates_in_sql(bounded):
    done = cli(bounded["data_dir"], "export", "--format", "json", *PERIOD)
    assert done.returncode == 0, done.stderr
    lines = json.loads(done.stdout)
    assert sorted(line["customer_id"] for line in lines) == sorted(CUSTOMERS)
    assert sum(line["calls"] for line in lines) == CALLS


def test_clickhouse_http_interface_past_the_bound_answers_413(bounded):
    url = bounded["clickhouse_url"]
    status, body = clickhouse_get(url, "SELECT * FROM llm_calls")
    assert status == 413, body
    assert body.startswith("Code: 396.") and "--max-result-rows" in body, body
    status, body = clickhouse_get(url, f"SELECT span_id FROM llm_calls LIMIT {MAX_ROWS}")
    assert status == 200 and len(body.splitlines()) == MAX_ROWS, body
    # a client's own tighter bound stays its own, overflow mode included
    status, body = clickhouse_get(
        url,
        "SELECT number FROM system.numbers LIMIT 100",
        max_result_rows="3",
        max_result_bytes="1000000",
        result_overflow_mode="break",
        max_block_size="1",
    )
    assert status == 200 and 1 <= len(body.splitlines()) < 100, body
    # it cannot lift the processor's
    status, body = clickhouse_get(url, "SELECT * FROM llm_calls", max_result_rows="1000")
    assert status == 413, body


def test_a_bytes_bound_alone_refuses_a_wide_answer_and_reprice_pages_below_it(tmp_path):
    data_dir = str(tmp_path / "data")
    store_calls(data_dir)
    context, info = start_serve(data_dir, "--max-result-rows", "0", "--max-result-bytes", "1024")
    with context:
        refused = cli(data_dir, "sql", "SELECT * FROM llm_calls")
        assert refused.returncode == 2 and "1 KiB" in refused.stderr, refused.stderr
        dry = cli(data_dir, "reprice", "--dry-run", "--format", "json", *PERIOD)
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout)[0]["calls"] == CALLS
