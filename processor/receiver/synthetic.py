"""Synthetic OTLP export requests: the benchmark's and the tests' traffic, built in one place.

Spans carry our instrumentation's attributes (GenAI semantic conventions + baggage keys), so
they take the same path through decode -> normalise -> price -> store as real ones.
"""

from __future__ import annotations

import time
from typing import Any

from llm_margin import attributes as A
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

MODELS = (("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku-20241022"))


def span_id(n: int) -> bytes:
    """A deterministic, unique 8-byte span id for span number ``n`` (n >= 0)."""
    return (n + 1).to_bytes(8, "big")


def _kv(key: str, value: Any) -> KeyValue:
    return KeyValue(key=key, value=_any(value))


def _any(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):  # an array attribute (llm_margin.sub_usage.*)
        return AnyValue(array_value=ArrayValue(values=[_any(v) for v in value]))
    return AnyValue(string_value=str(value))


def llm_attributes(n: int, customers: int = 20) -> dict[str, Any]:
    provider, model = MODELS[n % len(MODELS)]
    return {
        A.GEN_AI_OPERATION_NAME: "chat",
        A.GEN_AI_PROVIDER_NAME: provider,
        A.GEN_AI_REQUEST_MODEL: model,
        A.GEN_AI_RESPONSE_MODEL: model,
        A.GEN_AI_USAGE_INPUT_TOKENS: 100 + n % 900,
        A.GEN_AI_USAGE_OUTPUT_TOKENS: 20 + n % 300,
        A.CUSTOMER_ID: f"cust-{n % customers}",
        A.PLAN: "pro",
        A.FEATURE: "chat",
        A.TASK_ID: f"task-{n // 4}",
        # Our instrumentation numbers a task's attempts; four calls per task, all succeeding.
        A.ATTEMPT: n % 4 + 1,
        A.ATTEMPT_KIND: "first",
    }


def http_attributes(n: int) -> dict[str, Any]:
    """A typical non-LLM span (an HTTP server span) that the processor must skip cheaply."""
    return {
        "http.request.method": "GET",
        "url.path": f"/api/items/{n}",
        "http.response.status_code": 200,
        "server.address": "app.internal",
        "customer.id": f"cust-{n % 20}",
    }


def make_span(n: int, attributes: dict[str, Any], *, now_ns: int | None = None) -> Span:
    start = (now_ns or time.time_ns()) - 2_000_000_000
    return Span(
        trace_id=(n // 4 + 1).to_bytes(16, "big"),
        span_id=span_id(n),
        name="chat " + str(attributes.get(A.GEN_AI_REQUEST_MODEL, "GET")),
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start,
        end_time_unix_nano=start + 350_000_000,
        attributes=[_kv(k, v) for k, v in attributes.items()],
    )


def make_request(
    first: int, count: int, *, llm: bool = True, bad: frozenset[int] = frozenset()
) -> ExportTraceServiceRequest:
    """An export request with spans ``first .. first+count-1``.

    ``bad``: span numbers given a negative token count (rejected individually).
    """
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(_kv("service.name", "synthetic"))
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "llm_margin.synthetic"
    now = time.time_ns()
    for n in range(first, first + count):
        attrs = llm_attributes(n) if llm else http_attributes(n)
        if n in bad:
            attrs[A.GEN_AI_USAGE_INPUT_TOKENS] = -5
        scope.spans.append(make_span(n, attrs, now_ns=now))
    return request
