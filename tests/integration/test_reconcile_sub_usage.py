"""`llm-margin reconcile` of calls with sub-inferences (``llm_calls.sub_usage``) against a real
embedded store, the real SQL and the CLI: Anthropic's cost export bills an advisor's tokens
under the advisor's model, so reconcile compares them there, as charged and after `reprice`,
and the rows still add up to the stored total exactly."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest
from llm_margin.processor import cli
from llm_margin.processor.pricing import PriceBook
from llm_margin.processor.pricing.genai import Usage4
from llm_margin.processor.pricing.overlay import parse_overlay
from llm_margin.processor.records import CallRecord
from llm_margin.processor.storage import Store

pytestmark = pytest.mark.integration

DAY = datetime(2026, 11, 20, 9)
EXECUTOR, ADVISOR, OTHER = "claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-4-5"
COMPACTION = ("compaction", "", 8_000, 500, 0, 0, 0)
# Opus consulted twice by the same Sonnet call, once with cache reads and writes
ADVICE = (
    ("advisor_message", ADVISOR, 12_000, 800, 2_000, 300, 200),
    ("advisor_message", ADVISOR, 3_000, 200, 0, 0, 0),
)
# (executor model, its own input and output tokens, sub_usage)
CALLS = [
    (EXECUTOR, 10_000, 1_000, (COMPACTION, *ADVICE)),
    (ADVISOR, 1_000, 100, ()),  # Opus's own call: its row holds it beside the advice
    (OTHER, 5_000, 400, (("compaction", "", 4_000, 300, 0, 0, 0),)),  # Haiku compacting
]
# The overlay `reprice` is given: Opus at another price than genai-prices' (a discount).
OPUS_DISCOUNT = """
models:
  - provider: anthropic
    model: claude-opus-4-6
    input_per_mtok: "4"
    output_per_mtok: "20"
    cache_read_per_mtok: "0.4"
    cache_write_per_mtok: "5"
"""


def _price(book: PriceBook, model: str, entry: tuple) -> Decimal:
    """One inference's price on its own, as the export bills it (oracle: a call of its own)."""
    _kind, _model, *counts = entry
    price = book.price_usage("anthropic", (model,), Usage4(*counts), DAY)
    assert price.priced
    return price.cost_usd


def _billed(book: PriceBook) -> dict[str, Decimal]:
    """What Anthropic's export bills per model for CALLS under ``book``: each call's own usage
    and compactions at its model, each advice at the advisor's."""
    billed: dict[str, Decimal] = {}
    for model, input_tokens, output_tokens, sub_usage in CALLS:
        own = ("message", "", input_tokens, output_tokens, 0, 0, 0)
        for entry in (own, *sub_usage):
            on = entry[1] or model
            billed[on] = billed.get(on, Decimal(0)) + _price(book, on, entry)
    return billed


def _export(path, billed: dict[str, Decimal]) -> None:
    names = {EXECUTOR: "Claude Sonnet 4.6", ADVISOR: "Claude Opus 4.6", OTHER: "Claude Haiku 4.5"}
    path.write_text(
        "usage_date_utc,model,cost_usd\n"
        + "".join(f"2026-11-20,{names[m]},{cost}\n" for m, cost in sorted(billed.items()))
    )


def test_an_advisors_cost_is_compared_under_the_advisors_model(tmp_path, capsys):
    """A Sonnet call advised by Opus is stored as one row whose cost includes the advice;
    Anthropic bills the advice under Opus. Both models' rows match the export exactly (the
    Sonnet row used to show the advice as stored > provider, the Opus row as stored <
    provider, each a `price mismatch`), also after `reprice` with another Opus price, and the
    rows add up to the stored total to the last unit."""
    data_dir = str(tmp_path / "data")
    store = Store.open(data_dir=data_dir)
    try:
        store.insert_calls(
            [
                PriceBook().apply(
                    CallRecord(
                        ts=DAY.replace(minute=n),
                        trace_id=f"{n:032x}",
                        span_id=f"{n:016x}",
                        customer_id="acme",
                        provider="anthropic",
                        request_model=model,
                        response_model=model,
                        input_tokens=input_tokens,
                        output_tokens=output_tokens,
                        sub_usage=sub_usage,
                        version=1,
                    )
                )
                for n, (model, input_tokens, output_tokens, sub_usage) in enumerate(CALLS, 1)
            ]
        )
        charged = store.query("SELECT sum(cost_usd) AS c FROM llm_calls FINAL").dicts()[0]["c"]
    finally:
        store.close()
    export = tmp_path / "anthropic.csv"
    argv = ["reconcile", "--provider-usage", str(export), "--data-dir", data_dir]

    def compared() -> dict[str, dict]:
        assert cli.main([*argv, "--format", "json", "--tolerance-usd", "0"]) == 0
        return {r["model"]: r for r in json.loads(capsys.readouterr().out)}

    billed = _billed(PriceBook())
    _export(export, billed)
    rows = compared()
    assert set(rows) == {EXECUTOR, ADVISOR, OTHER}
    for model, row in rows.items():
        assert Decimal(row["stored_cost_usd"]) == billed[model], model
        assert (row["difference_usd"], row["explanation"]) == ("0", "match"), model
    # the Sonnet call is counted on the Opus row too, which holds its advice
    assert {m: r["stored_calls"] for m, r in rows.items()} == {EXECUTOR: 1, ADVISOR: 2, OTHER: 1}
    assert sum(Decimal(r["stored_cost_usd"]) for r in rows.values()) == charged
    assert sum(Decimal(r["restated_cost_usd"]) for r in rows.values()) == charged

    # Opus at a discount, restated by reprice: the advice's restated cost moves to the Opus
    # row, the Sonnet row keeps its own
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(OPUS_DISCOUNT)
    reprice = ["reprice", "--data-dir", data_dir, "--price-overlay", str(overlay)]
    assert cli.main([*reprice, "--since", "2026-11-20", "--until", "2026-11-21"]) == 0
    capsys.readouterr()
    discounted = _billed(PriceBook(parse_overlay(OPUS_DISCOUNT)))
    assert discounted[ADVISOR] < billed[ADVISOR]
    assert (discounted[EXECUTOR], discounted[OTHER]) == (billed[EXECUTOR], billed[OTHER])
    _export(export, discounted)
    rows = compared()
    for model, row in rows.items():
        assert Decimal(row["restated_cost_usd"]) == discounted[model], model
    assert rows[ADVISOR]["explanation"].startswith("match; restated by reprice: ")
    assert (rows[EXECUTOR]["explanation"], rows[OTHER]["explanation"]) == ("match", "match")
    store = Store.open(data_dir=data_dir)
    try:
        restated = store.query(
            "SELECT sum(restated_cost_usd) AS c FROM llm_call_restatements FINAL"
        ).dicts()[0]["c"]
    finally:
        store.close()
    assert restated == sum(discounted.values(), Decimal(0))
    assert sum(Decimal(r["restated_cost_usd"]) for r in rows.values()) == restated
    assert sum(Decimal(r["stored_cost_usd"]) for r in rows.values()) == charged


def test_an_unpriced_advisor_is_explained_on_the_advisors_row(tmp_path, capsys):
    """A call whose advisor the book cannot price is stored unpriced: the advisor model's row
    says so (add the model), the executor's names the advisor model (it said to add the
    executor's), and for a US-only call without an `inference_geos:` multiplier names the
    multiplier, which prices the advice too."""
    calls = [
        (OTHER, "claude-advisor-unreleased", ""),  # an advisor model no price book knows
        (EXECUTOR, ADVISOR, "us"),  # US-only inference: no multiplier in the book
    ]
    data_dir = str(tmp_path / "data")
    store = Store.open(data_dir=data_dir)
    try:
        store.insert_calls(
            [
                PriceBook().apply(
                    CallRecord(
                        ts=DAY.replace(minute=n),
                        trace_id=f"{n:032x}",
                        span_id=f"{n:016x}",
                        customer_id="acme",
                        provider="anthropic",
                        request_model=model,
                        response_model=model,
                        input_tokens=1_000,
                        output_tokens=100,
                        sub_usage=(("advisor_message", advisor, 2_000, 300, 0, 0, 0),),
                        inference_geo=geo,
                        version=1,
                    )
                )
                for n, (model, advisor, geo) in enumerate(calls, 1)
            ]
        )
    finally:
        store.close()
    export = tmp_path / "anthropic.csv"
    export.write_text(
        "usage_date_utc,model,cost_usd\n"
        + "".join(f"2026-11-20,{m},0.01\n" for m in (OTHER, "claude-advisor-unreleased"))
        + "".join(f"2026-11-20,{m},0.02\n" for m in (EXECUTOR, ADVISOR))
    )
    argv = ["reconcile", "--provider-usage", str(export), "--data-dir", data_dir]
    assert cli.main([*argv, "--format", "json", "--tolerance-usd", "0"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    unknown = rows["claude-advisor-unreleased"]
    assert (unknown["stored_calls"], unknown["unpriced_calls"]) == (1, 1)
    assert unknown["explanation"].startswith(
        "unpriced: 1 calls stored without a price (add the model to the price overlay"
    )
    # the executor's row names the advisor model: a model entry for Haiku would not price it
    haiku = rows[OTHER]
    assert (haiku["stored_calls"], haiku["unpriced_calls"]) == (1, 1)
    assert haiku["explanation"].startswith(
        "unpriced: 1 calls stored without a price (1 consulted an advisor on another model "
        "(claude-advisor-unreleased): if the price book has no price for it, add that model, "
        "not this one"
    ), haiku["explanation"]
    opus = rows[ADVISOR]
    assert (opus["stored_calls"], opus["unpriced_calls"]) == (1, 1)
    assert "1 run in an inference geography" in opus["explanation"]
    assert "`inference_geos:`" in opus["explanation"]
    sonnet = rows[EXECUTOR]  # unpriced for its geography, which prices its advice too
    assert "1 run in an inference geography" in sonnet["explanation"]
    assert "consulted an advisor" not in sonnet["explanation"]
