"""`prices show` without a price says what would give one: a model entry, or a multiplier for
the mode asked for (a model entry would not price that mode), named for the provider (a bare
`priority` would also multiply Anthropic's Priority Tier calls)."""

from __future__ import annotations

import pytest
from llm_margin.processor import cli


@pytest.mark.parametrize(
    "argv, hint",
    [
        (["no-such-model"], "; add it to a price overlay (see `prices check`)"),
        (
            ["claude-sonnet-4-5", "--provider", "anthropic", "--speed", "fast"],
            " at speed 'fast'; give `anthropic/fast` a multiplier under `speeds:`",
        ),
        (
            ["gemini-2.5-flash", "--provider", "google", "--service-tier", "priority"],
            " at service tier 'priority'; give `google/priority` a multiplier under "
            "`service_tiers:`",
        ),
        (
            ["no-such-model", "--provider", "google", "--service-tier", "priority"],
            "; add it to a price overlay",  # no price at all: the model is what is missing
        ),
        (
            ["claude-opus-4-6", "--inference-geo", "us"],  # the provider the book resolves
            " of provider 'anthropic' run in inference geography 'us'; give `anthropic/us` a "
            "multiplier under `inference_geos:` in a price overlay (Anthropic bills US-only "
            'inference at 1.1x: "1.1")',
        ),
        (
            ["no-such-model", "--provider", "anthropic", "--inference-geo", "us"],
            "; add it to a price overlay",
        ),
        (  # no price at all: not a speed multiplier, which would not price it either
            ["no-such-model", "--provider", "anthropic", "--speed", "fast"],
            "; add it to a price overlay",
        ),
        (  # fast and US-only, neither priced: both named, with what prices each
            ["claude-opus-4-6", "--speed", "fast", "--inference-geo", "us", "--at", "2026-11-10"],
            " of provider 'anthropic' at speed 'fast' and run in inference geography 'us'; give "
            "`anthropic/fast` a multiplier under `speeds:` in a price overlay; give `anthropic/us` a "
            "multiplier under `inference_geos:`",
        ),
    ],
)
def test_missing_price_names_what_would_give_one(capsys, argv, hint):
    assert cli.main(["prices", "show", *argv]) == 2
    error = capsys.readouterr().err
    assert f"the price book has no price for model {argv[0]!r}" in error and hint in error


def test_show_prices_an_inference_geography_with_its_multiplier(capsys, tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text('inference_geos:\n  anthropic/us: "1.1"\n')
    show = ["prices", "show", "claude-opus-4-6", "--format", "csv", "--at", "2026-11-10"]
    assert cli.main([*show, "--provider", "anthropic", "--price-overlay", str(overlay)]) == 0
    standard = capsys.readouterr().out
    assert cli.main([*show, "--inference-geo", "us", "--price-overlay", str(overlay)]) == 0
    us = capsys.readouterr().out
    assert "inference_geo" not in standard.splitlines()[0]
    assert us.splitlines()[0].split(",")[3] == "inference_geo"
    # input, output, cache read, cache write per million tokens: each 1.1x the standard price
    assert standard.splitlines()[1].split(",")[5:9] == ["5", "25", "0.5", "6.25"]
    assert us.splitlines()[1].split(",")[3:10] == ["us", "genai-prices", "0", "5.5", "27.5",
                                                   "0.55", "6.875"]  # fmt: skip


def test_check_help_names_every_reason_a_call_is_unpriced():
    """`prices check --help` lists the reasons it gives; the advisor model was left out."""
    import argparse

    from llm_margin.processor.cli import build_parser

    parser = build_parser()
    prices = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    prices = prices.choices["prices"]
    actions = next(a for a in prices._actions if isinstance(a, argparse._SubParsersAction))
    text = " ".join(actions.choices["check"].description.split())
    for reason in ("model", "web or file searches", "speed mode", "service tier", "geography"):
        assert reason in text, reason
    assert "advisor" in text
