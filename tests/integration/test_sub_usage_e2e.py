"""End to end through `opentelemetry-instrument` and the processor: Anthropic beta
``usage.iterations`` entries billed outside the top-level usage (context compaction, the
advisor tool) reach ``llm_calls`` in the call's one row, priced at their models' prices, and
``reprice`` restates the same cost from the stored raw usage."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from conftest import calls_by_model, run_instrumented_app
from instr_fixtures import sim  # noqa: F401
from llm_margin.processor.pricing import PriceBook
from llm_margin.processor.repricing import reprice
from llm_margin.simulator.anthropic_api import (
    ADVISOR_OUTPUT_TOKENS,
    ADVISOR_PROMPT_TOKENS,
    COMPACTION_OUTPUT_TOKENS,
)

from tests.anthropic_oracle import anthropic_price

pytestmark = pytest.mark.integration

APP = textwrap.dedent(
    """
    import sys

    import anthropic
    from opentelemetry import trace

    claude = anthropic.Anthropic(base_url=sys.argv[1], api_key="sk-ant-test", max_retries=0)
    messages = [{"role": "user", "content": "Plan the migration of our billing system."}]
    compact = {"edits": [{"type": "compact_20260112"}]}

    def advisor(model):
        return {"type": "advisor_20260301", "name": "advisor", "model": model}

    # Sonnet executing, Opus advising, the context compacted: not streamed
    claude.beta.messages.create(
        model="claude-sonnet-4-6", max_tokens=60, messages=messages,
        tools=[advisor("claude-opus-4-6")], context_management=compact,
        betas=["advisor-tool-2026-03-01", "compact-2026-01-12"],
        extra_headers={"x-sim-cache-read": "40", "x-sim-cache-write-1h": "25"},
    )
    # compaction alone, streamed: the iterations come in the final message_delta
    with claude.beta.messages.stream(
        model="claude-opus-4-6", max_tokens=60, messages=messages,
        context_management=compact, betas=["compact-2026-01-12"],
    ) as stream:
        stream.until_done()
    # an advisor model no price book knows: the call is stored unpriced, not with a free advisor
    claude.beta.messages.create(
        model="claude-haiku-4-5", max_tokens=60, messages=messages,
        tools=[advisor("claude-advisor-unreleased")], betas=["advisor-tool-2026-03-01"],
    )
    trace.get_tracer_provider().force_flush()
    """
)


def test_compaction_and_advisor_iterations_are_priced_into_the_call(processor, sim, tmp_path):  # noqa: F811
    run_instrumented_app(APP, tmp_path, "sub-usage", processor, sim.anthropic_base_url)
    rows = calls_by_model(processor, 3)
    assert set(rows) == {"claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-4-5"}

    # Sonnet + Opus advisor + compaction: the top level is Sonnet's own turn (its cache
    # tokens too), the compaction read the whole fresh context on Sonnet, the advisor read it
    # plus its prompt on Opus, with the request's cache reads and 1-hour cache writes.
    row = rows["claude-sonnet-4-6"]
    ts = row["ts"]
    fresh = row["input_tokens"] - row["cache_read_tokens"] - row["cache_write_tokens"]
    assert (row["cache_read_tokens"], row["cache_write_1h_tokens"]) == (40, 25)
    advisor_input = fresh + ADVISOR_PROMPT_TOKENS + 40 + 25
    assert [tuple(e.values()) for e in row["sub_usage"]] == [
        ("compaction", "", fresh, COMPACTION_OUTPUT_TOKENS, 0, 0, 0),
        ("advisor_message", "claude-opus-4-6", advisor_input, ADVISOR_OUTPUT_TOKENS, 40, 25, 25),
    ]
    own = anthropic_price(
        "claude-sonnet-4-6", ts, row["input_tokens"], row["output_tokens"], 40, 25, 25
    )
    compaction = anthropic_price("claude-sonnet-4-6", ts, fresh, COMPACTION_OUTPUT_TOKENS)
    advice = anthropic_price(
        "claude-opus-4-6", ts, advisor_input, ADVISOR_OUTPUT_TOKENS, 40, 25, 25
    )
    assert row["priced"] and row["sub_usage_cost_usd"] == compaction + advice
    assert row["sub_usage_entry_costs_usd"] == [compaction, advice]
    assert row["cost_usd"] == own + compaction + advice
    assert advice > anthropic_price(
        "claude-sonnet-4-6", ts, advisor_input, ADVISOR_OUTPUT_TOKENS, 40, 25, 25
    )

    # the streamed compaction, on Opus
    row = rows["claude-opus-4-6"]
    assert row["stream"] and row["usage_source"] == "provider"
    fresh = row["input_tokens"]
    assert [tuple(e.values()) for e in row["sub_usage"]] == [
        ("compaction", "", fresh, COMPACTION_OUTPUT_TOKENS, 0, 0, 0)
    ]
    compaction = anthropic_price("claude-opus-4-6", row["ts"], fresh, COMPACTION_OUTPUT_TOKENS)
    own = anthropic_price("claude-opus-4-6", row["ts"], fresh, row["output_tokens"])
    assert row["priced"] and row["cost_usd"] == own + compaction
    assert row["sub_usage_cost_usd"] == compaction

    # the unknown advisor: unpriced, its usage kept for a later reprice
    row = rows["claude-haiku-4-5"]
    assert (row["priced"], row["cost_usd"], row["price_version"]) == (False, Decimal(0), "")
    assert row["sub_usage"][0]["model"] == "claude-advisor-unreleased"

    # reprice restates every call from the stored raw usage: the same costs
    now = datetime.now(timezone.utc)
    summary = reprice(processor.store, PriceBook(), now - timedelta(days=1), now + timedelta(1))
    assert (summary.calls, summary.changed, summary.still_unpriced) == (3, 0, 1)
    restated = processor.store.query(
        "SELECT span_id, restated_cost_usd, restated_sub_usage_cost_usd, restated_priced, "
        "restated_sub_usage_entry_costs_usd FROM llm_call_restatements FINAL"
    ).dicts()
    by_span = {r["span_id"]: r for r in restated}
    for row in rows.values():
        again = by_span[row["span_id"]]
        assert (again["restated_cost_usd"], again["restated_sub_usage_cost_usd"]) == (
            row["cost_usd"],
            row["sub_usage_cost_usd"],
        )
        assert again["restated_priced"] == row["priced"]
        assert again["restated_sub_usage_entry_costs_usd"] == row["sub_usage_entry_costs_usd"]
    assert by_span[rows["claude-haiku-4-5"]["span_id"]]["restated_sub_usage_entry_costs_usd"] == []
