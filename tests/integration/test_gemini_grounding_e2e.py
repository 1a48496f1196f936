"""End to end through `opentelemetry-instrument` and the processor: Gemini calls grounded with
Google Search (the real google-genai SDK against the simulator, streamed and not) store the
search queries they ran and are priced as Google bills them: one grounded prompt per call for
Gemini 2.x, each query for Gemini 3; a model with no search price leaves the call unpriced."""

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
    import asyncio
    import sys

    from google import genai
    from google.genai import types
    from opentelemetry import baggage, context, trace

    client = genai.Client(api_key="test-key", http_options={"base_url": sys.argv[1]})
    prompt = "Who won the euro 2024?"
    search = types.Tool(google_search=types.GoogleSearch())

    def config(searches=None, tools=(search,)):
        headers = {} if searches is None else {"x-sim-web-searches": str(searches)}
        return {"tools": list(tools), "http_options": {"headers": headers}}

    context.attach(baggage.set_baggage("customer.id", "acme"))
    client.models.generate_content(
        model="gemini-2.5-flash", contents=prompt, config=config(3)
    )
    # streamed: the simulator sends the grounding metadata twice (last two chunks)
    for _ in client.models.generate_content_stream(
        model="gemini-2.5-pro", contents=prompt, config=config(2)
    ):
        pass
    for _ in client.models.generate_content_stream(
        model="gemini-3.5-flash", contents=prompt, config=config(3, [{"google_search": {}}])
    ):
        pass

    async def main():
        await client.aio.models.generate_content(
            model="gemini-3.1-pro-preview", contents=prompt, config=config(4)
        )

    asyncio.run(main())
    # no search price in genai-prices: stored unpriced, never with its search at 0
    client.models.generate_content(model="gemini-2.0-flash-lite", contents=prompt, config=config())
    # no Google Search tool: no grounding, no search
    client.models.generate_content(
        model="gemini-2.5-flash-lite", contents=prompt, config=config(2, tools=())
    )
    trace.get_tracer_provider().force_flush()
    """
)

EXPECTED = {  # request model -> (queries recorded, searches billed, stream)
    "gemini-2.5-flash": (3, 1, False),  # Gemini 2.x: per grounded prompt
    "gemini-2.5-pro": (2, 1, True),
    "gemini-3.5-flash": (3, 3, True),  # Gemini 3: per search query
    "gemini-3.1-pro-preview": (4, 4, False),
    "gemini-2.0-flash-lite": (1, None, False),  # unpriced
    "gemini-2.5-flash-lite": (0, 0, False),
}


def _oracle(row, model: str, searches: int) -> Decimal:
    return genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cache_read_tokens=row["cache_read_tokens"],
            web_searches=searches,
        ),
        model,
        provider_id="google",
        genai_request_timestamp=row["ts"],
    ).total_price.quantize(Decimal("1e-18"))


def test_grounded_calls_store_their_queries_and_are_priced_as_billed(processor, sim, tmp_path):  # noqa: F811
    run_instrumented_app(APP, tmp_path, "gemini-grounding", processor, sim.gemini_base_url)

    rows = calls_by_model(processor, len(EXPECTED))
    assert set(rows) == set(EXPECTED)
    for model, (queries, billed, stream) in EXPECTED.items():
        row = rows[model]
        assert (row["provider"], row["customer_id"], row["status"]) == ("google", "acme", "ok")
        assert (row["web_search_calls"], row["stream"]) == (queries, stream), model
        if billed is None:
            assert (row["priced"], row["cost_usd"], row["web_search_cost_usd"]) == (
                False,
                Decimal(0),
                Decimal(0),
            )
            continue
        assert row["priced"] and row["cost_usd"] == _oracle(row, model, billed), model
        searches_usd = _oracle(row, model, billed) - _oracle(row, model, 0)
        assert row["web_search_cost_usd"] == searches_usd, model
        # $35 per 1,000 grounded prompts (2.x), $14 per 1,000 queries (3.x)
        per_k = 35 if model.startswith("gemini-2") else 14
        assert searches_usd == Decimal(billed * per_k) / 1000, model
