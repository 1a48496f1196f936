"""set_clean_attributes: the same span attributes as the SDK's set_attributes, table by table,
whatever the limits; the fast path only where it cannot differ."""

from __future__ import annotations

import pytest
from llm_margin.instrumentation._common import set_clean_attributes
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.trace import INVALID_SPAN

START = {"gen_ai.operation.name": "chat", "llm_margin.attempt": 0}
ATTRIBUTES = [
    {},
    {"gen_ai.response.id": "chatcmpl-1", "gen_ai.usage.input_tokens": 20},
    {"llm_margin.stream": False, "price": 1.5, "reasons": ("stop", "length")},
    {"llm_margin.attempt": 2, "customer.id": "acme-corporation"},  # overwrites a start key
]
LIMITS = [
    SpanLimits(),  # the default: fast path
    SpanLimits(max_span_attribute_length=4),  # values are cut: the SDK path
    SpanLimits(max_span_attributes=3),  # oldest dropped when full: the SDK path
]


def _spans(limits: SpanLimits, attributes: dict) -> tuple:
    tracer = TracerProvider(span_limits=limits).get_tracer("test")
    ours = tracer.start_span("chat", attributes=START)
    set_clean_attributes(ours, attributes)
    ours.end()
    sdk = tracer.start_span("chat", attributes=START)
    sdk.set_attributes(attributes)
    sdk.end()
    return ours, sdk


@pytest.mark.parametrize("limits", LIMITS, ids=["default", "value-length", "max-attributes"])
@pytest.mark.parametrize("attributes", ATTRIBUTES)
def test_same_attributes_as_set_attributes(limits: SpanLimits, attributes: dict) -> None:
    ours, sdk = _spans(limits, attributes)
    assert dict(ours.attributes) == dict(sdk.attributes)
    assert ours.dropped_attributes == sdk.dropped_attributes


def test_default_limits_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    span = TracerProvider().get_tracer("test").start_span("chat")

    def refuse(attributes: dict) -> None:
        raise AssertionError("set_attributes called")

    monkeypatch.setattr(span, "set_attributes", refuse)
    set_clean_attributes(span, {"a": "b"})
    assert span.attributes["a"] == "b"


def test_ended_span_is_left_alone() -> None:
    span = TracerProvider().get_tracer("test").start_span("chat", attributes=START)
    span.end()
    set_clean_attributes(span, {"late": "value"})
    assert dict(span.attributes) == START


def test_other_spans_use_the_public_api() -> None:
    set_clean_attributes(INVALID_SPAN, {"a": "b"})  # a non-recording span: no error
