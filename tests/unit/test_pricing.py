"""The price book: genai-prices parity (oracle: genai_prices.calc_price), the overlay's features,
price_version, and overlay validation errors."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from decimal import Decimal

import genai_prices
import pytest
from llm_margin.processor.pricing import OverlayError, PriceBook
from llm_margin.processor.pricing.explain import explain_model
from llm_margin.processor.pricing.genai import GenaiPrices, Usage4
from llm_margin.processor.pricing.overlay import parse_overlay
from llm_margin.processor.records import CallRecord

Q = Decimal("1e-18")
TS = datetime(2026, 11, 10, 12, 0, tzinfo=timezone.utc)

# One row per provider; tiered (long-context) models included on both sides of the tier.
MODELS = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("openai", "o3"),
    ("openai", "text-embedding-3-small"),
    ("openai", "gpt-audio"),  # audio tokens priced apart from text
    ("openai", "gpt-4.1-nano"),  # no search prices
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-3-5-haiku-20241022"),
    ("anthropic", "claude-opus-4-1"),
    ("google", "gemini-2.5-pro"),
    ("deepseek", "deepseek-chat"),
]


def _usages(seed: int) -> list[Usage4]:
    rng = random.Random(seed)
    out = [Usage4(), Usage4(1, 1), Usage4(250_000, 10, 1000, 500, 100)]
    for _ in range(60):
        read, write = rng.randint(0, 8000), rng.randint(0, 4000)
        total_in, total_out = read + write + rng.randint(0, 400_000), rng.randint(0, 8000)
        out.append(
            Usage4(
                total_in,
                total_out,
                read,
                write,
                rng.randint(0, write),
                rng.randint(0, total_in) if rng.random() < 0.5 else 0,
                rng.randint(0, total_out) if rng.random() < 0.5 else 0,
                rng.randint(0, 40) if rng.random() < 0.5 else 0,  # web searches
                rng.randint(0, 40) if rng.random() < 0.5 else 0,  # file searches
            )
        )
    return out


@pytest.mark.parametrize(("provider", "model"), MODELS)
def test_fast_path_equals_genai_prices_exactly(provider, model):
    fast = GenaiPrices()
    for usage in _usages(hash(model) & 0xFFFF):
        got = fast.resolve(provider, model, TS).cost(usage)
        oracle = genai_prices.calc_price(
            usage.genai(), model, provider_id=provider, genai_request_timestamp=TS
        ).total_price
        assert got == oracle, (usage, got, oracle)


def _call(**kw) -> CallRecord:
    base = dict(ts=TS, trace_id="t", span_id="s", provider="openai", request_model="gpt-4o-mini")
    base.update(kw)
    return CallRecord(**base)


def test_unknown_model_is_unpriced_with_tokens_kept():
    call = PriceBook().apply(_call(request_model="no-such-model-xyz", input_tokens=10))
    assert (call.priced, call.cost_usd, call.price_version, call.input_tokens) == (
        False,
        Decimal(0),
        "",
        10,
    )


def test_response_model_first_then_request_model():
    book = PriceBook()
    call = book.apply(
        _call(response_model="gpt-4o-mini-2024-07-18", input_tokens=1000, output_tokens=100)
    )
    oracle = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, output_tokens=100),
        "gpt-4o-mini-2024-07-18",
        provider_id="openai",
        genai_request_timestamp=TS,
    ).total_price
    assert call.cost_usd == oracle.quantize(Q)
    fallback = book.apply(_call(response_model="weird-alias", input_tokens=1000))
    assert fallback.priced and fallback.cost_usd > 0


OVERLAY = """
models:
  - provider: self-hosted
    model: llama-3.1-70b-internal
    input_per_mtok: "0.20"
    output_per_mtok: "0.60"
    cache_read_per_mtok: "0.05"
    per_request: "0.0001"
  - provider: openai
    model: gpt-4o-mini
    input_per_mtok: "0.10"
    output_per_mtok: "0.40"
    effective_from: 2026-11-15
  - model: "mistral-*"
    input_per_mtok: 1
    output_per_mtok: 3
discounts:
  - provider: openai
    percent: "10"
  - provider: openai
    model: gpt-4o
    percent: "25"
    effective_from: 2026-11-01
service_tiers:
  batch: "0.5"
  priority: "2"
off_peak:
  - provider: deepseek
    start: "16:30"
    end: "00:30"
    multiplier: "0.5"
"""


@pytest.fixture
def book():
    return PriceBook(parse_overlay(OVERLAY))


def test_custom_model_per_token_and_per_request(book):
    call = book.apply(
        _call(
            provider="self-hosted",
            request_model="llama-3.1-70b-internal",
            input_tokens=1_000_000,
            cache_read_tokens=200_000,
            output_tokens=500_000,
        )
    )
    # 800k fresh at 0.20 + 200k cached at 0.05 + 500k out at 0.60 + 0.0001 per request
    assert call.cost_usd == Decimal("0.16") + Decimal("0.01") + Decimal("0.30") + Decimal("0.0001")
    assert call.price_version.startswith("genai-prices-") and "+overlay-" in call.price_version


def test_effective_date_prices_before_and_after_differently(book):
    usage = dict(input_tokens=1_000_000, output_tokens=1_000_000)
    before = book.apply(_call(ts=datetime(2026, 11, 14, 23, 59, tzinfo=timezone.utc), **usage))
    after = book.apply(_call(ts=datetime(2026, 11, 15, 0, 0, tzinfo=timezone.utc), **usage))
    oracle = genai_prices.calc_price(
        genai_prices.Usage(**usage),
        "gpt-4o-mini",
        provider_id="openai",
        genai_request_timestamp=before.ts,
    ).total_price
    assert before.cost_usd == (oracle * Decimal("0.9")).quantize(Q)  # 10% openai discount
    assert after.cost_usd == ((Decimal("0.10") + Decimal("0.40")) * Decimal("0.9")).quantize(Q)


def test_most_specific_discount_wins_and_tiers_multiply(book):
    usage = dict(request_model="gpt-4o", input_tokens=10_000, output_tokens=2_000)
    plain = PriceBook().apply(_call(**usage)).cost_usd
    assert book.apply(_call(**usage)).cost_usd == (plain * Decimal("0.75")).quantize(Q)
    batch = book.apply(_call(service_tier="batch", **usage)).cost_usd
    assert batch == (plain * Decimal("0.5") * Decimal("0.75")).quantize(Q)
    # genai-prices has a priority price for gpt-4o: that, not the overlay's 2x on top of it
    priority = book.apply(_call(service_tier="Priority", **usage)).cost_usd
    oracle = _oracle("openai", "gpt-4o", usage, {"service_tier": "priority"})
    assert priority == (oracle * Decimal("0.75")).quantize(Q) and oracle != plain
    # ... and none for Anthropic's priority tier: the overlay's multiplier of the standard price
    claude = dict(usage, provider="anthropic", request_model="claude-sonnet-4-5")
    standard = book.apply(_call(**claude)).cost_usd
    assert book.apply(_call(service_tier="priority", **claude)).cost_usd == standard * 2


def _oracle(provider: str, model: str, usage: dict, context: dict | None = None) -> Decimal:
    tokens = {k: v for k, v in usage.items() if k.endswith("_tokens")}
    return genai_prices.calc_price(
        genai_prices.Usage(**tokens),
        model,
        provider_id=provider,
        genai_request_timestamp=TS,
        price_context=context,
    ).total_price


# (provider, model, service tier, speed, genai-prices price context it is priced at)
REQUEST_MODES = [
    ("openai", "gpt-5", "flex", "", {"service_tier": "flex"}),
    ("openai", "gpt-5", "priority", "", {"service_tier": "priority"}),
    ("openai", "gpt-5", "default", "", None),
    ("openai", "gpt-5", "auto", "", None),  # a tier with no price of its own: standard
    ("openai", "o3", "FLEX", "", {"service_tier": "flex"}),  # tiers are matched lowercased
    ("anthropic", "claude-opus-4-8", "standard", "fast", {"speed": "fast"}),
    ("anthropic", "claude-opus-4-8", "", "FAST", {"speed": "fast"}),
    ("anthropic", "claude-opus-4-8", "", "standard", None),
    ("anthropic", "claude-opus-4-8", "", "", None),
]


@pytest.mark.parametrize(("provider", "model", "tier", "speed", "context"), REQUEST_MODES)
def test_service_tiers_and_speed_modes_are_priced_at_their_own_genai_prices(
    provider, model, tier, speed, context
):
    usage = dict(input_tokens=120_000, cache_read_tokens=20_000, output_tokens=3_000)
    call = PriceBook().apply(
        _call(provider=provider, request_model=model, service_tier=tier, speed=speed, **usage)
    )
    assert call.priced and call.cost_usd == _oracle(provider, model, usage, context)
    if context:  # a premium or discounted price, not the standard one
        assert call.cost_usd != _oracle(provider, model, usage)


def test_a_speed_mode_without_a_price_is_unpriced_unless_the_overlay_multiplies_it():
    fast = dict(provider="anthropic", request_model="claude-sonnet-4-5", speed="fast")
    usage = dict(input_tokens=10_000, output_tokens=2_000)
    call = PriceBook().apply(_call(**fast, **usage))
    assert (call.priced, call.cost_usd, call.price_version) == (False, Decimal(0), "")
    overlay = PriceBook(parse_overlay("speeds:\n  fast: '6'\nservice_tiers:\n  priority: 2\n"))
    standard = overlay.apply(_call(**dict(fast, speed=""), **usage)).cost_usd
    assert overlay.apply(_call(**fast, **usage)).cost_usd == standard * 6
    both = overlay.apply(_call(**fast, service_tier="priority", **usage)).cost_usd
    assert both == standard * 12
    # a model genai-prices has a fast price for: that price, the overlay's 6x not applied
    opus = dict(fast, request_model="claude-opus-4-8")
    assert overlay.apply(_call(**opus, **usage)).cost_usd == _oracle(
        "anthropic", "claude-opus-4-8", usage, {"speed": "fast"}
    )


@pytest.mark.parametrize(
    ("provider", "tier", "speed", "multiplier"),
    [
        ("openai", "priority", "", 3),  # openai/priority wins over priority
        ("anthropic", "priority", "", 1),  # priority alone: every other provider
        ("openai", "flex", "", Decimal("0.5")),
        ("google", "flex", "", 1),  # openai/flex only: google's flex at the standard price
        ("anthropic", "", "fast", 6),
        ("anthropic", "", "FAST", 6),
        ("openai", "", "fast", None),  # anthropic/fast only: unpriced
    ],
)
def test_a_mode_multiplier_can_name_its_provider(provider, tier, speed, multiplier):
    """An overlay model (genai-prices has no tier or speed price for it), every provider."""
    model = "some-model"
    book = PriceBook(
        parse_overlay(
            "models:\n  - {model: some-model, input_per_mtok: 1, output_per_mtok: 2}\n"
            "service_tiers:\n  OpenAI/Priority: 3\n  priority: 1\n  openai/flex: '0.5'\n"
            "speeds:\n  anthropic/fast: 6\n"
        )
    )
    usage = dict(input_tokens=10_000, output_tokens=2_000)
    mode = dict(provider=provider, request_model=model, **usage)
    standard = book.apply(_call(**mode)).cost_usd
    call = book.apply(_call(**mode, service_tier=tier, speed=speed))
    if multiplier is None:
        assert (call.priced, call.cost_usd) == (False, Decimal(0))
    else:
        assert call.priced and standard > 0 and call.cost_usd == standard * multiplier


@pytest.mark.parametrize(
    ("provider", "model", "tier", "overlay", "expected"),
    [
        # no priority price in genai-prices: unpriced, not charged the cheaper standard price
        ("google", "gemini-2.5-flash", "priority", "", None),
        ("google", "gemini-2.5-flash", "PRIORITY", "", None),
        ("openai", "gpt-5-nano", "priority", "", None),
        ("google", "gemini-2.5-flash", "priority", "google/priority: '1.8'", Decimal("1.8")),
        ("google", "gemini-2.5-flash", "priority", "priority: 2", 2),
        ("google", "gemini-2.5-flash", "priority", "openai/priority: 2", None),
        # a discount tier without its price: the standard price (never understated)
        ("google", "gemini-2.5-flash", "flex", "", 1),
        ("openai", "gpt-4.1", "flex", "", 1),
        # Anthropic's Priority Tier is a capacity commitment: the standard price
        ("anthropic", "claude-sonnet-4-5", "priority", "", 1),
        ("google", "gemini-2.5-flash", "default", "", 1),
    ],
)
def test_a_premium_tier_without_its_price_is_unpriced(provider, model, tier, overlay, expected):
    book = PriceBook(parse_overlay(f"service_tiers:\n  {overlay}\n")) if overlay else PriceBook()
    usage = dict(provider=provider, request_model=model, input_tokens=10_000, output_tokens=2_000)
    standard = book.apply(_call(**usage)).cost_usd
    call = book.apply(_call(**usage, service_tier=tier))
    if expected is None:
        assert (call.priced, call.cost_usd, call.price_version) == (False, Decimal(0), "")
    else:
        assert call.priced and standard > 0 and call.cost_usd == standard * expected


def test_overlay_speeds_are_validated():
    with pytest.raises(OverlayError, match="speeds.fast"):
        parse_overlay("speeds:\n  fast: -1\n")
    with pytest.raises(OverlayError, match="speeds must map"):
        parse_overlay("speeds: [fast]\n")


@pytest.mark.parametrize(
    ("hour", "minute", "off_peak"),
    [(16, 29, False), (16, 30, True), (23, 0, True), (0, 29, True), (0, 30, False)],
)
def test_off_peak_window_wraps_midnight(book, hour, minute, off_peak):
    ts = datetime(2026, 11, 10, hour, minute, tzinfo=timezone.utc)
    usage = dict(provider="deepseek", request_model="deepseek-chat", input_tokens=5000, ts=ts)
    plain = PriceBook().apply(_call(**usage)).cost_usd
    got = book.apply(_call(**usage)).cost_usd
    assert got == ((plain * Decimal("0.5")).quantize(Q) if off_peak else plain)


def test_glob_model_any_provider(book):
    call = book.apply(
        _call(provider="mistral", request_model="mistral-large-x", input_tokens=10**6)
    )
    assert call.cost_usd == Decimal(1)


def test_price_version_changes_with_overlay_content():
    a = PriceBook(parse_overlay(OVERLAY)).version
    b = PriceBook(parse_overlay(OVERLAY.replace('"0.20"', '"0.21"'))).version
    assert a != b and PriceBook().version == f"genai-prices-{genai_prices.__version__}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [{model: x}]", "give input_per_mtok"),
        ("models: [{model: x, input_per_mtok: -1}]", "non-negative"),
        ("models: [{model: x, input_per_mtok: lots}]", "must be a number"),
        ("models: [{input_per_mtok: 1}]", "model is required"),
        ("models: [{model: x, input_per_mtok: 1, colour: red}]", "unknown fields"),
        ("discounts: [{percent: 120}]", "0-100"),
        ("off_peak: [{start: '25:00', end: '01:00', multiplier: 1}]", "UTC time"),
        ("prices: []", "unknown sections"),
        (
            "models: [{model: x, input_per_mtok: 1, effective_from: 2026-02-01, "
            "effective_until: 2026-01-01}]",
            "effective_until must be after",
        ),
    ],
)
def test_bad_overlay_is_a_clear_error(text, message):
    with pytest.raises(OverlayError, match=message):
        parse_overlay(text)


def test_yaml_floats_are_converted_exactly():
    overlay = parse_overlay("models: [{model: m, input_per_mtok: 0.1, output_per_mtok: 0.3}]")
    assert overlay.models[0].input_per_mtok == Decimal("0.1")


def test_explain_shows_what_calls_are_charged(book):
    row = explain_model(book, "openai", "gpt-4o-mini", datetime(2026, 11, 20, tzinfo=timezone.utc))
    assert row[0]["source"] == "overlay"
    assert (row[0]["input_per_mtok_usd"], row[0]["output_per_mtok_usd"]) == ("0.09", "0.36")
    assert explain_model(book, "openai", "no-such-model", TS) == []


def test_huge_token_counts_are_priced_exactly():
    """A cost Decimal(38, 18) holds is computed exactly: with Python's default 28 digits,
    2**63 - 1 input tokens failed with a bare decimal.InvalidOperation (no message)."""
    tokens = 2**63 - 1
    price = PriceBook().price_usage("openai", ("gpt-4o-mini",), Usage4(tokens, 0, 0, 0, 0), TS)
    assert price.priced
    assert price.cost_usd == Decimal(tokens) * Decimal("0.15") / 10**6


def test_memos_stay_bounded_however_many_model_names_spans_send():
    prices = GenaiPrices(max_entries=50)
    for i in range(500):  # model names are untrusted span input
        prices.resolve("openai", f"made-up-model-{i}", TS)
    assert len(prices._cache) <= 50 and len(prices._timed) <= 50
    assert prices.resolve("openai", "gpt-4o-mini", TS) is not None  # still answers


# Providers answer with a dated snapshot ("gpt-4o-mini-2024-07-18") that genai-prices knows,
# while an overlay names the model the app asked for: the overlay's entry and discount must
# still apply (an entry wins over genai-prices, whichever of the call's names it matches).
BY_REQUEST_NAME = """
models:
  - provider: openai
    model: gpt-4o-mini
    input_per_mtok: "0.12"
    output_per_mtok: "0.48"
discounts:
  - provider: openai
    model: gpt-4o
    percent: "25"
"""


@pytest.mark.parametrize(
    ("request_model", "response_model", "source", "factor"),
    [
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "overlay", None),
        ("gpt-4o-mini", "", "overlay", None),
        ("gpt-4o", "gpt-4o-2024-08-06", "genai-prices", Decimal("0.75")),
        ("gpt-4o", "", "genai-prices", Decimal("0.75")),
    ],
)
def test_overlay_matches_the_request_model_when_the_response_model_is_dated(
    request_model, response_model, source, factor
):
    book = PriceBook(parse_overlay(BY_REQUEST_NAME))
    usage = dict(input_tokens=1_000_000, output_tokens=1_000_000)
    call = _call(request_model=request_model, response_model=response_model, **usage)
    price = book.price(call)
    assert price.source == source
    if factor is None:
        assert price.cost_usd == Decimal("0.60")
    else:
        plain = PriceBook().price(call).cost_usd
        assert price.cost_usd == (plain * factor).quantize(Q)


# An exact model name is more specific than a glob matching it, whichever the file lists first
# (as for model entries).
GLOB_DISCOUNT = '  - {model: "gpt-4o*", percent: "10"}\n'
EXACT_DISCOUNT = '  - {model: gpt-4o, percent: "20"}\n'


@pytest.mark.parametrize(
    "discounts", [GLOB_DISCOUNT + EXACT_DISCOUNT, EXACT_DISCOUNT + GLOB_DISCOUNT]
)
@pytest.mark.parametrize(
    ("request_model", "factor"), [("gpt-4o", Decimal("0.80")), ("gpt-4o-mini", Decimal("0.90"))]
)
def test_an_exact_model_discount_beats_a_glob(discounts, request_model, factor):
    book = PriceBook(parse_overlay("discounts:\n" + discounts))
    call = _call(request_model=request_model, input_tokens=10_000, output_tokens=2_000)
    plain = PriceBook().price(call).cost_usd
    assert book.price(call).cost_usd == (plain * factor).quantize(Q)


# A renegotiated discount: a new entry from its date, the old one left open-ended. Calls from
# the new date get the new discount, whichever entry the file lists first (as model entries:
# the latest effective_from in effect wins among equally specific ones).
OLD_DISCOUNT = '  - {provider: openai, percent: "10", effective_from: 2026-11-01}\n'
NEW_DISCOUNT = '  - {provider: openai, percent: "15", effective_from: 2026-12-01}\n'


@pytest.mark.parametrize("discounts", [OLD_DISCOUNT + NEW_DISCOUNT, NEW_DISCOUNT + OLD_DISCOUNT])
@pytest.mark.parametrize(
    ("ts", "factor"),
    [
        (datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=timezone.utc), Decimal(1)),
        (datetime(2026, 11, 1, tzinfo=timezone.utc), Decimal("0.90")),
        (datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=timezone.utc), Decimal("0.90")),
        (datetime(2026, 12, 1, tzinfo=timezone.utc), Decimal("0.85")),
        (datetime(2027, 3, 1, tzinfo=timezone.utc), Decimal("0.85")),
    ],
)
def test_a_later_discount_applies_from_its_date(discounts, ts, factor):
    book = PriceBook(parse_overlay("discounts:\n" + discounts))
    call = _call(request_model="gpt-4o", ts=ts, input_tokens=10_000, output_tokens=2_000)
    plain = PriceBook().price(call).cost_usd
    assert book.price(call).cost_usd == (plain * factor).quantize(Q)


# genai-prices: OpenAI web search $10 and file search $2.50 per 1,000 calls, Anthropic web
# search $10 per 1,000; gpt-4.1-nano has neither, claude-sonnet-4-5 no file search.
@pytest.mark.parametrize(
    ("provider", "model", "web", "files", "searches_usd"),
    [
        ("openai", "gpt-4o", 3, 2, Decimal("0.035")),
        ("openai", "gpt-4o", 0, 1, Decimal("0.0025")),
        ("anthropic", "claude-sonnet-4-5", 7, 0, Decimal("0.07")),
    ],
)
def test_search_calls_are_priced_beside_the_tokens(provider, model, web, files, searches_usd):
    book = PriceBook()
    tokens = dict(provider=provider, request_model=model, input_tokens=1000, output_tokens=100)
    plain = book.apply(_call(**tokens))
    call = book.apply(_call(**tokens, web_search_calls=web, file_search_calls=files))
    assert call.priced and call.cost_usd - plain.cost_usd == searches_usd
    oracle = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=1000, output_tokens=100, web_searches=web, storage_searches=files
        ),
        model,
        provider_id=provider,
        genai_request_timestamp=TS,
    ).total_price
    assert call.cost_usd == oracle.quantize(Q)


@pytest.mark.parametrize(
    ("provider", "model", "web", "files"),
    [
        ("openai", "gpt-4.1-nano", 1, 0),
        ("openai", "gpt-4.1-nano", 0, 1),
        ("anthropic", "claude-sonnet-4-5", 0, 1),
    ],
)
def test_searches_without_a_price_leave_the_call_unpriced(provider, model, web, files):
    # genai-prices would price them at 0: the call would look fully priced, its cost short
    tokens = dict(provider=provider, request_model=model, input_tokens=1000, output_tokens=100)
    call = PriceBook().apply(_call(**tokens, web_search_calls=web, file_search_calls=files))
    assert (call.priced, call.cost_usd, call.price_version) == (False, Decimal(0), "")
    assert PriceBook().apply(_call(**tokens)).priced  # the same call without searches is


SEARCH_OVERLAY = """
models:
  - provider: self-hosted
    model: searcher
    input_per_mtok: "1"
    web_search_per_k: "12.5"
    file_search_per_k: 3
  - provider: openai
    model: gpt-4o
    input_per_mtok: "2"
"""


def test_overlay_prices_searches_per_thousand_and_refuses_to_guess():
    book = PriceBook(parse_overlay(SEARCH_OVERLAY))
    call = book.apply(
        _call(
            provider="self-hosted",
            request_model="searcher",
            input_tokens=1_000_000,
            web_search_calls=3,
            file_search_calls=1,
        )
    )
    # $1 of input + 3 x $0.0125 + 1 x $0.003
    assert call.priced and call.cost_usd == Decimal("1.0405")
    # an overlay entry without a web search price: unpriced, not priced with searches at 0
    entry_only = _call(request_model="gpt-4o", input_tokens=1000, web_search_calls=1)
    assert not book.apply(entry_only).priced
    assert book.apply(_call(request_model="gpt-4o", input_tokens=1000)).priced


@pytest.mark.parametrize("value", ["-1", "ten", True])
def test_overlay_search_price_must_be_a_non_negative_number(value):
    text = f"models:\n  - model: m\n    input_per_mtok: 1\n    web_search_per_k: {value!r}\n"
    with pytest.raises(OverlayError, match="web_search_per_k"):
        parse_overlay(text)


@pytest.mark.parametrize(
    ("overlay", "model", "tier", "web_usd", "file_usd"),
    [
        # genai-prices, linear: $10 / $2.50 per 1,000
        ("", "gpt-4o", "", Decimal("0.03"), Decimal("0.005")),
        # a long-context call (genai-prices' slow path): the searches' share is the same
        ("", "gpt-5.4", "", Decimal("0.03"), Decimal("0.005")),
        # the overlay's own prices, then a batch multiplier on all of the price
        (SEARCH_OVERLAY, "searcher", "", Decimal("0.0375"), Decimal("0.006")),
        (SEARCH_OVERLAY + 'service_tiers:\n  batch: "0.5"\n', "searcher", "batch", None, None),
    ],
)
def test_the_searches_share_of_the_cost_is_kept_apart(overlay, model, tier, web_usd, file_usd):
    # reconcile compares it with the provider exports' search lines, the rest with the model's
    book = PriceBook(parse_overlay(overlay) if overlay else None)
    provider = "self-hosted" if model == "searcher" else "openai"
    tokens = dict(provider=provider, request_model=model, output_tokens=300, service_tier=tier)
    tokens["input_tokens"] = 300_000 if model == "gpt-5.4" else 2_000  # past its 272k tier
    call = book.apply(_call(**tokens, web_search_calls=3, file_search_calls=2))
    plain = book.apply(_call(**tokens))
    if web_usd is None:  # halved with the rest of the price
        web_usd, file_usd = Decimal("0.01875"), Decimal("0.003")
    assert call.priced and (call.web_search_cost_usd, call.file_search_cost_usd) == (
        web_usd,
        file_usd,
    )
    # what is left is exactly the tokens' cost
    assert call.cost_usd - call.web_search_cost_usd - call.file_search_cost_usd == plain.cost_usd
    assert (plain.web_search_cost_usd, plain.file_search_cost_usd) == (0, 0)


def test_an_unpriced_call_has_no_search_cost():
    call = PriceBook().apply(_call(request_model="gpt-4.1-nano", web_search_calls=2))
    assert (call.priced, call.web_search_cost_usd, call.file_search_cost_usd) == (False, 0, 0)


def test_explain_shows_the_price_of_a_service_tier_and_a_speed_mode():
    book = PriceBook()
    [standard] = explain_model(book, "openai", "gpt-5", TS)
    [priority] = explain_model(book, "openai", "gpt-5", TS, service_tier="priority")
    assert (standard["input_per_mtok_usd"], standard["output_per_mtok_usd"]) == ("1.25", "10")
    assert (priority["input_per_mtok_usd"], priority["output_per_mtok_usd"]) == ("2.5", "20")
    assert priority["service_tier"] == "priority" and "service_tier" not in standard
    [fast] = explain_model(book, "anthropic", "claude-opus-4-8", TS, speed="fast")
    assert (fast["speed"], fast["input_per_mtok_usd"], fast["output_per_mtok_usd"]) == (
        "fast",
        "10",
        "50",
    )
    assert explain_model(book, "anthropic", "claude-sonnet-4-5", TS, speed="fast") == []


# Grounding with Google Search: Gemini 1.x / 2.x bill per grounded prompt ($35 per 1,000 in
# genai-prices), Gemini 3 and later per search query ($14 per 1,000). Calls record the queries.
@pytest.mark.parametrize(
    ("models", "queries", "billed"),
    [
        (("gemini-2.5-flash",), 3, 1),
        (("gemini-2.5-pro",), 1, 1),
        (("gemini-2.0-flash",), 5, 1),
        (("gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash"), 2, 1),  # response model first
        (("gemini-3.5-flash",), 3, 3),
        (("gemini-3.1-pro-preview",), 2, 2),
        (("", "gemini-3.5-flash"), 4, 4),  # no response model: the request's
    ],
)
def test_gemini_searches_are_billed_per_grounded_prompt_or_per_query(models, queries, billed):
    book = PriceBook()
    tokens = dict(
        provider="google",
        response_model=models[0],
        request_model=models[-1],
        input_tokens=1000,
        output_tokens=100,
    )
    call = book.apply(_call(**tokens, web_search_calls=queries))
    plain = book.apply(_call(**tokens))
    oracle = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, output_tokens=100, web_searches=billed),
        models[-1],
        provider_id="google",
        genai_request_timestamp=TS,
    ).total_price
    assert call.priced and call.cost_usd == oracle.quantize(Q)
    per_k = Decimal(35) if models[-1].startswith("gemini-2") else Decimal(14)
    assert call.web_search_cost_usd == billed * per_k / 1000
    assert call.cost_usd - call.web_search_cost_usd == plain.cost_usd


def test_gemini_grounding_rule_is_google_s_only():
    # another provider's model of that name is billed per call, as the count says
    book = PriceBook(parse_overlay(SEARCH_OVERLAY.replace("searcher", "gemini-2.5-flash")))
    call = book.apply(
        _call(provider="self-hosted", request_model="gemini-2.5-flash", web_search_calls=3)
    )
    assert call.priced and call.web_search_cost_usd == Decimal("0.0375")
    # the overlay's web_search_per_k prices Gemini 2.x's grounded prompt, once per call
    google = PriceBook(
        parse_overlay(
            'models:\n  - provider: google\n    model: gemini-2.5-flash\n    input_per_mtok: "1"\n'
            '    web_search_per_k: "20"\n'
        )
    )
    call = google.apply(
        _call(provider="google", request_model="gemini-2.5-flash", web_search_calls=3)
    )
    assert call.priced and call.web_search_cost_usd == Decimal("0.02")


def test_gemini_searches_without_a_price_leave_the_call_unpriced():
    # gemini-2.0-flash-lite has no search price in genai-prices: never priced at 0
    tokens = dict(provider="google", request_model="gemini-2.0-flash-lite", input_tokens=1000)
    call = PriceBook().apply(_call(**tokens, web_search_calls=2))
    assert (call.priced, call.cost_usd, call.web_search_cost_usd) == (False, Decimal(0), 0)
    assert PriceBook().apply(_call(**tokens)).priced
