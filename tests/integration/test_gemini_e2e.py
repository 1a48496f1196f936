"""End to end through `opentelemetry-instrument` and the processor: Gemini calls made with the
real google-genai SDK (entry point ``llm_margin_google_genai``) are stored under the customer
and priced exactly as genai-prices prices them (thinking billed as output, cache reads at their
own rate)."""

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
    from opentelemetry import baggage, context, trace

    client = genai.Client(api_key="test-key", http_options={"base_url": sys.argv[1]})
    prompt = "Summarize this invoice dispute in one line."

    def sim(**entries):
        headers = {k.replace("_", "-"): v for k, v in entries.items()}
        return {"http_options": {"headers": headers}}

    context.attach(baggage.set_baggage("customer.id", "acme"))
    client.models.generate_content(
        model="gemini-2.5-flash",
        contents=prompt,
        config=sim(x_sim_reasoning="40", x_sim_cache_read="1000", x_sim_output_tokens="90"),
    )
    for _ in client.models.generate_content_stream(
        model="gemini-2.5-pro", contents=prompt, config=sim(x_sim_output_tokens="12")
    ):
        pass

    async def main():
        await client.aio.models.generate_content(model="gemini-2.5-flash-lite", contents=prompt)

    asyncio.run(main())
    trace.get_tracer_provider().force_flush()
    """
)

EXPECTED = {  # request model -> (output, reasoning, cache read, stream)
    "gemini-2.5-flash": (90, 40, 1000, False),
    "gemini-2.5-pro": (12, 0, 0, True),
    "gemini-2.5-flash-lite": (None, 0, 0, False),
}


def test_gemini_calls_stored_and_priced_exactly(processor, sim, tmp_path):  # noqa: F811
    run_instrumented_app(APP, tmp_path, "gemini", processor, sim.gemini_base_url)

    rows = calls_by_model(processor, len(EXPECTED))
    assert set(rows) == set(EXPECTED)
    prompt_tokens = 11 + 3  # 43 characters: ceil(43 / 4) + 3
    for model, (output, reasoning, cache_read, stream) in EXPECTED.items():
        row = rows[model]
        assert (row["provider"], row["customer_id"], row["status"]) == ("google", "acme", "ok")
        assert row["route"] == f"gcp.gemini/{model}" and row["response_model"] == model
        assert row["input_tokens"] == prompt_tokens + cache_read
        assert (row["reasoning_tokens"], row["cache_read_tokens"]) == (reasoning, cache_read)
        assert row["stream"] is stream
        if output is not None:
            assert row["output_tokens"] == output
        oracle = genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                cache_read_tokens=row["cache_read_tokens"],
            ),
            model,
            provider_id="google",
            genai_request_timestamp=row["ts"],
        ).total_price
        assert row["priced"] and row["cost_usd"] == oracle.quantize(Decimal("1e-18")), model
        assert row["cost_usd"] > 0
