"""End to end through `opentelemetry-instrument` and the processor: Anthropic calls run in a
data-residency geography (``inference_geo="us"``, billed at 1.1x every token price) are stored
with it; with no ``inference_geos:`` multiplier they are stored unpriced (never charged the
lower standard price), `prices check` names the multiplier to add, and `reprice` with it
restates them at 1.1x; a processor given that overlay charges 1.1x as the calls arrive."""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal

import genai_prices
import pytest
from conftest import calls_by_model, llm_margin_cli, run_instrumented_app, started_processor
from instr_fixtures import sim  # noqa: F401

pytestmark = pytest.mark.integration

APP = textwrap.dedent(
    """
    import sys

    import anthropic
    from opentelemetry import trace

    claude = anthropic.Anthropic(base_url=sys.argv[1], api_key="sk-ant-test", max_retries=0)
    messages = [{"role": "user", "content": "Summarise the contract in three lines."}]
    claude.messages.create(
        model="claude-opus-4-6", max_tokens=60, messages=messages, inference_geo="us"
    )
    with claude.beta.messages.stream(
        model="claude-sonnet-4-6", max_tokens=60, messages=messages, inference_geo="us"
    ) as stream:
        stream.until_done()
    for _ in claude.messages.create(
        model="claude-opus-4-7", max_tokens=60, messages=messages, inference_geo="global",
        stream=True,
    ):
        pass
    claude.messages.create(model="claude-haiku-4-5", max_tokens=60, messages=messages)
    trace.get_tracer_provider().force_flush()
    """
)

# request model -> the inference geography stored
EXPECTED = {
    "claude-opus-4-6": "us",
    "claude-sonnet-4-6": "us",
    "claude-opus-4-7": "global",
    "claude-haiku-4-5": "",
}
US_MULTIPLIER = Decimal("1.1")
OVERLAY = 'inference_geos:\n  anthropic/us: "1.1"\n'
Q = Decimal("1e-18")


def _standard(row: dict) -> Decimal:
    """genai-prices' standard (global) price of a stored call's tokens."""
    return genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cache_read_tokens=row["cache_read_tokens"],
            cache_write_tokens=row["cache_write_tokens"],
        ),
        row["response_model"] or row["request_model"],
        provider_id="anthropic",
        genai_request_timestamp=row["ts"],
    ).total_price


def _expected(row: dict) -> Decimal:
    factor = US_MULTIPLIER if row["inference_geo"] == "us" else 1
    return (_standard(row) * factor).quantize(Q)


def test_us_calls_are_unpriced_without_a_multiplier_then_repriced_with_it(sim, tmp_path):  # noqa: F811
    processor = started_processor(tmp_path, None)
    try:
        run_instrumented_app(APP, tmp_path, "inference-geo", processor, sim.anthropic_base_url)
        rows = calls_by_model(processor, len(EXPECTED))
        assert {model: row["inference_geo"] for model, row in rows.items()} == EXPECTED
        for model, row in rows.items():
            if row["inference_geo"] == "us":  # unpriced, never charged the standard price
                assert (row["priced"], row["cost_usd"], row["price_version"]) == (
                    False,
                    Decimal(0),
                    "",
                ), model
                assert row["input_tokens"] > 0 and row["output_tokens"] > 0, model
            else:
                assert row["priced"] and row["cost_usd"] == _expected(row), model
        data_dir = processor.config.data_dir
        check = ["prices", "check", "--data-dir", data_dir, "--format", "json", "--since", "1d"]
        listed = llm_margin_cli(*check)  # answered by the running processor
        assert listed.returncode == 1, listed.stderr
        fix = (
            "give `anthropic/us` a multiplier under `inference_geos:` in a price overlay "
            '(Anthropic bills US-only inference at 1.1x: "1.1")'
        )
        assert {r["model"]: r["reason"] for r in json.loads(listed.stdout)} == {
            "claude-opus-4-6": f"no us-geo price; {fix}",
            "claude-sonnet-4-6": f"no us-geo price; {fix}",
        }
    finally:
        processor.stop()

    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(OVERLAY)
    covered = llm_margin_cli(*check, "--price-overlay", str(overlay))
    assert (covered.returncode, json.loads(covered.stdout)) == (0, [])
    done = llm_margin_cli(
        "reprice", "--data-dir", data_dir, "--format", "json", "--since", "1d",
        "--price-overlay", str(overlay),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [summary] = json.loads(done.stdout)
    assert (summary["calls"], summary["newly_priced"], summary["still_unpriced"]) == (4, 2, 0)
    us = [row for row in rows.values() if row["inference_geo"] == "us"]
    assert Decimal(summary["restated_usd"]) - Decimal(summary["charged_usd"]) == sum(
        _expected(row) for row in us
    )
    restated = llm_margin_cli(
        "sql", "--data-dir", data_dir, "--format", "json",
        "SELECT span_id, restated_cost_usd, restated_priced FROM llm_call_restatements FINAL",
    )  # fmt: skip
    assert restated.returncode == 0, restated.stderr
    by_span = {r["span_id"]: r for r in json.loads(restated.stdout)}
    for model, row in rows.items():
        again = by_span[row["span_id"]]
        assert again["restated_priced"] is True, model
        assert Decimal(again["restated_cost_usd"]) == _expected(row), model


def test_a_processor_with_the_multiplier_charges_us_calls_at_it(sim, tmp_path):  # noqa: F811
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(OVERLAY)
    processor = started_processor(tmp_path, str(overlay))
    try:
        run_instrumented_app(APP, tmp_path, "inference-geo", processor, sim.anthropic_base_url)
        rows = calls_by_model(processor, len(EXPECTED))
    finally:
        processor.stop()
    assert {model: row["inference_geo"] for model, row in rows.items()} == EXPECTED
    for model, row in rows.items():
        assert row["priced"] and row["cost_usd"] == _expected(row), model
        if row["inference_geo"] == "us":
            assert row["cost_usd"] > _standard(row).quantize(Q), model
