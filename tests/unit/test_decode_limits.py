"""Per-span storability checks, and that a bad span never costs the rest of its batch."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from llm_margin import attributes as A
from llm_margin.processor.metrics import Metrics
from llm_margin.processor.pipeline import Pipeline
from llm_margin.processor.pricing import default_price_book
from llm_margin.processor.receiver.limits import (
    MAX_TEXT_CHARS,
    MAX_TOKENS_PER_CALL,
    check_storable,
)
from llm_margin.processor.receiver.synthetic import llm_attributes, make_request, make_span
from llm_margin.processor.records import CallRecord

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def call(**changes) -> CallRecord:
    record = CallRecord(ts=NOW, trace_id="t", span_id="s")
    for name, value in changes.items():
        setattr(record, name, value)
    return record


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"input_tokens": -1}, "input_tokens"),
        ({"output_tokens": 2**64}, "output_tokens"),
        # past any real call: a few such counts would wrap every sum of the column
        ({"input_tokens": MAX_TOKENS_PER_CALL + 1}, "input_tokens"),
        ({"cache_read_tokens": 2**63 - 1}, "cache_read_tokens"),
        ({"reasoning_tokens": 2**64 - 1}, "reasoning_tokens"),
        ({"version": 2**64}, "version"),
        ({"attempt": 2**32}, "attempt"),
        # UInt32 columns: a count past them would be stored wrapped (and priced, not stored)
        ({"web_search_calls": 2**32}, "web_search_calls"),
        ({"file_search_calls": -1}, "file_search_calls"),
        ({"latency_ms": float("nan")}, "latency_ms"),
        ({"latency_ms": float("inf")}, "latency_ms"),
        ({"cost_usd": Decimal(10) ** 20}, "cost_usd"),
        ({"cost_usd": Decimal("NaN")}, "cost_usd"),
        ({"request_model": "m" * (MAX_TEXT_CHARS + 1)}, "request_model"),
        ({"ts": datetime(2554, 1, 1, tzinfo=timezone.utc)}, "ts"),
        ({"ts": datetime(1969, 12, 31, tzinfo=timezone.utc)}, "ts"),
    ],
)
def test_out_of_range_fields_are_named(changes, field):
    with pytest.raises(ValueError, match=field):
        check_storable(call(**changes))


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"input_tokens": MAX_TOKENS_PER_CALL, "attempt": 2**32 - 1, "version": 2**64 - 1},
        {"web_search_calls": 2**32 - 1, "file_search_calls": 2**32 - 1},
        {"cost_usd": Decimal("99999999999999999999.999999999999999999")},
        {"request_model": "m" * MAX_TEXT_CHARS, "stream": True},
    ],
)
def test_values_the_schema_holds_pass(changes):
    check_storable(call(**changes))


def test_bad_spans_are_rejected_one_by_one():
    request = make_request(0, 4)
    spans = request.resource_spans[0].scope_spans[0].spans
    weird = [
        {A.GEN_AI_USAGE_INPUT_TOKENS: 1e30},  # a double far past UInt64
        {A.GEN_AI_USAGE_OUTPUT_TOKENS: "lots"},  # wrong type
        {A.GEN_AI_REQUEST_MODEL: "x" * 100_000},  # oversized value
        {A.GEN_AI_USAGE_INPUT_TOKENS: -3},  # negative
    ]
    for n, extra in enumerate(weird):
        spans.append(make_span(100 + n, dict(llm_attributes(100 + n), **extra)))
    metrics = Metrics()
    out = Pipeline(default_price_book(), metrics).extract(request)
    assert len(out.calls) == 4 and out.rejected == 4
    assert metrics.get("rejected_spans") == 4
    message = out.error_message()
    for word in ("input_tokens out of range", "lots", "characters (limit", "negative"):
        assert word in message, message


def test_spans_without_proper_ids_are_rejected_not_merged():
    """Rows are keyed by span id: two calls with an empty (or zero, or short) span id used to
    be stored as one row, the other call silently lost."""
    request = make_request(0, 2)
    spans = request.resource_spans[0].scope_spans[0].spans
    for n, (trace_id, span_id) in enumerate(
        [
            (None, b""),
            (None, b""),
            (None, bytes(8)),
            (None, b"\xab\xcd"),
            (b"\x01" * 8, None),
            (bytes(16), None),
        ]
    ):
        span = make_span(200 + n, llm_attributes(200 + n))
        if trace_id is not None:
            span.trace_id = trace_id
        if span_id is not None:
            span.span_id = span_id
        spans.append(span)
    out = Pipeline(default_price_book(), Metrics()).extract(request)
    assert len(out.calls) == 2 and out.rejected == 6
    message = "; ".join(out.errors)
    for words in ("span id is 0 bytes, not 8", "span id is all zeros", "trace id is 8 bytes"):
        assert words in message, message
