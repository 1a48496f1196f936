"""`prices show` without a price says what would give one: a model entry, or a multiplier for
the mode asked for (a model entry would not price that mode)."""

from __future__ import annotations

import pytest
from llm_margin.processor import cli


@pytest.mark.parametrize(
    "argv, hint",
    [
        (["no-such-model"], "; add it to a price overlay (see `prices check`)"),
        (
            ["claude-sonnet-4-5", "--provider", "anthropic", "--speed", "fast"],
            " at speed 'fast'; give the speed a multiplier under `speeds:`",
        ),
        (
            ["gemini-2.5-flash", "--provider", "google", "--service-tier", "priority"],
            " at service tier 'priority'; give the tier a multiplier under `service_tiers:`",
        ),
        (
            ["no-such-model", "--provider", "google", "--service-tier", "priority"],
            "; add it to a price overlay",  # no price at all: the model is what is missing
        ),
    ],
)
def test_missing_price_names_what_would_give_one(capsys, argv, hint):
    assert cli.main(["prices", "show", *argv]) == 2
    error = capsys.readouterr().err
    assert f"the price book has no price for model {argv[0]!r}" in error and hint in error
