"""The pipeline's key-only prefilter never skips a span normalize would keep (parity)."""

from __future__ import annotations

import pytest
from llm_margin import attributes as A
from llm_margin.processor import normalize
from llm_margin.processor.metrics import Metrics
from llm_margin.processor.pipeline import Pipeline, may_be_priced
from llm_margin.processor.pricing import default_price_book
from llm_margin.processor.receiver.synthetic import http_attributes, llm_attributes, make_span

CASES = [
    llm_attributes(1),
    http_attributes(1),
    {A.IS_TASK: True, A.TASK_ID: "t"},
    {A.IS_TASK: False, "http.route": "/x"},
    {"gen_ai.system": "openai"},
    {"llm.request.model": "gpt-4o"},
    {"gen_ai.usage.prompt_tokens": 5},
    {"db.system": "postgresql", "db.statement": "SELECT 1"},
    {},
] + [{key: "x"} for key in sorted(normalize._LLM_MARKERS)]


@pytest.mark.parametrize("attributes", CASES)
def test_prefilter_agrees_with_span_kind(attributes):
    span = make_span(1, attributes)
    kind = normalize.span_kind(normalize.attributes_to_dict(span.attributes))
    if kind is not None:
        assert may_be_priced(span), attributes
    if not may_be_priced(span):
        assert kind is None


def test_skipped_spans_are_counted():
    from llm_margin.processor.receiver.synthetic import make_request

    metrics = Metrics()
    pipeline = Pipeline(default_price_book(), metrics)
    out = pipeline.extract(make_request(0, 7, llm=False))
    assert (len(out.calls), metrics.get("skipped_spans"), metrics.get("received_spans")) == (
        0,
        7,
        7,
    )


@pytest.mark.parametrize("attributes", CASES)
def test_bytes_prefilter_never_skips_a_candidate(attributes):
    from llm_margin.processor.pipeline import may_hold_candidates
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.append(make_span(1, attributes))
    if may_be_priced(request.resource_spans[0].scope_spans[0].spans[0]):
        assert may_hold_candidates(request.SerializeToString())


def test_raw_skip_counts_like_the_span_by_span_path():
    from llm_margin.processor.receiver.synthetic import make_request

    for llm in (False, True):
        request = make_request(0, 9, llm=llm)
        fast, slow = Metrics(), Metrics()
        a = Pipeline(default_price_book(), fast).extract(request, request.SerializeToString())
        b = Pipeline(default_price_book(), slow).extract(request)
        assert len(a.calls) == len(b.calls) == (9 if llm else 0)
        for name in ("received_spans", "skipped_spans", "received_llm_spans"):
            assert fast.get(name) == slow.get(name), name


def test_calls_our_budget_blocked_are_not_calls():
    """The official genai instrumentations record our BudgetExceeded as a failed call span;
    the request never left the app, so it is skipped (counted), not stored as a call."""
    from llm_margin.processor.receiver.synthetic import make_request

    request = make_request(0, 3)
    spans = request.resource_spans[0].scope_spans[0].spans
    blocked = spans[0].attributes.add()
    blocked.key, blocked.value.string_value = "error.type", "llm_margin.budget.BudgetExceeded"
    other = spans[1].attributes.add()
    other.key, other.value.string_value = "error.type", "openai.RateLimitError"
    metrics = Metrics()
    out = Pipeline(default_price_book(), metrics).extract(request)
    assert sorted(c.error_type for c in out.calls) == ["", "openai.RateLimitError"]
    assert metrics.get("skipped_spans") == 1
