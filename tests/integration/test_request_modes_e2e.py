"""End to end through `opentelemetry-instrument` and the processor: calls made at a service tier
(OpenAI flex / priority) are stored with it and charged genai-prices' price for that tier,
not the standard price."""

from __future__ import annotations

import textwrap
from decimal import Decimal

import genai_prices
import pytest
from conftest import run_instrumented_app, wait_until
from instr_fixtures import sim  # noqa: F401

pytestmark = pytest.mark.integration

APP = textwrap.dedent(
    """
    import sys

    import openai
    from opentelemetry import trace

    oai = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test", max_retries=0)
    messages = [{"role": "user", "content": "Summarise the contract in three lines."}]
    oai.chat.completions.create(model="gpt-5", messages=messages, service_tier="priority")
    oai.chat.completions.create(model="gpt-5-mini", messages=messages, service_tier="flex")
    oai.chat.completions.create(model="o3", messages=messages, service_tier="auto")
    oai.responses.create(model="gpt-5-nano", input="Summarise it", service_tier="flex")
    with oai.responses.stream(model="o4-mini", input="Summarise it", service_tier="priority") as s:
        for _ in s:
            pass
    trace.get_tracer_provider().force_flush()
    """
)

# request model -> (stored service tier, the genai-prices price context it is charged at)
EXPECTED = {
    "gpt-5": ("priority", {"service_tier": "priority"}),
    "gpt-5-mini": ("flex", {"service_tier": "flex"}),
    "o3": ("default", None),  # auto is served at the default tier: the standard price
    "gpt-5-nano": ("flex", {"service_tier": "flex"}),
    "o4-mini": ("priority", {"service_tier": "priority"}),
}


def _price(row: dict, model: str, context: dict | None) -> Decimal:
    return genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cache_read_tokens=row["cache_read_tokens"],
        ),
        model,
        provider_id=row["provider"],
        genai_request_timestamp=row["ts"],
        price_context=context,
    ).total_price


def test_calls_at_a_service_tier_are_charged_that_tiers_price(processor, sim, tmp_path):  # noqa: F811
    run_instrumented_app(APP, tmp_path, "request-modes", processor, sim.openai_base_url)

    def calls() -> list[dict]:
        rows = processor.store.query(
            "SELECT * FROM llm_calls FINAL WHERE source = 'llm_margin'"
        ).dicts()
        return rows if len(rows) == len(EXPECTED) else []

    rows = {row["request_model"]: row for row in wait_until(calls, message="5 calls stored")}
    assert set(rows) == set(EXPECTED)
    for model, (tier, context) in EXPECTED.items():
        row = rows[model]
        assert row["service_tier"] == tier, model
        charged = _price(row, row["response_model"] or model, context)
        assert row["priced"] and row["cost_usd"] == charged.quantize(Decimal("1e-18")), model
        if context:  # not the standard price
            assert charged != _price(row, row["response_model"] or model, None), model
