"""Server mode: the same processor code against a ClickHouse server over HTTP.

The server here is another processor's embedded store behind its ClickHouse HTTP interface
(writes enabled), the only modern ClickHouse this machine can run.
"""

from __future__ import annotations

import pytest
from llm_margin.processor.config import ServeConfig
from llm_margin.processor.server import Processor
from llm_margin.processor.storage import Store
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.conftest import free_port

pytestmark = pytest.mark.integration

TOKEN = "server-token-99"


@pytest.fixture
def clickhouse(tmp_path):
    """A store served over the ClickHouse HTTP interface, writable, token-protected."""
    config = ServeConfig(
        data_dir=str(tmp_path / "store"),
        otlp_grpc_port=free_port(),
        otlp_http_port=free_port(),
        clickhouse_http_port=0,
        clickhouse_http_writable=True,
        auth_token=TOKEN,
    ).validate()
    proc = Processor(config)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def url(clickhouse, password: str = TOKEN) -> str:
    return f"http://default:{password}@127.0.0.1:{clickhouse.clickhouse_http.port}"


def test_processor_writes_through_clickhouse_connect_http(clickhouse, tmp_path):
    front = Processor(
        ServeConfig(
            clickhouse_url=url(clickhouse),
            database="tenant_a",
            otlp_grpc_port=free_port(),
            otlp_http_port=free_port(),
            spool_dir=str(tmp_path / "spool"),
        ).validate()
    )
    front.start()
    try:
        assert "***" in front.store.description and TOKEN not in front.store.description
        provider = TracerProvider()
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=front.http_url + "/v1/traces"))
        )
        tracer = provider.get_tracer("server-mode")
        for i in range(5):
            with tracer.start_as_current_span("chat") as span:
                span.set_attribute("gen_ai.provider.name", "openai")
                span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
                span.set_attribute("gen_ai.usage.input_tokens", 1000 + i)
                span.set_attribute("gen_ai.usage.output_tokens", 100)
                span.set_attribute("customer.id", "acme")
                span.set_attribute("task.id", "t-1")
        provider.shutdown()
        assert front.metrics.get("stored_calls") == 5
        assert front.metrics.get("spooled_records") == 0
        # The rows are in the server's store, in the database the front processor created.
        rows = clickhouse.store.query(
            "SELECT count(), sum(input_tokens), sum(cost_usd) > 0 FROM tenant_a.llm_calls FINAL"
        ).rows
        assert rows == [(5, 5010, True)]
        tasks = clickhouse.store.query(
            "SELECT calls, cost_usd FROM tenant_a.llm_tasks FINAL WHERE task_id = 't-1'"
        ).rows
        calls_cost = clickhouse.store.query(
            "SELECT sum(cost_usd) FROM tenant_a.llm_calls FINAL"
        ).rows[0][0]
        assert tasks == [(5, calls_cost)]
        # Reports read through the same client.
        read = front.store.query("SELECT customer_id, count() FROM llm_calls FINAL GROUP BY 1")
        assert read.rows == [("acme", 5)]
    finally:
        front.stop()


def test_create_schema_off_and_column_upgrades(clickhouse):
    # A DBA owns the schema: with create_schema off nothing is created, and a missing
    # database is a clear start-up error rather than a silent empty store.
    with pytest.raises(Exception, match="(?i)database|unknown|exist"):
        Store.open(clickhouse_url=url(clickhouse), database="nobody_made_this", create_schema=False)
    assert clickhouse.store.query("EXISTS DATABASE nobody_made_this").rows == [(0,)]

    # An older release's table lacks a column: the next start adds it (ADD COLUMN IF NOT
    # EXISTS) and keeps the rows; running it again changes nothing.
    clickhouse.store.command("CREATE DATABASE old_release")
    clickhouse.store.command(
        "CREATE TABLE old_release.llm_task_spans (task_id String, trace_id String, "
        "span_id String, version UInt64) ENGINE = ReplacingMergeTree(version) "
        "ORDER BY (task_id, span_id)"
    )
    clickhouse.store.command("INSERT INTO old_release.llm_task_spans VALUES ('t', 'a', 'b', 1)")
    for _ in range(2):
        store = Store.open(clickhouse_url=url(clickhouse), database="old_release")
        store.close()
    columns = {
        r[0]
        for r in clickhouse.store.query(
            "SELECT name FROM system.columns WHERE database = 'old_release' "
            "AND table = 'llm_task_spans'"
        ).rows
    }
    assert {"outcome", "customer_id", "started_at", "ended_at"} <= columns
    assert clickhouse.store.query(
        "SELECT task_id, outcome FROM old_release.llm_task_spans"
    ).rows == [("t", "")]


def test_wrong_password_fails_fast(clickhouse):
    with pytest.raises(Exception, match="516|Authentication"):
        Store.open(clickhouse_url=url(clickhouse, "wrong-password"), database="x")


def test_create_schema_off_refuses_to_start_on_a_schema_it_cannot_write(clickhouse, tmp_path):
    """With create_schema off, a processor on a database nobody applied (or upgraded) the
    schema to used to start, answer 200 and spool every batch forever."""
    from llm_margin.processor.storage import SchemaError

    clickhouse.store.command("CREATE DATABASE dba_owned")
    clickhouse.store.command(
        "CREATE TABLE dba_owned.llm_task_spans (task_id String, trace_id String, "
        "span_id String, version UInt64) ENGINE = ReplacingMergeTree(version) "
        "ORDER BY (task_id, span_id)"
    )

    def config(database: str, create_schema: bool) -> ServeConfig:
        return ServeConfig(
            clickhouse_url=url(clickhouse),
            database=database,
            create_schema=create_schema,
            otlp_grpc_port=free_port(),
            otlp_http_port=free_port(),
            spool_dir=str(tmp_path / f"spool-{database}"),
        ).validate()

    with pytest.raises(SchemaError) as info:
        Processor(config("dba_owned", False))
    message = str(info.value)
    assert "table llm_calls is missing" in message
    assert "ALTER TABLE `llm_task_spans` ADD COLUMN IF NOT EXISTS `outcome`" in message
    # Once the schema is there (here: created by a start with create_schema on), it starts.
    Store.open(clickhouse_url=url(clickhouse), database="dba_owned").close()
    front = Processor(config("dba_owned", False))
    front.start()
    front.stop()


def test_api_query_answers_are_bounded_in_server_mode_too(clickhouse, tmp_path):
    """With a server the bound goes with each query (settings before readonly=1)."""
    import json
    import urllib.error
    import urllib.request

    front = Processor(
        ServeConfig(
            clickhouse_url=url(clickhouse),
            database="tenant_b",
            otlp_grpc_port=free_port(),
            otlp_http_port=free_port(),
            spool_dir=str(tmp_path / "spool"),
            max_result_rows=3,
        ).validate()
    )
    front.start()

    def post(sql: str) -> tuple[int, dict]:
        request = urllib.request.Request(
            front.http_url + "/api/query",
            data=json.dumps({"sql": sql}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    try:
        status, document = post("SELECT number FROM system.numbers LIMIT 10")
        assert status == 413 and document["max_result_rows"] == 3, document
        assert "--max-result-rows" in document["message"]
        status, document = post("SELECT number FROM system.numbers LIMIT 3")
        assert status == 200 and document["rows"] == [[0], [1], [2]], document
    finally:
        front.stop()
