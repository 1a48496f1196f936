"""Delivery guarantees with a real OTLP exporter sending through failures.

- ``kill -9`` under load, then restart: nothing lost (the exporter retries what was not
  acknowledged) and nothing counted twice (span-id keys, FINAL, task and roll-up totals).
- SIGTERM under load: the processor drains within its deadline and exits 0; acknowledged
  batches are stored, the rest are retried into the restarted processor.
- ClickHouse unavailable (server mode, the store's HTTP endpoint stopped): the processor keeps
  acknowledging by spooling to disk and replays into the store when it returns.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import pytest
from llm_margin.processor.remote import RemoteReader
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import bin_path, free_port, wait_until

pytestmark = pytest.mark.integration

BATCHES = 24
BATCH_SIZE = 100
SENDERS = 2


class Serve:
    """One `llm-margin serve` subprocess; ``start`` again after it died reuses ports and dir."""

    def __init__(self, data_dir: str, *extra: str) -> None:
        self.data_dir = data_dir
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.extra = list(extra)
        self.process: subprocess.Popen | None = None
        self.output = ""

    def start(self) -> Serve:
        self.process = subprocess.Popen(
            [
                bin_path("llm-margin"),
                "serve",
                "--data-dir",
                self.data_dir,
                "--otlp-grpc-port",
                str(self.grpc_port),
                "--otlp-http-port",
                str(self.http_port),
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        line = self.process.stdout.readline()
        assert "OTLP gRPC" in line, line + (self.process.stdout.read() or "")
        return self

    def finish(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        self.output = self.process.stdout.read()
        return code

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def query(self, sql: str) -> list[tuple]:
        return RemoteReader(self.http_url).query(sql).rows

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(self.http_url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        return {
            line.split()[0]: float(line.split()[1])
            for line in text.splitlines()
            if line and not line.startswith("#")
        }


@pytest.fixture
def cleanup():
    started: list[Serve] = []
    yield started
    for serve in started:
        if serve.process is not None and serve.process.poll() is None:
            serve.process.kill()
            serve.process.wait()


def llm_spans(count: int):
    """Finished SDK spans with unique ids, as an instrumented app would export them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("delivery-test")
    for i in range(count):
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attribute("gen_ai.provider.name", "openai")
            span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            span.set_attribute("gen_ai.usage.input_tokens", 100 + i % 7)
            span.set_attribute("gen_ai.usage.output_tokens", 10)
            span.set_attribute("customer.id", f"cust-{i % 3}")
            span.set_attribute("task.id", f"task-{i // 5}")
    provider.shutdown()
    return memory.get_finished_spans()


@dataclass
class Load:
    """Senders pushing batches through real OTLP/gRPC exporters, counting acknowledgements."""

    port: int
    spans: list
    acked: int = 0
    results: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> list[threading.Thread]:
        batches = [self.spans[i : i + BATCH_SIZE] for i in range(0, len(self.spans), BATCH_SIZE)]
        threads = [
            threading.Thread(target=self._send, args=(batches[k::SENDERS],), daemon=True)
            for k in range(SENDERS)
        ]
        for thread in threads:
            thread.start()
        return threads

    def _send(self, batches) -> None:
        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{self.port}", insecure=True, timeout=60)
        for batch in batches:
            result = exporter.export(batch)
            with self.lock:
                self.results.append(result)
                if result is SpanExportResult.SUCCESS:
                    self.acked += len(batch)
        exporter.shutdown()


def expected_totals(spans) -> tuple[int, int]:
    return len(spans), sum(s.attributes["gen_ai.usage.input_tokens"] for s in spans)


def assert_exactly_once(serve: Serve, spans) -> None:
    count, tokens = expected_totals(spans)
    rows = serve.query("SELECT count(), uniqExact(span_id), sum(input_tokens) FROM llm_calls FINAL")
    assert rows[0] == (count, count, tokens)
    task_calls = serve.query("SELECT sum(calls) FROM llm_tasks FINAL")[0][0]
    assert task_calls == count
    report = subprocess.run(
        [bin_path("llm-margin"), "report", "customers", "--data-dir", serve.data_dir]
        + ["--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert report.returncode == 0, report.stderr
    assert sum(int(row["calls"]) for row in json.loads(report.stdout)) == count


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_restart_under_load_loses_nothing_and_counts_nothing_twice(tmp_path, cleanup, sig):
    serve = Serve(str(tmp_path / "data"), "--drain-seconds", "5")
    cleanup.append(serve.start())
    spans = llm_spans(BATCHES * BATCH_SIZE)
    load = Load(serve.grpc_port, spans)
    threads = load.run()
    wait_until(lambda: load.acked >= 4 * BATCH_SIZE, timeout=30, message="first batches acked")

    started = time.monotonic()
    code = serve.finish(sig, timeout=20)
    if sig == signal.SIGTERM:
        assert code == 0, serve.output
        assert time.monotonic() - started < 5 + 5, "drain exceeded its deadline"
        assert "stopped" in serve.output
    acked_before_restart = load.acked
    assert acked_before_restart < len(spans), "the load finished before the signal"
    serve.start()  # same ports, same data directory; the exporters' retries land here

    for thread in threads:
        thread.join(timeout=90)
    assert all(r is SpanExportResult.SUCCESS for r in load.results), load.results
    assert load.acked == len(spans)
    # An ack lost in the kill makes the exporter send a stored batch again: do it for sure.
    resend = OTLPSpanExporter(endpoint=f"127.0.0.1:{serve.grpc_port}", insecure=True)
    assert resend.export(spans[:BATCH_SIZE]) is SpanExportResult.SUCCESS
    resend.shutdown()
    assert_exactly_once(serve, spans)


def test_store_down_spools_and_replays_in_server_mode(tmp_path, cleanup):
    """Processor B writes over HTTP into processor A's store; A goes away and comes back."""
    ch_port = free_port()
    store = Serve(
        str(tmp_path / "store"),
        "--clickhouse-http-port",
        str(ch_port),
        "--clickhouse-http-writable",
    )
    cleanup.append(store.start())
    spool_dir = tmp_path / "spool"
    front = Serve(
        str(tmp_path / "unused"),
        "--clickhouse-url",
        f"http://127.0.0.1:{ch_port}",
        "--spool-dir",
        str(spool_dir),
    )
    cleanup.append(front.start())

    spans = llm_spans(12 * BATCH_SIZE)
    first, rest = spans[: 4 * BATCH_SIZE], spans[4 * BATCH_SIZE :]
    load = Load(front.grpc_port, first)
    for thread in load.run():
        thread.join(timeout=60)
    assert load.acked == len(first)

    assert store.finish() == 0  # the ClickHouse endpoint is gone
    load = Load(front.grpc_port, rest)
    for thread in load.run():
        thread.join(timeout=60)
    # Still acknowledged: durable in the spool, not in the store.
    assert load.acked == len(rest), load.results
    spooled = front.metrics()["llm_margin_spooled_records_total"]
    assert spooled == len(rest)
    assert any(name.endswith(".spool") for name in os.listdir(spool_dir))
    with urllib.request.urlopen(front.http_url + "/healthz", timeout=10) as response:
        health = json.loads(response.read())
    assert health["status"] == "spooling" and health["spooled_records"] == spooled

    store.start()
    wait_until(
        lambda: front.metrics()["llm_margin_replayed_records_total"] == spooled,
        timeout=40,
        message="spool replayed",
    )
    assert front.metrics()["llm_margin_spool_bytes"] == 0
    assert not any(name.endswith(".spool") for name in os.listdir(spool_dir))
    assert_exactly_once(store, spans)


def test_stop_with_a_stuck_store_ends_within_drain_seconds(tmp_path):
    """The gRPC grace for in-flight exports came on top of drain_seconds (2 s here: 4.5 s)."""
    from llm_margin.processor.config import ServeConfig
    from llm_margin.processor.server import Processor

    processor = Processor(
        ServeConfig(data_dir=str(tmp_path), otlp_grpc_port=0, otlp_http_port=0, drain_seconds=2)
    )
    processor.start()
    release, entered = threading.Event(), threading.Event()
    real_insert = processor.store.insert_calls

    def stuck_insert(calls):
        entered.set()
        release.wait(30)
        real_insert(calls)

    processor.store.insert_calls = stuck_insert
    exporter = OTLPSpanExporter(
        endpoint=f"127.0.0.1:{processor.grpc.port}", insecure=True, timeout=3
    )
    results: list = []
    sender = threading.Thread(target=lambda: results.append(exporter.export(llm_spans(5))))
    sender.start()
    try:
        assert entered.wait(20)  # the export is in hand, waiting on its batch
        started = time.monotonic()
        processor.stop()
        assert time.monotonic() - started < 2 + 1.5  # 4.5 s with the bug; slack for loaded CI
    finally:
        release.set()
        sender.join(30)
        exporter.shutdown()
        processor.store.close()
    assert results != [SpanExportResult.SUCCESS]  # never acknowledged: the exporter resends
