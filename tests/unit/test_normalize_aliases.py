"""Which attribute spelling wins, and how values are read: one row per rule of call_from_span.

Precedence: within each group of spellings the most specific key wins; an empty string or an
unset value counts as absent and the next spelling is used. Text values are cut to their limit;
token counts accept ints, floats and numeric strings and reject anything else by name.
"""

from __future__ import annotations

import pytest
from llm_margin import attributes as A
from llm_margin.processor.normalize import attributes_to_dict, call_from_span, span_kind
from llm_margin.processor.receiver.synthetic import make_span
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

BASE = {A.GEN_AI_OPERATION_NAME: "chat"}


def _call(attributes: dict, *, extra: list[KeyValue] = ()):
    span = make_span(7, {**BASE, **attributes})
    span.attributes.extend(extra)
    return call_from_span(span, attributes_to_dict(span.attributes))


# (attributes, field, expected)
PRECEDENCE = [
    # provider: provider.name > system > llm.vendor, canonicalised
    ({"gen_ai.provider.name": "openai", "gen_ai.system": "anthropic"}, "provider", "openai"),
    ({"gen_ai.system": "Anthropic", "llm.vendor": "openai"}, "provider", "anthropic"),
    ({"gen_ai.provider.name": "", "gen_ai.system": "groq"}, "provider", "groq"),
    ({"llm.vendor": " Together_AI "}, "provider", "together"),
    ({"gen_ai.system": "acme-llm"}, "provider", "acme-llm"),
    ({"gen_ai.system": 5}, "provider", "5"),
    # models
    ({"gen_ai.request.model": "a", "llm.request.model": "b"}, "request_model", "a"),
    ({"gen_ai.request.model": "", "llm.request.model": "b"}, "request_model", "b"),
    ({"gen_ai.response.model": "a", "llm.response.model": "b"}, "response_model", "a"),
    ({"llm.response.model": "b"}, "response_model", "b"),
    # input tokens: input_tokens > prompt_tokens > llm.usage.prompt_tokens
    (
        {
            "gen_ai.usage.input_tokens": 1,
            "gen_ai.usage.prompt_tokens": 2,
            "llm.usage.prompt_tokens": 3,
        },
        "input_tokens",
        1,
    ),
    ({"gen_ai.usage.prompt_tokens": 2, "llm.usage.prompt_tokens": 3}, "input_tokens", 2),
    ({"gen_ai.usage.input_tokens": "", "llm.usage.prompt_tokens": 3}, "input_tokens", 3),
    ({"gen_ai.usage.input_tokens": 0, "llm.usage.prompt_tokens": 3}, "input_tokens", 0),
    (
        {"gen_ai.usage.output_tokens": 4, "gen_ai.usage.completion_tokens": 5},
        "output_tokens",
        4,
    ),
    (
        {"gen_ai.usage.completion_tokens": 5, "llm.usage.completion_tokens": 6},
        "output_tokens",
        5,
    ),
    ({"llm.usage.completion_tokens": 6}, "output_tokens", 6),
    # cache read / write / 1h, reasoning
    (
        {
            "gen_ai.usage.cache_read.input_tokens": 7,
            "gen_ai.usage.cache_read_input_tokens": 8,
            "llm.usage.cache_read_input_tokens": 9,
        },
        "cache_read_tokens",
        7,
    ),
    (
        {"gen_ai.usage.cache_read_input_tokens": 8, "llm.usage.cache_read_input_tokens": 9},
        "cache_read_tokens",
        8,
    ),
    (
        {
            "gen_ai.usage.cache_write.input_tokens": 10,
            "gen_ai.usage.cache_creation.input_tokens": 11,
            "gen_ai.usage.cache_creation_input_tokens": 12,
        },
        "cache_write_tokens",
        10,
    ),
    (
        {
            "gen_ai.usage.cache_creation.input_tokens": 11,
            "gen_ai.usage.cache_creation_input_tokens": 12,
            "llm.usage.cache_creation_input_tokens": 13,
        },
        "cache_write_tokens",
        11,
    ),
    (
        {
            "gen_ai.usage.cache_creation_input_tokens": 12,
            "llm.usage.cache_creation_input_tokens": 13,
        },
        "cache_write_tokens",
        12,
    ),
    ({"llm.usage.cache_creation_input_tokens": 13}, "cache_write_tokens", 13),
    (
        {
            "llm_margin.usage.cache_write_1h.input_tokens": 3,
            "anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 4,
        },
        "cache_write_1h_tokens",
        3,
    ),
    # the 1-hour bucket is part of cache writes: write = max(write, 1h)
    (
        {"anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 4},
        "cache_write_tokens",
        4,
    ),
    # fresh-input shape: input smaller than its cache parts gets them added
    (
        {"gen_ai.usage.input_tokens": 5, "gen_ai.usage.cache_read.input_tokens": 10},
        "input_tokens",
        15,
    ),
    (
        {"gen_ai.usage.input_tokens": 0, "gen_ai.usage.cache_read.input_tokens": 10},
        "input_tokens",
        0,
    ),
    (
        {
            "gen_ai.usage.reasoning.output_tokens": 1,
            "gen_ai.usage.reasoning_tokens": 2,
            "llm.usage.reasoning_tokens": 3,
        },
        "reasoning_tokens",
        1,
    ),
    (
        {"gen_ai.usage.reasoning_tokens": 2, "llm.usage.reasoning_tokens": 3},
        "reasoning_tokens",
        2,
    ),
    # operation: operation.name > llm.request.type, default chat
    ({"gen_ai.operation.name": "embeddings", "llm.request.type": "x"}, "operation", "embeddings"),
    ({"gen_ai.operation.name": "", "llm.request.type": "completion"}, "operation", "completion"),
    # service tier: responses before requests, ours > anthropic > openai-v2
    (
        {
            "openai.request.service_tier": "flex",
            "gen_ai.openai.response.service_tier": "default",
            "anthropic.response.service_tier": "priority",
        },
        "service_tier",
        "priority",
    ),
    (
        {"openai.response.service_tier": "scale", "anthropic.response.service_tier": "p"},
        "service_tier",
        "scale",
    ),
    (
        {
            "gen_ai.openai.response.service_tier": "default",
            "openai.request.service_tier": "flex",
        },
        "service_tier",
        "default",
    ),
    (
        {
            "openai.request.service_tier": "flex",
            "anthropic.request.service_tier": "a",
            "gen_ai.openai.request.service_tier": "b",
        },
        "service_tier",
        "flex",
    ),
    (
        {"anthropic.request.service_tier": "a", "gen_ai.openai.request.service_tier": "b"},
        "service_tier",
        "a",
    ),
    ({"gen_ai.openai.request.service_tier": "b" * 100}, "service_tier", "b" * 64),
    # retries and attempts
    ({"llm_margin.sdk_retries": 2, "http.request.resend_count": 5}, "sdk_retries", 2),
    ({"http.request.resend_count": 5}, "sdk_retries", 5),
    ({"llm_margin.attempt": 0}, "attempt", 1),
    ({"llm_margin.attempt": 3}, "attempt", 3),
    ({"llm_margin.attempt": "4"}, "attempt", 4),
    ({"llm_margin.attempt_kind": "retry"}, "attempt_kind", "retry"),
    # token values: ints, floats (truncated), numeric strings
    ({"gen_ai.usage.output_tokens": 12.9}, "output_tokens", 12),
    ({"gen_ai.usage.output_tokens": " 12 "}, "output_tokens", 12),
    # text fields: cut to 256 characters, stringified
    ({"customer.id": "c" * 300}, "customer_id", "c" * 256),
    ({"customer.id": ""}, "customer_id", "(unattributed)"),
    ({"customer.id": 42}, "customer_id", "42"),
    ({"plan": True}, "plan", "True"),
    ({"task.id": "t1"}, "task_id", "t1"),
    ({"workspace.id": "w", "user.id": "u", "feature": "f"}, "workspace_id", "w"),
    ({"workspace.id": "w", "user.id": "u", "feature": "f"}, "user_id", "u"),
    ({"workspace.id": "w", "user.id": "u", "feature": "f"}, "feature", "f"),
    # status: ours, else error when an error type is set
    ({"llm_margin.status": "invalid", "error.type": "x"}, "status", "invalid"),
    ({"error.type": "RateLimitError"}, "status", "error"),
    ({"error.type": "RateLimitError"}, "error_type", "RateLimitError"),
    ({}, "status", "ok"),
    # route: ours, else provider/model (request model first)
    ({"llm_margin.route": "primary"}, "route", "primary"),
    (
        {"gen_ai.system": "openai", "gen_ai.request.model": "a", "gen_ai.response.model": "b"},
        "route",
        "openai/a",
    ),
    ({"gen_ai.system": "openai", "gen_ai.response.model": "b"}, "route", "openai/b"),
    ({}, "route", "/"),
    # usage source, source, stream
    ({"llm_margin.usage_source": "tokenizer"}, "usage_source", "tokenizer"),
    ({"llm_margin.provisional": True}, "usage_source", "estimated"),
    ({"llm_margin.provisional": "true"}, "usage_source", "provider"),
    ({"llm_margin.instrumentation": "llm-margin"}, "source", "llm-margin"),
    ({}, "source", "otel"),
    ({"llm_margin.stream": True}, "stream", True),
    ({"gen_ai.request.stream": True}, "stream", True),
    ({"llm_margin.stream": "true"}, "stream", False),
    # row key: our call id, else the span id
    ({"llm_margin.call_id": "call-1"}, "span_id", "call-1"),
    ({"llm_margin.call_id": ""}, "span_id", (8).to_bytes(8, "big").hex()),
]


@pytest.mark.parametrize(("attributes", "field", "expected"), PRECEDENCE)
def test_precedence_and_values(attributes, field, expected):
    assert getattr(_call(attributes), field) == expected


def test_a_duplicate_key_keeps_its_last_value():
    extra = [KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="second"))]
    assert _call({"gen_ai.request.model": "first"}, extra=extra).request_model == "second"
    empty = [KeyValue(key="gen_ai.request.model", value=AnyValue(string_value=""))]
    call = _call({"gen_ai.request.model": "first", "llm.request.model": "other"}, extra=empty)
    assert call.request_model == "other"


def test_an_unset_value_counts_as_absent():
    unset = [KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue())]
    call = _call({"llm.usage.prompt_tokens": 9}, extra=unset)
    assert call.input_tokens == 9


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (AnyValue(bool_value=True), "token count gen_ai.usage.output_tokens is not a number: True"),
        (
            AnyValue(string_value="1.5"),
            "token count gen_ai.usage.output_tokens is not a number: '1.5'",
        ),
        (AnyValue(int_value=-2), "token count gen_ai.usage.output_tokens is negative: -2"),
        (AnyValue(double_value=-0.5), None),  # int(-0.5) == 0: accepted
        (
            AnyValue(bytes_value=b"12"),
            "token count gen_ai.usage.output_tokens is not a number: b'12'",
        ),
    ],
)
def test_token_values_that_are_not_counts_are_named(value, message):
    # the canonical name is reported whichever spelling carried the value
    extra = [KeyValue(key="llm.usage.completion_tokens", value=value)]
    if message is None:
        assert _call({}, extra=extra).output_tokens == 0
        return
    with pytest.raises(ValueError) as raised:
        _call({}, extra=extra)
    assert str(raised.value) == message


def test_span_kind_rules():
    assert span_kind({"llm_margin.task.root": True}) == "task"
    assert span_kind({"llm_margin.task.root": "true"}) is None
    assert span_kind({"gen_ai.system": "openai", "llm.request.type": "Chat"}) == "call"
    assert span_kind({"gen_ai.system": "openai", "gen_ai.usage.prompt_tokens": None}) == "call"
    assert span_kind({"gen_ai.system": "openai", "gen_ai.usage.cache_read.input_tokens": 3}) is None
