"""End to end through the real google-genai SDK, `opentelemetry-instrument` and the processor:
Gemini calls Vertex AI served from Provisioned Throughput (``usage_metadata.traffic_type``
``PROVISIONED_THROUGHPUT``, paid by the subscription, not per token) are stored with their
traffic type; with no ``traffic_types:`` multiplier they are stored unpriced (never charged the
on-demand list price, never silently 0), `prices check` names the multiplier to add, and
`reprice` with it restates them; a processor given that overlay prices them as they arrive.
Calls served on demand (over the PT quota, or without PT) are priced per token as before."""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal

import genai_prices
import pytest
from conftest import calls_by_model, llm_margin_cli, run_instrumented_app, started_processor
from instr_fixtures import sim  # noqa: F401

pytestmark = pytest.mark.integration

# The simulator answers as Vertex AI does for its request-type headers: `dedicated` is served
# from Provisioned Throughput, `shared` on demand; without them it reports no traffic type.
APP = textwrap.dedent(
    """
    import sys

    from google import genai
    from opentelemetry import trace

    client = genai.Client(api_key="test-key", http_options={"base_url": sys.argv[1]})
    prompt = "Summarise the contract in three lines."
    dedicated = {"http_options": {"headers": {"X-Vertex-AI-LLM-Request-Type": "dedicated"}}}
    shared = {"http_options": {"headers": {"X-Vertex-AI-LLM-Request-Type": "shared"}}}
    client.models.generate_content(model="gemini-2.5-flash", contents=prompt, config=dedicated)
    for _ in client.models.generate_content_stream(
        model="gemini-2.5-pro", contents=prompt, config=dedicated
    ):
        pass
    client.models.generate_content(model="gemini-2.0-flash", contents=prompt, config=shared)
    client.models.generate_content(model="gemini-2.5-flash-lite", contents=prompt)
    trace.get_tracer_provider().force_flush()
    """
)

# request model -> the traffic type stored
EXPECTED = {
    "gemini-2.5-flash": "provisioned_throughput",
    "gemini-2.5-pro": "provisioned_throughput",
    "gemini-2.0-flash": "on_demand",
    "gemini-2.5-flash-lite": "",
}
PT = "provisioned_throughput"
Q = Decimal("1e-18")


def _on_demand(row: dict) -> Decimal:
    """genai-prices' on-demand (list) price of a stored call's tokens."""
    return genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cache_read_tokens=row["cache_read_tokens"],
        ),
        row["response_model"] or row["request_model"],
        provider_id="google",
        genai_request_timestamp=row["ts"],
    ).total_price.quantize(Q)


def _expected(row: dict, share: Decimal) -> Decimal:
    return (_on_demand(row) * (share if row["traffic_type"] == PT else 1)).quantize(Q)


def test_pt_calls_are_unpriced_without_a_multiplier_then_repriced_with_it(sim, tmp_path):  # noqa: F811
    processor = started_processor(tmp_path, None)
    try:
        run_instrumented_app(APP, tmp_path, "traffic-type", processor, sim.gemini_base_url)
        rows = calls_by_model(processor, len(EXPECTED))
        assert {model: row["traffic_type"] for model, row in rows.items()} == EXPECTED
        for model, row in rows.items():
            assert row["provider"] == "google" and row["input_tokens"] > 0, model
            if row["traffic_type"] == PT:  # unpriced: neither the list price nor 0 as priced
                assert (row["priced"], row["cost_usd"], row["price_version"]) == (
                    False,
                    Decimal(0),
                    "",
                ), model
            else:
                assert row["priced"] and row["cost_usd"] == _on_demand(row) > 0, model
        data_dir = processor.config.data_dir
        check = ["prices", "check", "--data-dir", data_dir, "--format", "json", "--since", "1d"]
        listed = llm_margin_cli(*check)  # answered by the running processor
        assert listed.returncode == 1, listed.stderr
        fix = (
            "give `google/provisioned_throughput` a multiplier under `traffic_types:` in a "
            'price overlay (Provisioned Throughput is paid by its subscription: "0" counts no '
            "cost per token, or a share of the list price to allocate the subscription)"
        )
        assert {r["model"]: r["reason"] for r in json.loads(listed.stdout)} == {
            "gemini-2.5-flash": f"no provisioned_throughput traffic price; {fix}",
            "gemini-2.5-pro": f"no provisioned_throughput traffic price; {fix}",
        }
    finally:
        processor.stop()

    overlay = tmp_path / "overlay.yaml"
    overlay.write_text('traffic_types:\n  google/provisioned_throughput: "0"\n')
    covered = llm_margin_cli(*check, "--price-overlay", str(overlay))
    assert (covered.returncode, json.loads(covered.stdout)) == (0, [])
    done = llm_margin_cli(
        "reprice", "--data-dir", data_dir, "--format", "json", "--since", "1d",
        "--price-overlay", str(overlay),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [summary] = json.loads(done.stdout)
    assert (summary["calls"], summary["newly_priced"], summary["still_unpriced"]) == (4, 2, 0)
    assert summary["restated_usd"] == summary["charged_usd"]  # the PT calls cost nothing more
    restated = llm_margin_cli(
        "sql", "--data-dir", data_dir, "--format", "json",
        "SELECT span_id, restated_cost_usd, restated_priced FROM llm_call_restatements FINAL",
    )  # fmt: skip
    assert restated.returncode == 0, restated.stderr
    by_span = {r["span_id"]: r for r in json.loads(restated.stdout)}
    for model, row in rows.items():
        again = by_span[row["span_id"]]
        assert again["restated_priced"] is True, model
        assert Decimal(again["restated_cost_usd"]) == _expected(row, Decimal(0)), model


def test_a_processor_with_the_multiplier_prices_pt_calls_at_it(sim, tmp_path):  # noqa: F811
    """A share of the list price allocates the subscription to the calls it served."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text('traffic_types:\n  google/provisioned_throughput: "0.25"\n')
    processor = started_processor(tmp_path, str(overlay))
    try:
        run_instrumented_app(APP, tmp_path, "traffic-type", processor, sim.gemini_base_url)
        rows = calls_by_model(processor, len(EXPECTED))
    finally:
        processor.stop()
    assert {model: row["traffic_type"] for model, row in rows.items()} == EXPECTED
    for model, row in rows.items():
        assert row["priced"] and row["cost_usd"] == _expected(row, Decimal("0.25")), model
        if row["traffic_type"] == PT:
            assert 0 < row["cost_usd"] < _on_demand(row), model
