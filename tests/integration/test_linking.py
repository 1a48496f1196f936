"""Task linking end to end: real OTLP exporters over loopback into a running processor.

Spans are recorded with the OpenTelemetry SDK, then exported in the batches and order each case
needs with a real OTLP/gRPC exporter (the processor acknowledges only once rows are durable, so
each export returning SUCCESS means the rows are stored and linked). Costs are checked against
genai_prices.calc_price.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from decimal import Decimal

import genai_prices
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

pytestmark = pytest.mark.integration

T0 = 1_790_000_000 * 10**9  # 2026-09-21, fixed so prices are reproducible
MS = 10**6
Q = Decimal("1e-18")


class Recorder:
    """An SDK tracer whose finished spans are kept for exporting in chosen batches."""

    def __init__(self) -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = self.provider.get_tracer("test-linking")

    def call(
        self,
        *,
        task_id: str,
        model: str,
        provider: str = "openai",
        at_ms: int,
        duration_ms: int = 100,
        ok: bool = True,
        input_tokens: int = 1000,
        output_tokens: int = 100,
        parent=None,
        ours: bool = True,
        extra: dict | None = None,
    ):
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "customer.id": "acme",
            "task.id": task_id,
        }
        if ours:
            attributes |= {"gen_ai.provider.name": provider, "llm_margin.instrumentation": "t"}
        else:
            attributes["gen_ai.system"] = provider
        if ok:
            attributes |= {
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
            }
        else:
            attributes["error.type"] = "RateLimitError"
        attributes |= extra or {}
        context = set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(
            f"chat {model}",
            context=context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=T0 + at_ms * MS,
        )
        if not ok:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=T0 + (at_ms + duration_ms) * MS)
        return span

    def root(self, *, task_id: str, outcome: str, at_ms: int = 0, end_ms: int = 10_000):
        span = self.tracer.start_span(
            "llm_margin.task answer",
            attributes={
                "llm_margin.task.root": True,
                "task.id": task_id,
                "llm_margin.task.name": "answer",
                "llm_margin.task.outcome": outcome,
                "customer.id": "acme",
                "plan": "pro",
            },
            start_time=T0 + at_ms * MS,
        )
        span.end(end_time=T0 + end_ms * MS)
        return span

    def finished(self):
        return list(self.memory.get_finished_spans())


def export(processor, spans) -> None:
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{processor.grpc.port}", insecure=True)
    try:
        assert exporter.export(list(spans)) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def price(model: str, provider: str = "openai", inp: int = 1000, out: int = 100) -> Decimal:
    return (
        genai_prices.calc_price(
            genai_prices.Usage(input_tokens=inp, output_tokens=out),
            model,
            provider_id=provider,
            genai_request_timestamp=__import__("datetime").datetime.fromtimestamp(
                T0 / 1e9, tz=__import__("datetime").timezone.utc
            ),
        ).total_price
    ).quantize(Q)


def task_row(processor, task_id: str) -> dict:
    rows = processor.store.query(
        "SELECT outcome, calls, retries, fallbacks, cost_usd, wasted_cost_usd, original_route, "
        "final_route, plan FROM llm_tasks FINAL WHERE task_id = {t:String}",
        {"t": task_id},
    ).dicts()
    assert len(rows) == 1, rows
    return rows[0]


def attempts(processor, task_id: str) -> list[tuple]:
    return processor.store.query(
        "SELECT attempt, attempt_kind, route FROM llm_calls FINAL WHERE task_id = {t:String} "
        "ORDER BY attempt",
        {"t": task_id},
    ).rows


def _retry_then_fallback(rec: Recorder, task_id: str, *, ours: bool = True):
    """429 on gpt-4o-mini, retry on it fails too, fallback to gpt-4o succeeds."""
    return [
        rec.call(task_id=task_id, model="gpt-4o-mini", at_ms=0, ok=False, ours=ours),
        rec.call(task_id=task_id, model="gpt-4o-mini", at_ms=200, ok=False, ours=ours),
        rec.call(task_id=task_id, model="gpt-4o", at_ms=400, ours=ours),
    ]


def _expected(processor, task_id: str, outcome: str):
    row = task_row(processor, task_id)
    assert (row["calls"], row["retries"], row["fallbacks"]) == (3, 1, 1)
    assert row["cost_usd"] == price("gpt-4o")
    assert row["wasted_cost_usd"] == (row["cost_usd"] if outcome == "failure" else 0)
    assert (row["original_route"], row["final_route"]) == ("openai/gpt-4o-mini", "openai/gpt-4o")
    assert row["outcome"] == outcome
    assert attempts(processor, task_id) == [
        (1, "first", "openai/gpt-4o-mini"),
        (2, "retry", "openai/gpt-4o-mini"),
        (3, "fallback", "openai/gpt-4o"),
    ]
    return row


@pytest.mark.parametrize(
    "order",
    [
        [[0, 1, 2, 3]],  # one batch, in order
        [[3, 2, 1, 0]],  # one batch, reversed
        [[2], [0], [3], [1]],  # one span per batch, shuffled
        [[1, 2], [3, 0]],
    ],
    ids=["one batch", "reversed", "shuffled single batches", "two batches"],
)
def test_task_totals_do_not_depend_on_order_or_batching(processor, order):
    rec = Recorder()
    task_id = "task-order-" + "-".join("".join(map(str, b)) for b in order)
    spans = [
        *_retry_then_fallback(rec, task_id, ours=False),
        rec.root(task_id=task_id, outcome="success"),
    ]
    for batch in order:
        export(processor, [spans[i] for i in batch])
    row = _expected(processor, task_id, "success")
    assert row["plan"] == "pro"


def test_root_arriving_late_corrects_outcome_and_missing_root_is_unknown(processor):
    rec = Recorder()
    calls = _retry_then_fallback(rec, "task-late-root")
    export(processor, calls)
    _expected(processor, "task-late-root", "unknown")  # no root (yet): outcome unknown
    export(processor, [rec.root(task_id="task-late-root", outcome="failure")])
    _expected(processor, "task-late-root", "failure")  # corrected; all of it wasted


@pytest.mark.parametrize(
    ("reported", "outcome"),
    [("success", "success"), ("Rejected", "failure"), ("cancelled", "failure"),
     ("failure", "failure"), ("unknown", "unknown")],
)  # fmt: skip
def test_app_outcome_words_map_to_the_contract_outcomes(processor, reported, outcome):
    """llm_tasks.outcome is success | failure | unknown; an app's own word ('rejected') did not
    deliver a result: a failure, all of its cost wasted, the word kept in outcome_detail."""
    rec = Recorder()
    task_id = f"task-word-{reported}"
    export(
        processor,
        [*_retry_then_fallback(rec, task_id), rec.root(task_id=task_id, outcome=reported)],
    )
    _expected(processor, task_id, outcome)
    detail = processor.store.query(
        "SELECT outcome_detail FROM llm_tasks FINAL WHERE task_id = {t:String}", {"t": task_id}
    ).rows
    assert detail == [(reported,)]


_CHILD = textwrap.dedent(
    """
    import sys
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    port, task_id, model, ok, at_ms = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "ok", int(sys.argv[5])
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True))
    )
    T0, MS = int(sys.argv[6]), 10**6
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
             "gen_ai.request.model": model, "task.id": task_id, "customer.id": "acme",
             "llm_margin.instrumentation": "child", "llm_margin.attempt": 1,
             "llm_margin.attempt_kind": "first"}
    if ok:
        attrs |= {"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}
    span = provider.get_tracer("child").start_span(
        "chat " + model, kind=SpanKind.CLIENT, attributes=attrs, start_time=T0 + at_ms * MS)
    if not ok:
        span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=T0 + (at_ms + 100) * MS)
    provider.shutdown()
    """
)


def test_one_task_across_processes_and_traces(processor):
    """Each process numbers its own attempts 'first'; the processor numbers them across."""
    task_id = "task-multi-process"
    for model, ok, at_ms in (
        ("gpt-4o-mini", "fail", 0),
        ("gpt-4o-mini", "fail", 200),
        ("gpt-4o", "ok", 400),
    ):
        subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(processor.grpc.port),
                task_id,
                model,
                ok,
                str(at_ms),
                str(T0),
            ],
            check=True,
            timeout=60,
            env={**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "50"},
        )
    traces = processor.store.query(
        "SELECT uniqExact(trace_id) FROM llm_calls FINAL WHERE task_id = {t:String}",
        {"t": task_id},
    ).rows[0][0]
    assert traces == 3
    rec = Recorder()
    export(processor, [rec.root(task_id=task_id, outcome="success")])
    _expected(processor, task_id, "success")


def test_sdk_http_attempts_are_retries_of_one_call_not_calls(processor):
    """httpx2 spans (one per HTTP attempt) under another instrumentation's call span."""
    rec = Recorder()
    call = rec.tracer.start_span(
        "chat gpt-4o-mini",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 100,
            "task.id": "task-http-attempts",
        },
        start_time=T0,
    )
    for n, status in enumerate((429, 500, 200)):
        http = rec.tracer.start_span(
            "POST",
            context=set_span_in_context(call),
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": "POST", "http.response.status_code": status},
            start_time=T0 + n * 10 * MS,
        )
        http.end(end_time=T0 + (n * 10 + 5) * MS)
    call.end(end_time=T0 + 50 * MS)
    export(processor, rec.finished())
    rows = processor.store.query(
        "SELECT sdk_retries, cost_usd FROM llm_calls FINAL WHERE task_id = 'task-http-attempts'"
    ).rows
    assert rows == [(2, price("gpt-4o-mini"))]
    assert task_row(processor, "task-http-attempts")["calls"] == 1


def test_nested_spans_of_one_request_are_priced_once(processor):
    """Ours around anthropic's native span around another instrumentation's: one row, ours."""
    rec = Recorder()
    root = rec.root(task_id="task-nested", outcome="success")
    ours = rec.tracer.start_span(
        "chat claude-3-5-haiku-20241022",
        context=set_span_in_context(root),
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-3-5-haiku-20241022",
            "task.id": "task-nested",
            "customer.id": "acme",
            "llm_margin.instrumentation": "llm-margin",
        },
        start_time=T0,
    )
    ours.set_attribute("llm_margin.call_id", format(ours.get_span_context().span_id, "016x"))
    native = rec.call(
        task_id="task-nested",
        provider="anthropic",
        model="claude-3-5-haiku-20241022",
        at_ms=1,
        duration_ms=90,
        parent=ours,
        ours=False,
        input_tokens=999_000,  # a wrong count: must not be what is stored
        extra={"http.request.resend_count": 1},
    )
    rec.call(
        task_id="task-nested",
        provider="anthropic",
        model="claude-3-5-haiku-20241022",
        at_ms=2,
        duration_ms=80,
        parent=native,
        ours=False,
    )
    ours.set_attribute("gen_ai.usage.input_tokens", 1000)
    ours.set_attribute("gen_ai.usage.output_tokens", 100)
    ours.end(end_time=T0 + 95 * MS)
    export(processor, rec.finished())
    rows = processor.store.query(
        "SELECT span_id, input_tokens, cost_usd, sdk_retries, source FROM llm_calls FINAL "
        "WHERE task_id = 'task-nested'"
    ).dicts()
    assert len(rows) == 1, rows
    assert rows[0]["span_id"] == format(ours.get_span_context().span_id, "016x")
    assert (rows[0]["input_tokens"], rows[0]["sdk_retries"], rows[0]["source"]) == (
        1000,
        1,
        "llm-margin",
    )
    assert rows[0]["cost_usd"] == price("claude-3-5-haiku-20241022", "anthropic")
    assert task_row(processor, "task-nested")["calls"] == 1
    assert processor.metrics.get("nested_llm_spans") == 2


@pytest.fixture
def windowed_processor(tmp_path):
    """A processor that waits 3 s for a task's root before finalising it as unknown (long
    enough that a loaded CI machine checks the held-back state within it)."""
    from llm_margin.processor.config import ServeConfig
    from llm_margin.processor.server import Processor

    from tests.conftest import free_port

    config = ServeConfig(
        data_dir=str(tmp_path / "data"),
        otlp_grpc_port=free_port(),
        otlp_http_port=free_port(),
        task_finalize_seconds=3.0,
    ).validate()
    proc = Processor(config)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def test_missing_root_is_finalised_after_the_window_then_corrected(windowed_processor):
    from tests.conftest import wait_until

    processor = windowed_processor
    rec = Recorder()
    export(processor, _retry_then_fallback(rec, "task-no-root"))

    def rows():
        return processor.store.query(
            "SELECT outcome FROM llm_tasks FINAL WHERE task_id = 'task-no-root'"
        ).rows

    assert rows() == []  # still waiting for its root
    wait_until(rows, timeout=15, message="task finalised by the sweep")
    _expected(processor, "task-no-root", "unknown")
    assert processor.task_finalizer.finalized >= 1
    export(processor, [rec.root(task_id="task-no-root", outcome="success")])
    _expected(processor, "task-no-root", "success")  # the late root corrects it


def test_a_root_present_is_linked_at_once_even_with_a_window(windowed_processor):
    rec = Recorder()
    export(
        windowed_processor,
        [
            *_retry_then_fallback(rec, "task-rooted"),
            rec.root(task_id="task-rooted", outcome="failure"),
        ],
    )
    _expected(windowed_processor, "task-rooted", "failure")
