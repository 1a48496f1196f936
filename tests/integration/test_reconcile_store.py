"""`llm-margin reconcile` against a real embedded store holding hand-built calls: which stored
calls a provider export is compared with, by UTC day and model."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest
from llm_margin.processor import cli
from llm_margin.processor.records import CallRecord
from llm_margin.processor.storage import Store

pytestmark = pytest.mark.integration

FAILED = {"status": "error", "input_tokens": 0, "output_tokens": 0}
# (ts, provider, request model, response model, cost[, other fields])
CALLS = [
    (datetime(2026, 11, 9, 23, 59, 59, 999999), "openai", "gpt-4o", "gpt-4o-2024-08-06", "0.1"),
    (datetime(2026, 11, 10), "openai", "gpt-4o", "gpt-4o-2024-08-06", "0.2"),
    (datetime(2026, 11, 10, 5), "openai", "gpt-4o", "gpt-4o-2024-08-06", "0.3"),
    (datetime(2026, 11, 10, 7), "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "1.2"),
    # on the export's last day, which it lists without cost
    (datetime(2026, 11, 11, 12), "openai", "gpt-4o", "gpt-4o-2024-08-06", "0.7"),
    (datetime(2026, 11, 11, 12), "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "0.9"),
    (datetime(2026, 11, 12), "openai", "gpt-4o", "gpt-4o-2024-08-06", "5"),  # after the export
    # Calls without a response model are stored under the model asked for, an alias: a
    # failed call, and a stream cut off before its answer named the model (estimated cost).
    (datetime(2026, 11, 5), "openai", "gpt-3.5-turbo", "gpt-3.5-turbo-0125", "0.2"),
    (datetime(2026, 11, 5, 1), "openai", "gpt-3.5-turbo", "", "0", FAILED),
    (datetime(2026, 11, 5), "anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-20250514", "0.2"),
    (datetime(2026, 11, 5, 1), "anthropic", "claude-sonnet-4-0", "", "0.05", {"usage_source": "estimated"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("reconcile") / "data")
    store = Store.open(data_dir=path)
    try:
        store.insert_calls(
            [
                CallRecord(
                    **{"input_tokens": 100, "output_tokens": 10, **(extra[0] if extra else {})},
                    ts=ts,
                    trace_id=f"{n:032x}",
                    span_id=f"{n:016x}",
                    task_id=f"t{n}",
                    customer_id="acme",
                    provider=provider,
                    route=f"{provider}/{model}",
                    request_model=model,
                    response_model=response_model,
                    cost_usd=Decimal(cost),
                    priced=True,
                    version=1,
                )
                for n, (ts, provider, model, response_model, cost, *extra) in enumerate(CALLS, 1)
            ]
        )
    finally:
        store.close()
    return path


OPENAI_DASHBOARD = (
    "start_time,end_time,start_time_iso,end_time_iso,amount_value,amount_currency,line_item,"
    "project_id,organization_id,organization_name\n"
    "1794182400,1794268800,2026-11-09T00:00:00+00:00,2026-11-10T00:00:00+00:00,0.1,usd,"
    '"gpt-4o-2024-08-06, input",proj,org,Org\n'
    "1794268800,1794355200,2026-11-10T00:00:00+00:00,2026-11-11T00:00:00+00:00,0.5,usd,"
    '"gpt-4o-2024-08-06, input",proj,org,Org\n'
    "1794355200,1794441600,2026-11-11T00:00:00+00:00,2026-11-12T00:00:00+00:00,,,,,,\n"
)
OPENAI_COSTS_API = json.dumps(
    {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": 1794182400,
                "end_time": 1794268800,
                "results": [
                    {"amount": {"value": 0.1, "currency": "usd"}, "line_item": "gpt-4o, input"}
                ],
            },
            {
                "object": "bucket",
                "start_time": 1794268800,
                "end_time": 1794355200,
                "results": [
                    {"amount": {"value": 0.5, "currency": "usd"}, "line_item": "gpt-4o, input"}
                ],
            },
            {"object": "bucket", "start_time": 1794355200, "end_time": 1794441600, "results": []},
        ],
        "has_more": False,
        "next_page": None,
    }
)
ANTHROPIC_COST_REPORT = json.dumps(
    {
        "data": [
            {
                "starting_at": "2026-11-10T00:00:00Z",
                "ending_at": "2026-11-11T00:00:00Z",
                "results": [
                    {
                        "currency": "USD",
                        "amount": "120",  # cents
                        "cost_type": "tokens",
                        "model": "claude-sonnet-4-5-20250929",
                        "token_type": "output_tokens",
                    }
                ],
            },
            {"starting_at": "2026-11-11T00:00:00Z", "ending_at": "2026-11-12T00:00:00Z", "results": []},
        ],
        "has_more": False,
        "next_page": None,
    }
)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "openai.csv",
            OPENAI_DASHBOARD,
            [
                ("2026-11-09", "gpt-4o", "0.1", "0.1", "match"),
                ("2026-11-10", "gpt-4o", "0.5", "0.5", "match"),
                ("2026-11-11", "gpt-4o", "0", "0.7", "not in the provider export"),
            ],
        ),
        (
            "openai.json",
            OPENAI_COSTS_API,
            [
                ("2026-11-09", "gpt-4o", "0.1", "0.1", "match"),
                ("2026-11-10", "gpt-4o", "0.5", "0.5", "match"),
                ("2026-11-11", "gpt-4o", "0", "0.7", "not in the provider export"),
            ],
        ),
        (
            "anthropic.json",
            ANTHROPIC_COST_REPORT,
            [
                ("2026-11-10", "claude-sonnet-4-5", "1.2", "1.2", "match"),
                ("2026-11-11", "claude-sonnet-4-5", "0", "0.9", "not in the provider export"),
            ],
        ),
    ],
)
def test_days_the_export_lists_without_cost_are_compared(
    data_dir, tmp_path, capsys, name, text, expected
):
    """A day the export lists without cost (OpenAI's exports list every day of the range) is
    one of the days compared: stored calls on it are not in the provider export. They used to
    be left out when that day was the export's last (or first), so the TOTAL hid them."""
    path = tmp_path / name
    path.write_text(text)
    argv = ["reconcile", "--provider-usage", str(path), "--data-dir", data_dir]
    assert cli.main([*argv, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    got = [
        (r["day"], r["model"], r["provider_cost_usd"], r["stored_cost_usd"], r["explanation"])
        for r in rows
    ]
    assert [g[:4] for g in got] == [e[:4] for e in expected]
    assert all(g[4].startswith(e[4]) for g, e in zip(got, expected, strict=True))

    # With --since, only the days from it on; a period holding none of the export's days is
    # refused.
    assert cli.main([*argv, "--format", "json", "--since", "2026-11-11"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["day"], r["stored_cost_usd"]) for r in rows] == [("2026-11-11", expected[-1][3])]
    assert cli.main([*argv, "--since", "2026-11-12"]) == 2
    assert "no usage rows in the period" in capsys.readouterr().err


def test_calls_stored_under_an_alias_are_compared_with_its_snapshot(data_dir, tmp_path, capsys):
    """A call stored without a response model carries the alias asked for (``gpt-3.5-turbo``,
    ``claude-sonnet-4-0``); the export names the snapshot (``gpt-3.5-turbo-0125``, ``Claude
    Sonnet 4``). They are one model: a failed call explains the difference, an estimated
    stream's cost is counted. They used to be rows of their own, `not in the provider export`,
    and the snapshot's row a price mismatch."""
    openai = tmp_path / "openai.csv"
    openai.write_text(
        "start_time_iso,line_item,amount_value,amount_currency\n"
        '2026-11-05T00:00:00+00:00,"gpt-3.5-turbo-0125, input",0.25,usd\n'
    )
    anthropic = tmp_path / "anthropic.csv"
    anthropic.write_text("usage_date_utc,model,cost_usd\n2026-11-05,Claude Sonnet 4,0.25\n")
    got = []
    for path in (openai, anthropic):
        argv = ["reconcile", "--provider-usage", str(path), "--data-dir", data_dir]
        assert cli.main([*argv, "--format", "json"]) == 0
        got += [
            (r["model"], r["stored_calls"], r["stored_cost_usd"], r["explanation"].split(":")[0])
            for r in json.loads(capsys.readouterr().out)
        ]
    assert got == [
        ("gpt-3.5-turbo", 2, "0.2", "failed-but-billed"),
        ("claude-sonnet-4", 2, "0.25", "match"),
    ]


def _stored(tmp_path, calls: list[CallRecord]) -> str:
    """A fresh embedded store holding ``calls``; its data directory."""
    data_dir = str(tmp_path / "data")
    store = Store.open(data_dir=data_dir)
    try:
        store.insert_calls(calls)
    finally:
        store.close()
    return data_dir


def _priced_call(n: int, ts: datetime, model: str, provider: str = "openai", **usage) -> CallRecord:
    from llm_margin.processor.pricing import PriceBook

    call = CallRecord(
        ts=ts,
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        customer_id="acme",
        provider=provider,
        request_model=model,
        response_model=model,
        version=1,
        **usage,
    )
    return PriceBook().apply(call)


# gpt-4o: $2.50 / $10 per million input / output tokens, web searches $10 and file searches
# $2.50 per 1,000; gpt-4.1-nano has no search prices (its call with a search is unpriced).
SEARCH_EXPORT = (
    "start_time_iso,line_item,amount_value,amount_currency\n"
    '2026-11-20T00:00:00+00:00,"gpt-4o-2024-08-06, input",0.0025,usd\n'
    '2026-11-20T00:00:00+00:00,"gpt-4o-2024-08-06, output",0.001,usd\n'
    '2026-11-20T00:00:00+00:00,"gpt-4.1-nano-2025-04-14, input",0.0001,usd\n'
    "2026-11-20T00:00:00+00:00,web search tool calls,0.04,usd\n"
    "2026-11-20T00:00:00+00:00,file search tool calls,0.005,usd\n"
    '2026-11-21T00:00:00+00:00,"gpt-4o-2024-08-06, input",0.0025,usd\n'
    "2026-11-21T00:00:00+00:00,web search tool calls,0.03,usd\n"
)
NANO_SEARCH_PRICE = """
models:
  - provider: openai
    model: gpt-4.1-nano
    input_per_mtok: "0.1"
    web_search_per_k: "10"
"""


def test_searches_are_reconciled_with_the_exports_search_lines(tmp_path, capsys):
    """Stored cost includes each call's searches, which the exports bill on tool lines of their
    own: a day whose searches match reconciles with no difference (it used to show them as a
    price mismatch of the model, and the tool lines as not a model's tokens); a search without
    a price, or billed more than stored, is still explained; reprice restates the searches."""
    data_dir = _stored(
        tmp_path,
        [
            _priced_call(
                1,
                datetime(2026, 11, 20, 9),
                "gpt-4o",
                input_tokens=1000,
                output_tokens=100,
                web_search_calls=3,
                file_search_calls=2,
            ),
            _priced_call(
                2,
                datetime(2026, 11, 20, 10),
                "gpt-4.1-nano",
                input_tokens=1000,
                web_search_calls=1,
            ),
            _priced_call(
                3, datetime(2026, 11, 21, 9), "gpt-4o", input_tokens=1000, web_search_calls=2
            ),
        ],
    )
    export = tmp_path / "costs.csv"
    export.write_text(SEARCH_EXPORT)
    argv = ["reconcile", "--provider-usage", str(export), "--data-dir", data_dir]

    def compared() -> dict[tuple[str, str], tuple[str, str, str]]:
        assert cli.main([*argv, "--format", "json", "--tolerance-usd", "0"]) == 0
        return {
            (r["day"], r["model"]): (r["stored_cost_usd"], r["difference_usd"], r["explanation"])
            for r in json.loads(capsys.readouterr().out)
        }

    got = compared()
    assert got[("2026-11-20", "gpt-4o")] == ("0.0035", "0", "match")
    assert got[("2026-11-20", "(file searches)")] == ("0.005", "0", "match")
    assert got[("2026-11-20", "(web searches)")][:2] == ("0.03", "0.01")
    assert got[("2026-11-20", "(web searches)")][2].startswith(
        "unpriced: 1 calls with web searches stored without a price"
    )
    assert got[("2026-11-20", "gpt-4.1-nano")][2].startswith("unpriced: 1 calls")
    assert got[("2026-11-21", "gpt-4o")] == ("0.0025", "0", "match")
    # billed 3 searches where the stored calls made 2: a real mismatch stays one
    assert got[("2026-11-21", "(web searches)")][:2] == ("0.02", "0.01")
    assert got[("2026-11-21", "(web searches)")][2].startswith(
        "price mismatch: provider charged 50.00% more than stored"
    )

    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(NANO_SEARCH_PRICE)
    reprice = ["reprice", "--data-dir", data_dir, "--price-overlay", str(overlay)]
    assert cli.main([*reprice, "--since", "2026-11-20", "--until", "2026-11-22"]) == 0
    capsys.readouterr()
    got = compared()
    # restated: the nano call's web search and its tokens now match their lines
    for model in ("(web searches)", "gpt-4.1-nano"):
        assert got[("2026-11-20", model)][2].startswith("match; restated by reprice"), model
    assert got[("2026-11-20", "gpt-4o")] == ("0.0035", "0", "match")
    assert got[("2026-11-20", "(file searches)")] == ("0.005", "0", "match")


def test_unpriced_fast_mode_calls_are_explained_with_the_fix_that_prices_them(tmp_path, capsys):
    """A fast-mode call of a model genai-prices has no fast price for (claude-opus-4-6) is
    stored unpriced; adding the model to the overlay would not price it (an overlay entry has
    no fast price either), a `speeds:` multiplier does: the explanation says so."""
    data_dir = _stored(
        tmp_path,
        [
            _priced_call(
                n,
                datetime(2026, 11, 20, 9, n),
                "claude-opus-4-6",
                provider="anthropic",
                input_tokens=1000,
                output_tokens=100,
                speed=speed,
            )
            for n, speed in ((1, "fast"), (2, ""))
        ],
    )
    export = tmp_path / "costs.csv"
    export.write_text("usage_date_utc,model,cost_usd,speed\n2026-11-20,Claude Opus 4.6,0.06,fast\n")
    argv = ["reconcile", "--provider-usage", str(export), "--data-dir", data_dir]
    assert cli.main([*argv, "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["model"], row["unpriced_calls"]) == ("claude-opus-4-6", 1)
    assert row["explanation"].startswith("unpriced: 1 calls stored without a price")
    assert "1 in a speed mode" in row["explanation"] and "`speeds:`" in row["explanation"]


def test_unpriced_us_only_calls_are_explained_with_the_fix_that_prices_them(tmp_path, capsys):
    """A call run in Anthropic's US-only inference geography is stored unpriced without an
    `inference_geos:` multiplier; adding the model to the overlay would not price it, the
    multiplier does: the explanation says so."""
    data_dir = _stored(
        tmp_path,
        [
            _priced_call(
                n,
                datetime(2026, 11, 20, 9, n),
                "claude-opus-4-6",
                provider="anthropic",
                input_tokens=100_000,
                output_tokens=10_000,
                inference_geo=geo,
            )
            for n, geo in ((1, "us"), (2, "global"))
        ],
    )
    export = tmp_path / "costs.csv"
    export.write_text(
        "usage_date_utc,model,cost_usd,inference_geo\n"
        "2026-11-20,Claude Opus 4.6,0.825,us\n2026-11-20,Claude Opus 4.6,0.75,global\n"
    )
    argv = ["reconcile", "--provider-usage", str(export), "--data-dir", data_dir]
    assert cli.main([*argv, "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["model"], row["unpriced_calls"]) == ("claude-opus-4-6", 1)
    assert (row["stored_cost_usd"], row["difference_usd"]) == ("0.75", "0.825")
    assert row["explanation"].startswith("unpriced: 1 calls stored without a price")
    assert "1 run in an inference geography" in row["explanation"]
    assert '`inference_geos:` in the price overlay (`anthropic/us: "1.1"`)' in row["explanation"]


# A model of each provider with premium tiers that genai-prices has no priority price for.
NO_PRIORITY_PRICE = {"openai": "gpt-4-turbo", "google": "gemini-2.5-flash"}
# gpt-4-turbo, $10 / $30 per million input / output tokens: 0.013 USD a call as below, billed
# twice that at priority (the multiplier of the overlay below).
PRIORITY_EXPORT = (
    "start_time_iso,line_item,amount_value,amount_currency\n"
    '2026-11-20T00:00:00+00:00,"gpt-4-turbo-2024-04-09, input",0.03,usd\n'
    '2026-11-20T00:00:00+00:00,"priority | gpt-4-turbo-2024-04-09, output",0.009,usd\n'
)


def test_unpriced_priority_calls_are_explained_with_the_fix_that_prices_them(tmp_path, capsys):
    """A call served at OpenAI's (or Gemini's) priority tier, of a model genai-prices has no
    priority price for, is stored unpriced; adding the model to the overlay would not price it,
    a `service_tiers:` multiplier does: the explanation says so (it said to add the model), and
    after `reprice` with that multiplier the day reconciles."""
    from llm_margin.processor.pricing.price_book import PREMIUM_TIERS
    from llm_margin.processor.reports.views import run_sql

    premium = [(p, tier) for p, tiers in sorted(PREMIUM_TIERS.items()) for tier in sorted(tiers)]
    calls = [
        _priced_call(1, datetime(2026, 11, 20, 9), "gpt-4-turbo", input_tokens=1000, output_tokens=100),
        # Anthropic's Priority Tier is priced as standard: an unknown model's call is unpriced
        # for its model only.
        _priced_call(2, datetime(2026, 11, 20, 9), "claude-new", provider="anthropic",
                     input_tokens=1000, service_tier="priority"),
    ] + [
        _priced_call(n, datetime(2026, 11, 20, 10, n), NO_PRIORITY_PRICE[provider],
                     provider=provider, input_tokens=1000, output_tokens=100, service_tier=tier)
        for n, (provider, tier) in enumerate(premium, 3)
    ]  # fmt: skip
    assert [call.priced for call in calls] == [True] + [False] * (len(calls) - 1)
    data_dir = str(tmp_path / "data")
    store = Store.open(data_dir=data_dir)
    try:
        store.insert_calls(calls)
        counted = {
            row["provider"]: (row["restated_unpriced_calls"], row["restated_unpriced_premium_tier_calls"])
            for row in run_sql(
                store,
                "queries/stored_cost_by_day_model.sql",
                {"since": datetime(2026, 11, 20), "until": datetime(2026, 11, 21)},
            )
        }  # fmt: skip
    finally:
        store.close()
    assert counted == {"anthropic": (1, 0), **{provider: (1, 1) for provider, _ in premium}}

    export = tmp_path / "costs.csv"
    export.write_text(PRIORITY_EXPORT)
    argv = [
        "reconcile",
        "--provider-usage",
        str(export),
        "--data-dir",
        data_dir,
        "--format",
        "json",
    ]
    assert cli.main(argv) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["model"], row["unpriced_calls"], row["difference_usd"]) == (
        "gpt-4-turbo",
        1,
        "0.026",
    )
    assert row["explanation"].startswith(
        "unpriced: 1 calls stored without a price (1 with no priority-tier price: give the tier "
        "a multiplier under `service_tiers:` in the price overlay (`openai/priority`)"
    )

    overlay = tmp_path / "overlay.yaml"
    overlay.write_text('service_tiers:\n  openai/priority: "2"\n')
    reprice = ["reprice", "--data-dir", data_dir, "--price-overlay", str(overlay)]
    assert cli.main([*reprice, "--since", "2026-11-20", "--until", "2026-11-21"]) == 0
    capsys.readouterr()
    assert cli.main(argv) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["explanation"] == "match; restated by reprice: 0.039 USD (as charged 0.013 USD)"


def test_unpriced_searches_of_calls_in_a_premium_mode_are_told_its_multiplier(tmp_path, capsys):
    """A US-only call and a fast-mode call of claude-opus-4-6 (no multiplier for either in the
    book) that made web searches are stored unpriced, searches too. Their web search row was
    explained as a missing `web_search_per_k`, which the model has (genai-prices: $10 per
    1,000) and which would not price them: it names each mode's multiplier, as the token row
    does."""
    calls = [
        _priced_call(
            n,
            datetime(2026, 11, 20, 9, n),
            "claude-opus-4-6",
            provider="anthropic",
            input_tokens=1000,
            output_tokens=100,
            web_search_calls=2,
            **mode,
        )
        for n, mode in ((1, {"inference_geo": "us"}), (2, {"speed": "fast"}))
    ]
    assert [call.priced for call in calls] == [False, False]
    data_dir = _stored(tmp_path, calls)
    export = tmp_path / "cost_report.json"
    export.write_text(
        '{"has_more": false, "data": [{"starting_at": "2026-11-20T00:00:00Z", "results": ['
        '{"amount": "5", "currency": "USD", "cost_type": "tokens", "model": "claude-opus-4-6"},'
        '{"amount": "4", "currency": "USD", "cost_type": "web_search", "model": null}]}]}'
    )
    argv = ["reconcile", "--provider-usage", str(export), "--data-dir", data_dir]
    assert cli.main([*argv, "--format", "json"]) == 0
    rows = {row["model"]: row for row in json.loads(capsys.readouterr().out)}
    searches = rows["(web searches)"]
    assert (searches["unpriced_calls"], searches["difference_usd"]) == (2, "0.04")
    explanation = searches["explanation"]
    assert explanation.startswith("unpriced: 2 calls with web searches stored without a price (")
    assert "1 in a speed mode the price book has no price for" in explanation
    assert "1 run in an inference geography the price book has no multiplier" in explanation
    assert explanation.endswith(
        "; any other, give the model's overlay entry `web_search_per_k`; then `llm-margin reprice`)"
    )
    tokens = rows["claude-opus-4-6"]["explanation"]
    assert "`speeds:`" in tokens and "`inference_geos:`" in tokens
