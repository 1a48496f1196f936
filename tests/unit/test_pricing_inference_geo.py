"""Pricing a call by where it ran (Anthropic data residency, ``inference_geo``)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import genai_prices
import pytest
from llm_margin.processor.normalize import attributes_to_dict, call_from_span, read_attributes
from llm_margin.processor.pricing import OverlayError, PriceBook
from llm_margin.processor.pricing.explain import explain_model
from llm_margin.processor.pricing.overlay import parse_overlay
from llm_margin.processor.receiver.synthetic import make_span
from llm_margin.processor.records import CallRecord

Q = Decimal("1e-18")
TS = datetime(2026, 11, 10, 12, 0, tzinfo=timezone.utc)
US = "inference_geos:\n  anthropic/us: '1.1'\n"
# Every kind of token, the 1-hour cache writes among the writes
TOKENS = dict(
    input_tokens=12_000,
    output_tokens=2_000,
    cache_read_tokens=3_000,
    cache_write_tokens=4_000,
    cache_write_1h_tokens=1_000,
)


def _call(**kw) -> CallRecord:
    base = dict(
        ts=TS, trace_id="t", span_id="s", provider="anthropic", request_model="claude-opus-4-6"
    )
    return CallRecord(**{**base, **TOKENS, **kw})


def _oracle(model: str = "claude-opus-4-6", web_searches: int = 0) -> Decimal:
    """genai-prices' own standard price of TOKENS (and searches)."""
    usage = genai_prices.Usage(
        input_tokens=TOKENS["input_tokens"],
        output_tokens=TOKENS["output_tokens"],
        cache_read_tokens=TOKENS["cache_read_tokens"],
        cache_write_tokens=TOKENS["cache_write_tokens"],  # the 1-hour ones included
        cache_write_1h_tokens=TOKENS["cache_write_1h_tokens"],
        web_searches=web_searches,
    )
    return genai_prices.calc_price(
        usage, model, provider_id="anthropic", genai_request_timestamp=TS
    ).total_price


# (geography stored, overlay, priced, factor of the standard price)
GEOS = [
    ("", "", True, Decimal(1)),  # the span did not say: standard, as before
    ("global", "", True, Decimal(1)),  # the default geography: standard
    ("GLOBAL", "", True, Decimal(1)),
    ("us", "", False, None),  # a premium geography with no multiplier: unpriced, not standard
    ("us", US, True, Decimal("1.1")),
    ("US", US, True, Decimal("1.1")),
    ("us", "inference_geos:\n  us: '1.1'\n", True, Decimal("1.1")),  # every provider's us
    ("us", "inference_geos:\n  us: '1.2'\n  anthropic/us: '1.1'\n", True, Decimal("1.1")),
    ("us", "inference_geos:\n  openai/us: '1.1'\n", False, None),  # another provider's
    ("eu", US, False, None),  # a geography the overlay does not name
    ("global", US, True, Decimal(1)),
]


@pytest.mark.parametrize(("geo", "overlay", "priced", "factor"), GEOS)
def test_a_call_is_priced_at_its_inference_geography(geo, overlay, priced, factor):
    book = PriceBook(parse_overlay(overlay)) if overlay else PriceBook()
    call = book.apply(_call(inference_geo=geo))
    assert call.priced is priced
    if not priced:
        assert (call.cost_usd, call.price_version) == (Decimal(0), "")
        return
    # the multiplier applies to every kind of token: input, output, cache reads and writes
    assert call.cost_usd == (_oracle() * factor).quantize(Q)
    assert call.price_version == book.version


def test_the_geography_premium_is_on_the_tokens_not_the_searches():
    book = PriceBook(parse_overlay(US))
    call = book.apply(_call(inference_geo="us", web_search_calls=7))
    searches = Decimal("0.07")  # $10 per 1,000 web searches, as at the standard geography
    assert call.web_search_cost_usd == searches
    assert call.cost_usd == (_oracle() * Decimal("1.1")).quantize(Q) + searches
    assert _oracle(web_searches=7) == _oracle() + searches


def test_the_geography_multiplies_with_the_other_modes_and_discounts():
    overlay = US + "speeds:\n  fast: '6'\ndiscounts:\n  - provider: anthropic\n    percent: '10'\n"
    book = PriceBook(parse_overlay(overlay))
    # claude-sonnet-4-6: no fast-mode price in genai-prices, so the speeds: multiplier applies
    call = book.apply(_call(request_model="claude-sonnet-4-6", inference_geo="us", speed="fast"))
    standard = _oracle("claude-sonnet-4-6")
    assert call.cost_usd == (standard * Decimal("1.1") * 6 * Decimal("0.9")).quantize(Q)


def test_an_overlay_model_is_multiplied_too():
    overlay = US + "models:\n  - model: my-claude\n    input_per_mtok: '10'\n"
    book = PriceBook(parse_overlay(overlay))
    call = book.apply(_call(request_model="my-claude", inference_geo="us", **_only_input()))
    assert call.cost_usd == Decimal("0.011")  # 1,000 tokens at $10/MTok, x1.1


def _only_input() -> dict:
    return dict(
        input_tokens=1000,
        output_tokens=0,
        cache_read_tokens=0,
        cache_write_tokens=0,
        cache_write_1h_tokens=0,
    )


def test_overlay_inference_geos_are_validated():
    with pytest.raises(OverlayError, match="inference_geos.us"):
        parse_overlay("inference_geos:\n  us: -1\n")
    with pytest.raises(OverlayError, match="inference_geos must map"):
        parse_overlay("inference_geos: [us]\n")
    with pytest.raises(OverlayError, match="known: .*inference_geos"):
        parse_overlay("inference_geo:\n  us: 1.1\n")


def test_explain_shows_the_price_of_an_inference_geography():
    book = PriceBook(parse_overlay(US))
    [standard] = explain_model(book, "anthropic", "claude-opus-4-6", TS)
    [us] = explain_model(book, "anthropic", "claude-opus-4-6", TS, inference_geo="us")
    assert us["inference_geo"] == "us" and "inference_geo" not in standard
    for kind in ("input", "output", "cache_read", "cache_write"):
        key = f"{kind}_per_mtok_usd"
        assert Decimal(us[key]) == Decimal(standard[key]) * Decimal("1.1"), kind
    assert explain_model(PriceBook(), "anthropic", "claude-opus-4-6", TS, inference_geo="us") == []


@pytest.mark.parametrize(
    ("extra", "geo"),
    [
        ({"llm_margin.inference_geo": "us"}, "us"),
        ({"llm_margin.inference_geo": "US"}, "us"),
        ({"llm_margin.inference_geo": "global"}, "global"),
        ({}, ""),
    ],
)
def test_the_span_inference_geo_is_kept_and_priced(extra, geo):
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-opus-4-6",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 400,
        **extra,
    }
    span = make_span(1, attributes)
    call = call_from_span(span, attributes_to_dict(span.attributes))
    assert call.inference_geo == geo
    # the pipeline reads only READ_KEYS: the geography must be among them
    assert call_from_span(span, read_attributes(span.attributes)) == call
    PriceBook(parse_overlay(US)).apply(call)
    standard = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, output_tokens=400),
        "claude-opus-4-6",
        provider_id="anthropic",
        genai_request_timestamp=call.ts,
    ).total_price
    factor = Decimal("1.1") if geo == "us" else 1
    assert call.priced and call.cost_usd == (standard * factor).quantize(Q)


def test_sub_inferences_of_a_us_call_are_multiplied_too():
    """A compaction (the call's model) and an advisor step (its own model) ran in the call's
    geography: 1.1x each, and unpriced with the call when the geography has no multiplier."""
    sub = (
        ("compaction", "", 5000, 300, 0, 0, 0),
        ("advisor_message", "claude-opus-4-7", 2000, 100, 0, 0, 0),
    )
    plain = PriceBook().apply(_call(sub_usage=sub))
    us = PriceBook(parse_overlay(US)).apply(_call(sub_usage=sub, inference_geo="us"))
    assert plain.priced and us.priced
    assert us.sub_usage_cost_usd == (plain.sub_usage_cost_usd * Decimal("1.1")).quantize(Q)
    assert us.cost_usd == (plain.cost_usd * Decimal("1.1")).quantize(Q)
    unpriced = PriceBook().apply(_call(sub_usage=sub, inference_geo="us"))
    assert (unpriced.priced, unpriced.cost_usd) == (False, Decimal(0))
