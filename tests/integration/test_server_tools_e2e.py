"""End to end through `opentelemetry-instrument` and the processor: server-side tool calls
(web and file searches) the providers bill per call are stored and priced, or leave the call
unpriced when the price book has no price for them."""

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
    from opentelemetry import trace

    oai = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test", max_retries=0)
    claude = anthropic.Anthropic(base_url=sys.argv[2], api_key="sk-ant-test", max_retries=0)
    messages = [{"role": "user", "content": "What changed in the tax rules this week?"}]

    def searches(web, files=0):
        return {"x-sim-web-searches": str(web), "x-sim-file-searches": str(files)}

    claude.messages.create(
        model="claude-haiku-4-5", max_tokens=50, messages=messages, extra_headers=searches(3)
    )
    with claude.messages.stream(
        model="claude-sonnet-4-5", max_tokens=50, messages=messages, extra_headers=searches(2)
    ) as stream:
        stream.until_done()
    oai.responses.create(model="gpt-4o", input="Find it", extra_headers=searches(2, 1))
    with oai.responses.stream(
        model="gpt-5-mini", input="Find it", extra_headers=searches(1, 4)
    ) as stream:
        for _ in stream:
            pass
    # gpt-4.1-nano has no file search price: stored unpriced, not priced with searches at 0
    oai.responses.create(model="gpt-4.1-nano", input="Find it", extra_headers=searches(0, 1))
    trace.get_tracer_provider().force_flush()
    """
)

EXPECTED = {  # request model -> (web searches, file searches, stream)
    "claude-haiku-4-5": (3, 0, False),
    "claude-sonnet-4-5": (2, 0, True),
    "gpt-4o": (2, 1, False),
    "gpt-5-mini": (1, 4, True),
    "gpt-4.1-nano": (0, 1, False),
}


def test_search_calls_are_stored_and_priced_exactly(processor, sim, tmp_path):  # noqa: F811
    run_instrumented_app(
        APP, tmp_path, "server-tools", processor, sim.openai_base_url, sim.anthropic_base_url
    )

    rows = calls_by_model(processor, len(EXPECTED))
    assert set(rows) == set(EXPECTED)
    for model, (web, files, stream) in EXPECTED.items():
        row = rows[model]
        assert (row["web_search_calls"], row["file_search_calls"], row["stream"]) == (
            web,
            files,
            stream,
        ), model
        if model == "gpt-4.1-nano":
            assert (row["priced"], row["cost_usd"]) == (False, Decimal(0))
            continue
        oracle = genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                cache_read_tokens=row["cache_read_tokens"],
                cache_write_tokens=row["cache_write_tokens"],
                web_searches=web,
                storage_searches=files,
            ),
            row["response_model"] or model,
            provider_id=row["provider"],
            genai_request_timestamp=row["ts"],
        ).total_price
        assert row["priced"] and row["cost_usd"] == oracle.quantize(Decimal("1e-18")), model
        # $10 per 1,000 web searches and $2.50 per 1,000 file searches are in the cost
        assert row["cost_usd"] > web * Decimal("0.01") + files * Decimal("0.0025")
