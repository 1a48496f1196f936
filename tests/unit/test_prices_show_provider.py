"""`prices show MODEL --service-tier TIER` without --provider: a tier's price depends on the
provider (OpenAI's and Gemini's priority is a premium the book may have no price for,
Anthropic's is not; `openai/priority` multiplies OpenAI's calls only), so the provider is the
one the price book resolves the model name to, and a name it resolves to several providers
or none is refused. It used to show the standard price."""

from __future__ import annotations

import json

import pytest
from llm_margin.processor import cli


def show(capsys, *argv: str) -> tuple[int, list[dict], str]:
    code = cli.main(["prices", "show", *argv, "--format", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else [], captured.err


def test_the_provider_is_inferred_and_shown(capsys):
    # genai-prices has OpenAI priority prices for gpt-5: twice the standard price
    code, (row,), _ = show(capsys, "gpt-5", "--service-tier", "priority")
    assert code == 0
    prices = (row["input_per_mtok_usd"], row["output_per_mtok_usd"])
    assert (row["provider"], row["service_tier"], prices) == ("openai", "priority", ("2.5", "20"))


def test_a_premium_tier_without_a_price_is_not_shown_at_the_standard_price(capsys):
    """genai-prices has no priority price for gemini-2.5-flash: its priority calls are stored
    unpriced, and `prices show` says so, as with --provider google (it showed 0.3 and 2.5)."""
    code, _, error = show(capsys, "gemini-2.5-flash", "--service-tier", "priority")
    assert code == 2
    assert error.startswith(
        "llm-margin prices: the price book has no price for model 'gemini-2.5-flash' of "
        "provider 'google' at service tier 'priority'; give `google/priority` a multiplier "
        "under `service_tiers:`"
    )


def test_a_provider_named_multiplier_applies(capsys, tmp_path):
    # gpt-4-turbo: $10 / $30 per million, no priority price in genai-prices
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text('service_tiers:\n  openai/priority: "2"\n')
    argv = ("gpt-4-turbo", "--service-tier", "priority", "--price-overlay", str(overlay))
    code, (row,), _ = show(capsys, *argv)
    assert code == 0
    prices = (row["input_per_mtok_usd"], row["output_per_mtok_usd"])
    assert (row["provider"], prices) == ("openai", ("20", "60"))


AZURE_ENTRY = """
models:
  - provider: azure
    model: gpt-4o-mini
    input_per_mtok: "0.15"
    output_per_mtok: "0.60"
"""
SELF_HOSTED = """
models:
  - provider: self-hosted
    model: llama-internal
    input_per_mtok: "0.20"
    output_per_mtok: "0.60"
"""


@pytest.mark.parametrize(
    ("model", "overlay", "why"),
    [
        ("no-such-model", None, "the price book does not know the provider of model"),
        (
            "gpt-4o-mini",
            AZURE_ENTRY,
            "model 'gpt-4o-mini' resolves to several providers in the price book (azure, openai)",
        ),
    ],
)
def test_an_unknown_or_ambiguous_provider_is_refused(capsys, tmp_path, model, overlay, why):
    argv = [model, "--service-tier", "priority"]
    if overlay:
        (tmp_path / "overlay.yaml").write_text(overlay)
        argv += ["--price-overlay", str(tmp_path / "overlay.yaml")]
    code, _, error = show(capsys, *argv)
    assert code == 2
    assert why in error and error.rstrip().endswith(
        "the price of a service tier depends on the provider: give --provider"
    )
    # with --provider it is priced (or says what is missing)
    code, rows, error = show(capsys, *argv, "--provider", "openai")
    assert (code, bool(rows)) == ((0, True) if overlay else (2, False))


def test_an_overlay_entry_names_its_provider(capsys, tmp_path):
    (tmp_path / "overlay.yaml").write_text(SELF_HOSTED)
    argv = (
        "llama-internal",
        "--service-tier",
        "batch",
        "--price-overlay",
        str(tmp_path / "overlay.yaml"),
    )
    code, (row,), _ = show(capsys, *argv)
    assert (code, row["provider"], row["input_per_mtok_usd"]) == (0, "self-hosted", "0.2")


def test_without_a_service_tier_any_provider_is_shown_as_before(capsys):
    code, (row,), _ = show(capsys, "gpt-4o-mini")
    assert (code, row["provider"], row["input_per_mtok_usd"]) == (0, "(any)", "0.15")


def test_a_speed_mode_infers_the_provider_so_its_named_multiplier_applies(capsys, tmp_path):
    """`--speed fast` without --provider showed no price (claude-sonnet-4-5 has no fast-mode
    price in genai-prices) though the overlay's `anthropic/fast` prices its fast-mode calls:
    like --service-tier and --inference-geo it takes the provider the book resolves."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text('speeds:\n  anthropic/fast: "6"\n')
    argv = ("claude-sonnet-4-5", "--speed", "fast", "--price-overlay", str(overlay))
    code, (row,), _ = show(capsys, *argv)
    prices = (row["input_per_mtok_usd"], row["output_per_mtok_usd"])
    assert (code, row["provider"], row["speed"], prices) == (0, "anthropic", "fast", ("18", "90"))
    # a name the book resolves to no provider is refused, as with a tier
    code, _, error = show(capsys, "no-such-model", "--speed", "fast")
    assert code == 2
    assert error.rstrip().endswith(
        "the price of a speed mode depends on the provider: give --provider"
    )
