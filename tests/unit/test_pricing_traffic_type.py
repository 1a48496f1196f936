"""Pricing a call by how it was served (Vertex AI ``traffic_type``): a Provisioned Throughput
call is paid by its subscription, priced by a ``traffic_types:`` multiplier, and unpriced
without one (never the on-demand list price, never silently nothing)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import genai_prices
import pytest
from llm_margin.processor import cli
from llm_margin.processor.commands.prices import _unpriced_reason
from llm_margin.processor.normalize import attributes_to_dict, call_from_span, read_attributes
from llm_margin.processor.pricing import OverlayError, PriceBook
from llm_margin.processor.pricing.explain import explain_model
from llm_margin.processor.pricing.overlay import parse_overlay
from llm_margin.processor.receiver.synthetic import make_span
from llm_margin.processor.records import CallRecord

Q = Decimal("1e-18")
TS = datetime(2026, 11, 10, 12, 0, tzinfo=timezone.utc)
MODEL = "gemini-2.5-flash"
PT = "traffic_types:\n  google/provisioned_throughput: '0'\n"
TOKENS = dict(input_tokens=12_000, output_tokens=2_000, cache_read_tokens=3_000)


def _call(**kw) -> CallRecord:
    base = dict(ts=TS, trace_id="t", span_id="s", provider="google", request_model=MODEL)
    return CallRecord(**{**base, **TOKENS, **kw})


def _oracle() -> Decimal:
    """genai-prices' own on-demand price of TOKENS."""
    usage = genai_prices.Usage(**TOKENS)
    return genai_prices.calc_price(
        usage, MODEL, provider_id="google", genai_request_timestamp=TS
    ).total_price


# (traffic type stored, overlay, priced, factor of the on-demand price)
TRAFFIC = [
    ("", "", True, Decimal(1)),  # the span did not say: on demand, as before
    ("on_demand", "", True, Decimal(1)),  # pay as you go (also a call over the PT quota)
    ("ON_DEMAND", "", True, Decimal(1)),
    ("provisioned_throughput", "", False, None),  # no multiplier: unpriced, not list price
    ("provisioned_throughput", PT, True, Decimal(0)),  # the subscription pays: no marginal cost
    ("PROVISIONED_THROUGHPUT", PT, True, Decimal(0)),
    (
        "provisioned_throughput",
        "traffic_types:\n  google/provisioned_throughput: '0.4'\n",
        True,
        Decimal("0.4"),
    ),  # a share allocates the subscription  # fmt: skip
    ("provisioned_throughput", "traffic_types:\n  provisioned_throughput: '0'\n", True, 0),
    (
        "provisioned_throughput",
        "traffic_types:\n  openai/provisioned_throughput: '0'\n",
        False,
        None,
    ),  # another provider's  # fmt: skip
    ("on_demand_offpeak", PT, False, None),  # a traffic type the overlay does not name
    ("on_demand", PT, True, Decimal(1)),
    ("on_demand", "traffic_types:\n  google/on_demand: '0'\n", True, 1),  # per token: no say
]


@pytest.mark.parametrize(("traffic", "overlay", "priced", "factor"), TRAFFIC)
def test_a_call_is_priced_by_its_traffic_type(traffic, overlay, priced, factor):
    book = PriceBook(parse_overlay(overlay)) if overlay else PriceBook()
    call = book.apply(_call(traffic_type=traffic))
    assert call.priced is priced
    if not priced:
        assert (call.cost_usd, call.price_version) == (Decimal(0), "")
        return
    assert call.cost_usd == (_oracle() * factor).quantize(Q)
    assert call.price_version == book.version


@pytest.mark.parametrize(("traffic", "tier"), [("on_demand_flex", "flex"),
                                               ("on_demand_priority", "priority")])  # fmt: skip
def test_vertex_paygo_tiers_are_priced_at_their_tier(traffic, tier):
    """Priority and Flex PayGo are billed per token at their tier, with or without the tier
    recorded beside them; a PT multiplier does not apply to them."""
    book = PriceBook(
        parse_overlay(PT + "service_tiers:\n  google/priority: '1.8'\n  google/flex: '0.5'\n")
    )
    by_tier = book.apply(_call(service_tier=tier))
    assert by_tier.priced and by_tier.cost_usd != book.apply(_call()).cost_usd
    for call in (_call(traffic_type=traffic), _call(traffic_type=traffic, service_tier=tier)):
        assert book.apply(call).cost_usd == by_tier.cost_usd


def test_searches_are_billed_whatever_paid_for_the_tokens():
    """Grounding with Google Search is billed per search beside Provisioned Throughput."""
    book = PriceBook(parse_overlay(PT))
    standard = book.apply(_call(web_search_calls=3))
    call = book.apply(_call(web_search_calls=3, traffic_type="provisioned_throughput"))
    assert call.priced and standard.web_search_cost_usd > 0
    assert call.web_search_cost_usd == standard.web_search_cost_usd
    assert call.cost_usd == call.web_search_cost_usd  # the tokens cost nothing more


def test_overlay_traffic_types_are_validated():
    with pytest.raises(OverlayError, match="traffic_types.provisioned_throughput"):
        parse_overlay("traffic_types:\n  provisioned_throughput: -1\n")
    with pytest.raises(OverlayError, match="traffic_types must map"):
        parse_overlay("traffic_types: [provisioned_throughput]\n")
    with pytest.raises(OverlayError, match="known: .*traffic_types"):
        parse_overlay("traffic_type:\n  provisioned_throughput: 0\n")


def test_explain_shows_the_price_of_a_traffic_type():
    share = "traffic_types:\n  google/provisioned_throughput: '0.5'\n"
    book = PriceBook(parse_overlay(share))
    [standard] = explain_model(book, "google", MODEL, TS)
    [pt] = explain_model(book, "google", MODEL, TS, traffic_type="provisioned_throughput")
    assert pt["traffic_type"] == "provisioned_throughput" and "traffic_type" not in standard
    for kind in ("input", "output", "cache_read"):
        key = f"{kind}_per_mtok_usd"
        assert Decimal(pt[key]) == Decimal(standard[key]) / 2, kind
    unpriced = explain_model(
        PriceBook(), "google", MODEL, TS, traffic_type="provisioned_throughput"
    )
    assert unpriced == []


@pytest.mark.parametrize(
    ("extra", "traffic"),
    [
        ({"llm_margin.traffic_type": "provisioned_throughput"}, "provisioned_throughput"),
        ({"llm_margin.traffic_type": "PROVISIONED_THROUGHPUT"}, "provisioned_throughput"),
        ({"llm_margin.traffic_type": "on_demand"}, "on_demand"),
        ({}, ""),
    ],
)
def test_the_span_traffic_type_is_kept_and_priced(extra, traffic):
    attributes = {
        "gen_ai.operation.name": "generate_content",
        "gen_ai.provider.name": "gcp.vertex_ai",
        "gen_ai.request.model": MODEL,
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 400,
        **extra,
    }
    span = make_span(1, attributes)
    call = call_from_span(span, attributes_to_dict(span.attributes))
    assert call.traffic_type == traffic
    # the pipeline reads only READ_KEYS: the traffic type must be among them
    assert call_from_span(span, read_attributes(span.attributes)) == call
    unpriced = PriceBook().apply(call_from_span(span, read_attributes(span.attributes)))
    assert unpriced.priced is (traffic != "provisioned_throughput")
    PriceBook(parse_overlay(PT)).apply(call)
    assert call.priced and (call.cost_usd == 0) is (traffic == "provisioned_throughput")


def _seen(**kw) -> dict:
    record = dict(provider="google", response_model=MODEL, request_model=MODEL, web_search_calls=0,
                  file_search_calls=0, speeds=[], service_tiers=[], last_ts=TS)  # fmt: skip
    return {**record, **kw}


def test_prices_check_names_the_traffic_types_multiplier():
    seen = _seen(traffic_types=["provisioned_throughput"])
    assert _unpriced_reason(PriceBook(), seen) == (
        "no provisioned_throughput traffic price; give `google/provisioned_throughput` a "
        "multiplier under `traffic_types:` in a price overlay (Provisioned Throughput is paid "
        'by its subscription: "0" counts no cost per token, or a share of the list price to '
        "allocate the subscription)"
    )
    assert _unpriced_reason(PriceBook(parse_overlay(PT)), seen) == ""
    assert _unpriced_reason(PriceBook(), _seen()) == ""  # a record made before the column


def test_prices_show_a_traffic_type(capsys, tmp_path):
    show = ["prices", "show", MODEL, "--format", "csv", "--at", "2026-11-10"]
    assert cli.main([*show, "--traffic-type", "provisioned_throughput"]) == 2
    error = capsys.readouterr().err
    assert (
        f"no price for model '{MODEL}' of provider 'google' served as traffic type "
        "'provisioned_throughput'; give `google/provisioned_throughput` a multiplier under "
        "`traffic_types:`" in error
    )
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(PT)
    pt = [*show, "--traffic-type", "provisioned_throughput", "--price-overlay", str(overlay)]
    assert cli.main(pt) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert header.split(",")[3] == "traffic_type"
    assert row.split(",")[3:9] == ["provisioned_throughput", "genai-prices", "0", "0", "0", "0"]


def test_models_seen_lists_the_price_books_on_demand_traffic_and_standard_geographies():
    """models_seen.sql (which `prices check` reads) names, as SQL literals, the traffic types
    and geographies the price book prices without a multiplier; a value added to one list and
    not the other would make `prices check` report calls the book prices, or miss some."""
    import re

    from llm_margin.clickhouse import read_sql
    from llm_margin.processor.pricing.price_book import ON_DEMAND_TRAFFIC, STANDARD_GEOS

    sql = read_sql("queries/models_seen.sql")

    def listed(column: str) -> frozenset[str]:
        found = re.search(rf"{column}, {column} NOT IN \(([^)]*)\)", sql)
        assert found, column
        return frozenset(re.findall(r"'([^']*)'", found.group(1)))

    assert listed("traffic_type") == ON_DEMAND_TRAFFIC
    assert listed("inference_geo") == STANDARD_GEOS
