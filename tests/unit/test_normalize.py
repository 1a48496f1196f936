"""Normalisation: one row per provider/attribute shape, each mapped to canonical usage.

Canonical: input_tokens is the total prompt INCLUDING cache read and write (what genai-prices
prices), cache_write includes the 1-hour bucket. The oracle for the cost column is
genai_prices.calc_price on the canonical usage, computed here.
"""

from __future__ import annotations

from decimal import Decimal

import genai_prices
import pytest
from llm_margin.processor.normalize import (
    RANK_FOREIGN,
    RANK_FOREIGN_USAGE,
    RANK_OURS,
    RANK_PROVISIONAL,
    attributes_to_dict,
    call_from_span,
    nanos_to_datetime,
    read_attributes,
    span_kind,
    version_rank,
)
from llm_margin.processor.pricing import PriceBook
from llm_margin.processor.receiver.synthetic import make_span
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

# (name, attributes, expected (provider, model, input, output, cache_read, cache_write, cw_1h,
#  reasoning, sdk_retries))
SHAPES = [
    (
        "ours (semconv latest, input incl. cache)",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 1500,
            "gen_ai.usage.output_tokens": 80,
            "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.usage.cache_write.input_tokens": 300,
            "llm_margin.usage.cache_write_1h.input_tokens": 100,
            "llm_margin.sdk_retries": 2,
            "llm_margin.instrumentation": "llm-margin",
            "llm_margin.call_id": "abc",
        },
        ("anthropic", "claude-sonnet-4-5", 1500, 80, 1000, 300, 100, 0, 2),
    ),
    (
        "anthropic native SDK span (input incl. cache, ephemeral_1h, resend_count)",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-3-5-haiku-20241022",
            "gen_ai.response.model": "claude-3-5-haiku-20241022",
            "gen_ai.usage.input_tokens": 700,
            "gen_ai.usage.output_tokens": 33,
            "gen_ai.usage.cache_read.input_tokens": 400,
            "gen_ai.usage.cache_write.input_tokens": 200,
            "anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 50,
            "http.request.resend_count": 1,
            "anthropic.response.service_tier": "standard",
        },
        ("anthropic", "claude-3-5-haiku-20241022", 700, 33, 400, 200, 50, 0, 1),
    ),
    (
        "Anthropic-style raw usage: input EXCLUDES cache (fresh < cache)",
        {
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude-3-5-haiku-20241022",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 40,
            "gen_ai.usage.cache_read_input_tokens": 2048,
            "gen_ai.usage.cache_creation_input_tokens": 512,
        },
        ("anthropic", "claude-3-5-haiku-20241022", 12 + 2048 + 512, 40, 2048, 512, 0, 0, 0),
    ),
    (
        "OpenLLMetry anthropic (gen_ai.system, cache_creation.input_tokens, total input)",
        {
            "gen_ai.system": "Anthropic",
            "llm.request.type": "chat",
            "gen_ai.request.model": "claude-3-5-haiku-20241022",
            "gen_ai.response.model": "claude-3-5-haiku-20241022",
            "gen_ai.usage.input_tokens": 900,
            "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.cache_read.input_tokens": 300,
            "gen_ai.usage.cache_creation.input_tokens": 100,
        },
        ("anthropic", "claude-3-5-haiku-20241022", 900, 10, 300, 100, 0, 0, 0),
    ),
    (
        "openai-v2 old conventions (gen_ai.system, prompt/completion tokens)",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.usage.prompt_tokens": 250,
            "gen_ai.usage.completion_tokens": 60,
        },
        ("openai", "gpt-4o-mini", 250, 60, 0, 0, 0, 0, 0),
    ),
    (
        "OpenLLMetry openai legacy llm.* names with reasoning",
        {
            "llm.vendor": "OpenAI",
            "llm.request.type": "chat",
            "llm.request.model": "o3-mini",
            "llm.usage.prompt_tokens": 100,
            "llm.usage.completion_tokens": 500,
            "llm.usage.reasoning_tokens": 400,
            "llm.usage.cache_read_input_tokens": 64,
        },
        ("openai", "o3-mini", 100, 500, 64, 0, 0, 400, 0),
    ),
    (
        "genai-openai latest conventions (provider.name, cache_read.input_tokens)",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 5000,
            "gen_ai.usage.output_tokens": 100,
            "gen_ai.usage.cache_read.input_tokens": 4096,
            "gen_ai.usage.reasoning.output_tokens": 0,
        },
        ("openai", "gpt-4o", 5000, 100, 4096, 0, 0, 0, 0),
    ),
    (
        "azure alias and embeddings",
        {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.system": "az.ai.openai",
            "gen_ai.request.model": "text-embedding-3-small",
            "gen_ai.usage.input_tokens": 42,
        },
        ("azure", "text-embedding-3-small", 42, 0, 0, 0, 0, 0, 0),
    ),
]


@pytest.mark.parametrize(("name", "attributes", "expected"), SHAPES, ids=[s[0] for s in SHAPES])
def test_shape_maps_to_canonical_usage_and_prices_like_genai_prices(name, attributes, expected):
    span = make_span(1, attributes)
    attrs = attributes_to_dict(span.attributes)
    assert span_kind(attrs) == "call"
    call = call_from_span(span, attrs)
    got = (
        call.provider,
        call.request_model,
        call.input_tokens,
        call.output_tokens,
        call.cache_read_tokens,
        call.cache_write_tokens,
        call.cache_write_1h_tokens,
        call.reasoning_tokens,
        call.sdk_retries,
    )
    assert got == expected
    PriceBook().apply(call)
    provider, _, input_tokens, output_tokens, cache_read, cache_write, cw_1h, _, _ = expected
    usage = genai_prices.Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=cw_1h,
    )
    model = call.response_model or call.request_model
    oracle = genai_prices.calc_price(
        usage,
        model,
        provider_id=provider if provider != "azure" else "azure",
        genai_request_timestamp=call.ts,
    ).total_price
    assert call.priced
    assert call.cost_usd == Decimal(oracle).quantize(Decimal("1e-18"))
    assert call.cost_usd > 0


@pytest.mark.parametrize(
    ("input_audio", "output_audio", "expected"),
    [(800, 350, (800, 350)), (5000, 9000, (1000, 400))],  # never more than its total
)
def test_audio_tokens_are_kept_and_priced_apart_from_text(input_audio, output_audio, expected):
    span = make_span(
        1,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-audio",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 400,
            "llm_margin.usage.audio.input_tokens": input_audio,
            "llm_margin.usage.audio.output_tokens": output_audio,
        },
    )
    call = call_from_span(span, attributes_to_dict(span.attributes))
    assert (call.input_audio_tokens, call.output_audio_tokens) == expected
    PriceBook().apply(call)
    oracle = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=1000,
            output_tokens=400,
            input_audio_tokens=expected[0],
            output_audio_tokens=expected[1],
        ),
        "gpt-audio",
        provider_id="openai",
        genai_request_timestamp=call.ts,
    ).total_price
    assert call.cost_usd == Decimal(oracle).quantize(Decimal("1e-18"))
    # gpt-audio: audio input $32 and output $64 per million tokens, text $2.50 and $10
    text_only = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, output_tokens=400),
        "gpt-audio",
        provider_id="openai",
        genai_request_timestamp=call.ts,
    ).total_price
    assert call.cost_usd > 5 * text_only


@pytest.mark.parametrize(
    ("extra", "tier", "speed", "context"),
    [
        ({"llm_margin.speed": "fast"}, "", "fast", {"speed": "fast"}),
        ({"llm_margin.speed": "FAST"}, "", "fast", {"speed": "fast"}),
        ({"llm_margin.speed": "standard"}, "", "standard", None),
        ({}, "", "", None),
        (
            {"openai.response.service_tier": "standard", "llm_margin.speed": "fast"},
            "standard",
            "fast",
            {"speed": "fast"},
        ),
    ],
)
def test_speed_mode_is_kept_and_priced(extra, tier, speed, context):
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-opus-4-8",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 400,
        **extra,
    }
    span = make_span(1, attributes)
    call = call_from_span(span, attributes_to_dict(span.attributes))
    assert (call.service_tier, call.speed) == (tier, speed)
    # the pipeline reads only READ_KEYS: the speed must be among them
    assert call_from_span(span, read_attributes(span.attributes)) == call
    PriceBook().apply(call)
    oracle = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, output_tokens=400),
        "claude-opus-4-8",
        provider_id="anthropic",
        genai_request_timestamp=call.ts,
        price_context=context,
    ).total_price
    assert call.priced and call.cost_usd == Decimal(oracle).quantize(Decimal("1e-18"))


@pytest.mark.parametrize(
    ("provider", "model", "web", "files"),
    [("openai", "gpt-4o", 3, 2), ("anthropic", "claude-sonnet-4-5", 4, 0)],
)
def test_search_calls_are_kept_and_priced_beside_the_tokens(provider, model, web, files):
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 400,
        "llm_margin.usage.web_search.calls": web,
        "llm_margin.usage.file_search.calls": files,
    }
    span = make_span(1, attributes)
    call = call_from_span(span, attributes_to_dict(span.attributes))
    assert (call.web_search_calls, call.file_search_calls) == (web, files)
    # the pipeline reads only READ_KEYS: the counts must be among them
    assert call_from_span(span, read_attributes(span.attributes)) == call
    PriceBook().apply(call)
    oracle = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=1000, output_tokens=400, web_searches=web, storage_searches=files
        ),
        model,
        provider_id=provider,
        genai_request_timestamp=call.ts,
    ).total_price
    assert call.priced and call.cost_usd == Decimal(oracle).quantize(Decimal("1e-18"))
    # $10 per 1,000 web searches, $2.50 per 1,000 file searches
    del (
        attributes["llm_margin.usage.web_search.calls"],
        attributes["llm_margin.usage.file_search.calls"],
    )
    plain = make_span(1, attributes)
    without = PriceBook().apply(call_from_span(plain, attributes_to_dict(plain.attributes)))
    assert call.cost_usd - without.cost_usd == web * Decimal("0.01") + files * Decimal("0.0025")


NOT_CALLS = [
    ("anthropic count_tokens", {"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "m"}),
    ("models.list", {"gen_ai.provider.name": "anthropic"}),
    (
        "execute_tool",
        {"gen_ai.operation.name": "execute_tool", "gen_ai.provider.name": "anthropic"},
    ),
    (
        "agent span with summed usage",
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 9000,
            "gen_ai.usage.output_tokens": 900,
        },
    ),
    ("plain http", {"http.request.method": "POST", "url.path": "/v1/messages"}),
]


@pytest.mark.parametrize(("name", "attributes"), NOT_CALLS, ids=[n for n, _ in NOT_CALLS])
def test_non_inference_spans_are_not_calls(name, attributes):
    assert span_kind(attributes_to_dict(make_span(1, attributes).attributes)) is None


@pytest.mark.parametrize(
    ("attributes", "rank"),
    [
        ({"llm_margin.instrumentation": "llm-margin", "gen_ai.usage.output_tokens": 1}, RANK_OURS),
        (
            {"llm_margin.provisional": True, "llm_margin.call_id": "x"},
            RANK_PROVISIONAL,
        ),
        ({"gen_ai.usage.output_tokens": 3}, RANK_FOREIGN_USAGE),
        ({"gen_ai.operation.name": "chat"}, RANK_FOREIGN),
    ],
)
def test_rank_orders_versions(attributes, rank):
    attributes = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", **attributes}
    span = make_span(1, attributes)
    call = call_from_span(span, attributes_to_dict(span.attributes))
    assert version_rank(call.version) == rank


def test_a_provisional_record_loses_to_any_final_one_even_if_it_ended_later():
    base = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}
    early = make_span(1, {**base, "gen_ai.usage.output_tokens": 1}, now_ns=10**18)
    late = make_span(2, {**base, "llm_margin.provisional": True}, now_ns=2 * 10**18)
    final = call_from_span(early, attributes_to_dict(early.attributes))
    provisional = call_from_span(late, attributes_to_dict(late.attributes))
    assert final.version > provisional.version


def test_bad_token_count_raises_a_clear_error():
    span = make_span(1, {"gen_ai.system": "openai", "gen_ai.usage.input_tokens": "lots"})
    with pytest.raises(ValueError, match="gen_ai.usage.input_tokens"):
        call_from_span(span, attributes_to_dict(span.attributes))


# -- nested spans of one provider request (linking.NestedCallResolver) ------------------------
def _nested_spans():
    """ours (outer) -> anthropic native (child) -> openai-v2-like (grandchild), + provisional."""
    from llm_margin.processor.linking import CallSpan

    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-3-5-haiku-20241022",
        "customer.id": "acme",
    }
    usage = {"gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20}
    ours_id, native_id, inner_id, prov_id = "a" * 16, "b" * 16, "c" * 16, "d" * 16
    spec = [
        (
            ours_id,
            "",
            {
                **base,
                **usage,
                "llm_margin.instrumentation": "x",
                "llm_margin.call_id": ours_id,
                "llm_margin.sdk_retries": 0,
            },
        ),
        (native_id, ours_id, {**base, **usage, "http.request.resend_count": 2}),
        (inner_id, native_id, {**base}),
        (
            prov_id,
            ours_id,
            {
                **base,
                "llm_margin.provisional": True,
                "llm_margin.call_id": ours_id,
                "gen_ai.usage.input_tokens": 90,
            },
        ),
    ]
    out = []
    for n, (sid, parent, attrs) in enumerate(spec):
        span = make_span(n, attrs)
        span.span_id = bytes.fromhex(sid)
        span.parent_span_id = bytes.fromhex(parent) if parent else b""
        call = call_from_span(span, attributes_to_dict(span.attributes))
        out.append(CallSpan(call, sid, parent))
    return out, ours_id


@pytest.mark.parametrize(
    ("batches", "rows"),
    [
        ([[0, 1, 2, 3]], 1),
        ([[3, 2, 1, 0]], 1),
        ([[3], [2, 1, 0]], 1),
        ([[3], [2, 1], [0]], 1),
        ([[3, 2, 1], [0]], 1),
        ([[3], [2], [1, 0]], 2),
        ([[2, 1], [0, 3]], 2),
    ],
    ids=[
        "one batch",
        "end order",
        "estimate first",
        "foreign nest before ours",
        "all but ours first",
        "inner foreign alone before ours (conflict)",
        "foreign nest, then ours (conflict)",
    ],
)
def test_nested_spans_of_one_request_share_one_key_whatever_the_batches(batches, rows):
    import copy

    from llm_margin.processor.linking import NestedCallResolver

    spans, ours_id = _nested_spans()
    resolver = NestedCallResolver()
    written = []
    for batch in batches:
        written += resolver.resolve([copy.deepcopy(spans[i]) for i in batch])
    keys = {c.span_id for c in written}
    assert len(keys) == rows and ours_id in keys
    # Every version of a row has the first stored version's ts: versions with different ts
    # (hours) would each be counted by the hourly roll-ups.
    for key in keys:
        assert len({c.ts for c in written if c.span_id == key}) == 1
    # A request one row could not cover is counted, never silent.
    assert resolver.conflicts == (rows - 1)
    kept = max((c for c in written if c.span_id == ours_id), key=lambda c: c.version)
    assert kept.source == "x" and kept.input_tokens == 100  # ours, not the estimate
    if len(batches) == 1:
        assert written[0].sdk_retries == 2  # the native span's resend count


def test_http_attempts_under_a_foreign_call_are_its_retries():
    from llm_margin.processor.linking import CallSpan, NestedCallResolver

    span = make_span(1, {"gen_ai.operation.name": "chat", "gen_ai.system": "openai"})
    call = call_from_span(span, attributes_to_dict(span.attributes))
    sid = span.span_id.hex()
    [out] = NestedCallResolver().resolve([CallSpan(call, sid, "")], {sid: 3, "other": 9})
    assert out.sdk_retries == 2


def test_sibling_calls_stay_separate():
    from llm_margin.processor.linking import CallSpan, NestedCallResolver

    spans = []
    for n in range(3):
        span = make_span(n, {"gen_ai.operation.name": "chat", "gen_ai.system": "openai"})
        call = call_from_span(span, attributes_to_dict(span.attributes))
        spans.append(CallSpan(call, span.span_id.hex(), "ffffffffffffffff"))
    assert len({c.span_id for c in NestedCallResolver().resolve(spans)}) == 3


def test_sibling_spans_with_one_response_id_are_one_request_across_batches():
    """OpenLLMetry's anthropic span is not made current: a sibling (even another trace)."""
    from llm_margin.processor.linking import CallSpan, NestedCallResolver

    resolver = NestedCallResolver()
    written = []
    for n, parent in enumerate(("", "1111111111111111")):
        span = make_span(n, {"gen_ai.operation.name": "chat", "gen_ai.system": "anthropic"})
        call = call_from_span(span, attributes_to_dict(span.attributes))
        written += resolver.resolve([CallSpan(call, span.span_id.hex(), parent, "msg_1")])
    assert len({c.span_id for c in written}) == 1


def test_a_later_span_of_a_stored_request_keeps_its_row_customer_and_task():
    """Spans of one request in two batches, in two traces (OpenLLMetry's anthropic span), the
    later one with a customer: the row stays where it was stored (one row, one task), so the
    request is priced once and counted in one task."""
    from llm_margin.processor.linking import CallSpan, NestedCallResolver

    resolver = NestedCallResolver()
    written = []
    for n, extra in enumerate(({}, {"customer.id": "acme", "gen_ai.usage.input_tokens": 9})):
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.system": "anthropic", **extra}
        span = make_span(n, attributes)
        span.trace_id = bytes([n + 1]) * 16  # another trace: another fallback task
        call = call_from_span(span, attributes_to_dict(span.attributes))
        written += resolver.resolve([CallSpan(call, span.span_id.hex(), "", "msg_1")])
    first, second = written
    assert second.span_id == first.span_id
    assert (second.customer_id, second.task_id, second.ts) == (
        first.customer_id,
        first.task_id,
        first.ts,
    )
    assert second.trace_id != first.trace_id  # the better span's data, the stored row's keys


@pytest.mark.parametrize(
    ("attributes", "status", "error_type"),
    [
        # stream started, not finished: not (yet) a delivered call
        (
            {"llm_margin.provisional": True, "llm_margin.status": "ok"},
            "error",
            "stream_incomplete",
        ),
        ({"llm_margin.provisional": True, "error.type": "APIError"}, "error", "APIError"),
        # the final record of the same stream
        ({"llm_margin.status": "ok", "gen_ai.usage.output_tokens": 5}, "ok", ""),
    ],
)
def test_a_stream_start_record_is_stored_as_incomplete(attributes, status, error_type):
    base = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}
    span = make_span(1, {**base, **attributes})
    call = call_from_span(span, attributes_to_dict(span.attributes))
    assert (call.status, call.error_type) == (status, error_type)


def _span_with(key, value):
    """A call span whose attribute ``key`` holds ``value`` (an AnyValue of any kind)."""
    span = make_span(1, {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"})
    kept = [kv for kv in span.attributes if kv.key != key]
    del span.attributes[:]
    span.attributes.extend(kept)
    span.attributes.add(key=key, value=value)
    return span


def _array(*texts):
    return AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=t) for t in texts]))


@pytest.mark.parametrize(
    ("key", "value", "column", "expected"),
    [
        ("customer.id", AnyValue(int_value=42), "customer_id", "42"),
        ("customer.id", AnyValue(bytes_value=b"acme"), "customer_id", "acme"),
        ("feature", AnyValue(double_value=1.5), "feature", "1.5"),
        ("gen_ai.request.model", AnyValue(bytes_value=b"gpt-4o"), "request_model", "gpt-4o"),
    ],
)
def test_text_attributes_of_other_types_still_make_a_row(key, value, column, expected):
    span = _span_with(key, value)
    for decode in (read_attributes, attributes_to_dict):
        call = call_from_span(span, decode(span.attributes))
        assert getattr(call, column) == expected


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("customer.id", _array("a", "b"), "customer.id must be a string, got an array"),
        ("workspace.id", AnyValue(bytes_value=b"\xff\xfe"), "workspace.id is bytes that are not"),
        ("gen_ai.request.model", _array("gpt-4o"), "gen_ai.request.model must be a string"),
        (
            "task.id",
            AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="a")])),
            "task.id must be a string, got a map",
        ),
    ],
)
def test_text_attributes_that_are_no_text_reject_the_span(key, value, message):
    span = _span_with(key, value)
    for decode in (read_attributes, attributes_to_dict):
        with pytest.raises(ValueError, match=message):
            call_from_span(span, decode(span.attributes))


@pytest.mark.parametrize(
    ("key", "text", "column", "expected"),
    [
        # Spans from other instrumentations get the baggage rule too (baggage.clean_value):
        # blank is no customer, padding is trimmed, invisible characters are removed.
        ("customer.id", "   ", "customer_id", "(unattributed)"),
        ("customer.id", " acme\t", "customer_id", "acme"),
        ("customer.id", "ev\u202eil\u0000x", "customer_id", "evilx"),
        ("customer.id", "x" * 500, "customer_id", "x" * 256),
        ("workspace.id", "\u200bws_1", "workspace_id", "ws_1"),
        ("feature", "chat\n", "feature", "chat"),
        ("customer.id", "Société Générale", "customer_id", "Société Générale"),
        ("gen_ai.request.model", "\x1b]0;PWNED\x07gpt\n-4o", "request_model", "]0;PWNEDgpt-4o"),
        ("gen_ai.response.model", "gpt-4o\r\n", "response_model", "gpt-4o"),
    ],
)
def test_id_attributes_are_cleaned_like_baggage(key, text, column, expected):
    span = _span_with(key, AnyValue(string_value=text))
    for decode in (read_attributes, attributes_to_dict):
        call = call_from_span(span, decode(span.attributes))
        assert getattr(call, column) == expected


# Span times are nanoseconds; rows keep microseconds. A call started before a price change
# (or a month) at D is before D: the time is cut to the microsecond, exactly (through a float
# of seconds it came out up to half a microsecond late, and D - 501 ns was D).
_D_NS = 1_796_083_200 * 10**9  # 2026-12-01T00:00:00Z


@pytest.mark.parametrize(
    ("offset_ns", "expected"),
    [
        (-1, "2026-11-30T23:59:59.999999+00:00"),
        (-501, "2026-11-30T23:59:59.999999+00:00"),
        (-1000, "2026-11-30T23:59:59.999999+00:00"),
        (-1001, "2026-11-30T23:59:59.999998+00:00"),
        (0, "2026-12-01T00:00:00+00:00"),
        (999, "2026-12-01T00:00:00+00:00"),
        (1000, "2026-12-01T00:00:00.000001+00:00"),
        (123_456_789, "2026-12-01T00:00:00.123456+00:00"),
    ],
)
def test_span_times_are_cut_to_the_microsecond_exactly(offset_ns, expected):
    assert nanos_to_datetime(_D_NS + offset_ns).isoformat() == expected
