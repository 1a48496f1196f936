"""End to end through `opentelemetry-instrument` and the processor: calls made at a service tier
(OpenAI and Gemini flex / priority) or a speed mode (Anthropic fast mode) are stored with it and
charged genai-prices' price for it, not the standard price; a fast call of a model with no fast
price is stored unpriced."""

from __future__ import annotations

import textwrap
from decimal import Decimal

import genai_prices
import pytest
from conftest import calls_by_model, run_instrumented_app
from instr_fixtures import sim  # noqa: F401

pytestmark = pytest.mark.integration

APP = textwrap.dedent(
    """
    import sys

    import anthropic
    import openai
    from google import genai
    from opentelemetry import trace

    oai = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test", max_retries=0)
    claude = anthropic.Anthropic(base_url=sys.argv[2], api_key="sk-ant-test", max_retries=0)
    gemini = genai.Client(api_key="test-key", http_options={"base_url": sys.argv[3]})
    messages = [{"role": "user", "content": "Summarise the contract in three lines."}]
    oai.chat.completions.create(model="gpt-5", messages=messages, service_tier="priority")
    oai.chat.completions.create(model="gpt-5-mini", messages=messages, service_tier="flex")
    oai.chat.completions.create(model="o3", messages=messages, service_tier="auto")
    oai.responses.create(model="gpt-5-nano", input="Summarise it", service_tier="flex")
    with oai.responses.stream(model="o4-mini", input="Summarise it", service_tier="priority") as s:
        for _ in s:
            pass
    claude.messages.create(model="claude-opus-4-8", max_tokens=60, messages=messages, speed="fast")
    with claude.beta.messages.stream(
        model="claude-opus-5-5", max_tokens=60, messages=messages, speed="fast"
    ) as stream:
        stream.until_done()
    # no fast price for this model in genai-prices: unpriced, never charged as standard
    claude.messages.create(model="claude-sonnet-4-5", max_tokens=60, messages=messages, speed="fast")
    claude.messages.create(model="claude-haiku-4-5", max_tokens=60, messages=messages)
    gemini.models.generate_content(
        model="gemini-3.8-flash-tts", contents="Read it", config={"service_tier": "priority"}
    )
    for _ in gemini.models.generate_content_stream(
        model="gemini-2.5-flash", contents="Read it", config={"service_tier": "flex"}
    ):
        pass  # no flex price for this model in genai-prices: the standard price
    trace.get_tracer_provider().force_flush()
    """
)

# request model -> (stored service tier, speed, the genai-prices price context it is charged
# at; "unpriced": stored unpriced)
EXPECTED = {
    "gpt-5": ("priority", "", {"service_tier": "priority"}),
    "gpt-5-mini": ("flex", "", {"service_tier": "flex"}),
    "o3": ("default", "", None),  # auto is served at the default tier: the standard price
    "gpt-5-nano": ("flex", "", {"service_tier": "flex"}),
    "o4-mini": ("priority", "", {"service_tier": "priority"}),
    "claude-opus-4-8": ("standard", "fast", {"speed": "fast"}),
    "claude-opus-5-5": ("standard", "fast", {"speed": "fast"}),
    "claude-sonnet-4-5": ("standard", "fast", "unpriced"),
    "claude-haiku-4-5": ("standard", "", None),
    "gemini-3.8-flash-tts": ("priority", "", {"service_tier": "priority"}),
    "gemini-2.5-flash": ("flex", "", None),
}


def _price(row: dict, model: str, context: dict | None) -> Decimal:
    return genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cache_read_tokens=row["cache_read_tokens"],
            cache_write_tokens=row["cache_write_tokens"],
        ),
        model,
        provider_id=row["provider"],
        genai_request_timestamp=row["ts"],
        price_context=context,
    ).total_price


def test_calls_at_a_service_tier_are_charged_that_tiers_price(processor, sim, tmp_path):  # noqa: F811
    run_instrumented_app(
        APP,
        tmp_path,
        "request-modes",
        processor,
        sim.openai_base_url,
        sim.anthropic_base_url,
        sim.gemini_base_url,
    )

    rows = calls_by_model(processor, len(EXPECTED))
    assert set(rows) == set(EXPECTED)
    for model, (tier, speed, context) in EXPECTED.items():
        row = rows[model]
        assert (row["service_tier"], row["speed"]) == (tier, speed), model
        if context == "unpriced":
            assert (row["priced"], row["cost_usd"], row["input_tokens"] > 0) == (
                False,
                Decimal(0),
                True,
            ), model
            continue
        charged = _price(row, row["response_model"] or model, context)
        assert row["priced"] and row["cost_usd"] == charged.quantize(Decimal("1e-18")), model
        if context:  # not the standard price
            assert charged != _price(row, row["response_model"] or model, None), model
