"""Sub-inferences billed outside a call's top-level usage (Anthropic compaction and advisor
iterations): read from the span's ``llm_margin.sub_usage.*`` arrays, priced each at its own
model's price into the call's one row, or leaving the call unpriced when one has no price.

Oracle: genai_prices.calc_price on each part, summed."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest
from llm_margin import attributes as A
from llm_margin.processor.normalize import (
    MAX_SUB_USAGE,
    attributes_to_dict,
    call_from_span,
    read_attributes,
)
from llm_margin.processor.pricing import PriceBook
from llm_margin.processor.pricing.overlay import parse_overlay
from llm_margin.processor.pricing.price_book import sub_usage_rows
from llm_margin.processor.receiver.synthetic import make_span
from llm_margin.processor.records import CallRecord

from tests.anthropic_oracle import anthropic_price

Q = Decimal("1e-18")
EXECUTOR = "claude-sonnet-4-6"
ADVISOR = "claude-opus-4-6"
COMPACTION = ("compaction", "", 180_000, 3_500, 0, 0, 0)
ADVICE = ("advisor_message", ADVISOR, 3_100, 1_400, 2_000, 300, 200)


def _attributes(*entries: tuple, model: str = EXECUTOR) -> dict:
    attributes = {
        A.GEN_AI_OPERATION_NAME: "chat",
        A.GEN_AI_PROVIDER_NAME: "anthropic",
        A.GEN_AI_REQUEST_MODEL: model,
        A.GEN_AI_RESPONSE_MODEL: model,
        A.GEN_AI_USAGE_INPUT_TOKENS: 23_000,
        A.GEN_AI_USAGE_OUTPUT_TOKENS: 1_000,
    }
    if entries:
        attributes.update(zip(A.SUB_USAGE_ARRAYS, zip(*entries, strict=True), strict=True))
    return attributes


def _call(attributes: dict) -> CallRecord:
    span = make_span(1, attributes)
    call = call_from_span(span, attributes_to_dict(span.attributes))
    # the pipeline reads only READ_KEYS: the arrays must be among them
    assert call_from_span(span, read_attributes(span.attributes)) == call
    return call


def _oracle(model: str, entry: tuple, ts) -> Decimal:
    _kind, _model, *counts = entry
    return anthropic_price(model, ts, *counts)


@pytest.mark.parametrize(
    ("entries", "priced_at"),
    [
        ((), ()),
        ((COMPACTION,), (EXECUTOR,)),  # compaction: the call's own model
        ((ADVICE,), (ADVISOR,)),  # the advisor: its own model (Opus advising Sonnet)
        ((COMPACTION, ADVICE, COMPACTION), (EXECUTOR, ADVISOR, EXECUTOR)),
    ],
)
def test_sub_inferences_are_priced_at_their_models_into_the_one_row(entries, priced_at):
    call = PriceBook().apply(_call(_attributes(*entries)))
    assert call.sub_usage == entries
    own = _oracle(EXECUTOR, ("", "", 23_000, 1_000, 0, 0, 0), call.ts)
    parts = [_oracle(m, e, call.ts) for m, e in zip(priced_at, entries, strict=True)]
    assert call.priced and call.sub_usage_cost_usd == sum(parts, Decimal(0))
    assert call.cost_usd == own + sum(parts, Decimal(0))
    # each entry's cost, kept so reconcile compares an advisor's under the advisor's model
    assert call.sub_usage_entry_costs_usd == tuple(parts)
    # not nothing: 180k compaction tokens at Sonnet's $3/M are $0.54 alone
    assert (call.sub_usage_cost_usd > 0) == bool(entries)


@pytest.mark.parametrize(
    "entry",
    [
        ("advisor_message", "unknown", 3_100, 1_400, 0, 0, 0),  # the advisor named no model
        ("advisor_message", "claude-advisor-from-the-future", 10, 10, 0, 0, 0),
    ],
)
def test_an_advisor_without_a_price_leaves_the_call_unpriced(entry):
    call = PriceBook().apply(_call(_attributes(COMPACTION, entry)))
    assert (call.priced, call.cost_usd, call.sub_usage_cost_usd, call.price_version) == (
        False,
        Decimal(0),
        Decimal(0),
        "",
    )
    assert call.sub_usage_entry_costs_usd == ()
    assert call.sub_usage[1] == entry  # kept for reprice once a price exists


def test_the_overlay_prices_an_advisor_model_it_lists():
    overlay = parse_overlay(
        """
models:
  - provider: anthropic
    model: claude-advisor-x
    input_per_mtok: "20"
    output_per_mtok: "100"
"""
    )
    entry = ("advisor_message", "claude-advisor-x", 1_000_000, 10_000, 0, 0, 0)
    call = PriceBook(overlay).apply(_call(_attributes(entry)))
    assert call.priced and call.sub_usage_cost_usd == Decimal(20) + Decimal(1)


def test_a_compaction_takes_the_calls_speed_mode_and_an_advisor_the_standard_one():
    book = PriceBook()
    fast = _attributes(COMPACTION, ADVICE, model="claude-opus-4-8")
    fast[A.SPEED] = "fast"
    call = book.apply(_call(fast))
    standard = book.apply(_call(_attributes(COMPACTION, ADVICE, model="claude-opus-4-8")))
    compaction_fast = book.price_usage(
        "anthropic", ("claude-opus-4-8",), _usage4(COMPACTION), call.ts, "", "fast"
    )
    advice = book.price_usage("anthropic", (ADVISOR,), _usage4(ADVICE), call.ts)
    assert call.priced and compaction_fast.priced
    assert call.sub_usage_cost_usd == compaction_fast.cost_usd + advice.cost_usd
    assert call.sub_usage_cost_usd > standard.sub_usage_cost_usd


def _usage4(entry: tuple):
    from llm_margin.processor.pricing.genai import Usage4

    return Usage4(*entry[2:])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({A.SUB_USAGE_KIND: "compaction"}, "arrays of one length"),  # not an array
        ({A.SUB_USAGE_MODEL: ("", "")}, "arrays of one length"),  # lengths differ
        ({A.SUB_USAGE_OUTPUT_TOKENS: (-1,)}, "negative"),
        ({A.SUB_USAGE_INPUT_TOKENS: ("lots",)}, "not a number"),
        ({A.SUB_USAGE_INPUT_TOKENS: (2**40,)}, "out of range"),
        ({A.SUB_USAGE_KIND: ("compaction",) * (MAX_SUB_USAGE + 1)}, "arrays of one length"),
    ],
)
def test_malformed_sub_usage_is_refused_with_a_clear_error(change, message):
    attributes = {**_attributes(COMPACTION), **change}
    span = make_span(1, attributes)
    with pytest.raises(ValueError, match=message):
        call_from_span(span, attributes_to_dict(span.attributes))


def test_missing_count_arrays_count_zero_and_cache_parts_never_exceed_the_total():
    attributes = _attributes(("compaction", "", 5, 7, 10, 4, 9))
    del attributes[A.SUB_USAGE_MODEL], attributes[A.SUB_USAGE_OUTPUT_TOKENS]
    # input below its cache parts: raised to them; the 1h part within the write
    assert _call(attributes).sub_usage == (("compaction", "", 14, 0, 10, 4, 4),)


def test_sub_usage_survives_the_spool_and_a_read_back():
    call = PriceBook().apply(_call(_attributes(COMPACTION, ADVICE)))
    assert pickle.loads(pickle.dumps(call)) == call
    # llm_calls.sub_usage reads back as dicts (a named Tuple); reprice takes either shape
    names = ("kind", "model", "input", "output", "read", "write", "write_1h")
    as_read = [dict(zip(names, entry, strict=True)) for entry in call.sub_usage]
    assert sub_usage_rows(as_read) == sub_usage_rows(list(call.sub_usage)) == call.sub_usage


@pytest.mark.parametrize(
    ("sub_usage_models", "reason"),
    [
        ([], ""),
        ([ADVISOR], ""),
        (
            ["claude-advisor-x"],
            "no price for its advisor model claude-advisor-x; add claude-advisor-x to a price "
            "overlay",
        ),
    ],
)
def test_prices_check_names_an_advisor_model_without_a_price(sub_usage_models, reason):
    from llm_margin.processor.commands.prices import _unpriced_reason

    record = {
        "provider": "anthropic",
        "request_model": EXECUTOR,
        "response_model": EXECUTOR,
        "web_search_calls": 0,
        "file_search_calls": 0,
        "speeds": [],
        "service_tiers": [],
        "sub_usage_models": sub_usage_models,
        "last_ts": "2026-11-20 12:00:00",
    }
    assert _unpriced_reason(PriceBook(), record) == reason
