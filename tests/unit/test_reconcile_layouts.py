"""Provider cost exports in the layouts the providers really write, one small file per layout.

The samples are written from the public descriptions of each format (cited per case) with
invented values; what each layout must come out as is the (UTC day, model) -> USD table."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest
from llm_margin.processor.reports import reconcile

DAY = date(2026, 11, 20)
NEXT = date(2026, 11, 21)

LAYOUTS = [
    pytest.param(
        # OpenAI usage dashboard, Cost view, Export (CSV): the Costs API fields with unix and
        # ISO bucket times in front (https://platform.openai.com/docs/api-reference/usage/costs;
        # https://help.openai.com/en/articles/10478918-api-usage-dashboard). Days without cost
        # are listed with empty fields.
        "openai dashboard export, grouped by line item",
        "start_time,end_time,start_time_iso,end_time_iso,amount_value,amount_currency,"
        "line_item,project_id,organization_id,organization_name\n"
        "1795132800,1795219200,2026-11-20T00:00:00+00:00,2026-11-21T00:00:00+00:00,"
        '0.8958740000000000,usd,"gpt-4o-2024-08-06, input",proj_a,org-a,Acme\n'
        "1795132800,1795219200,2026-11-20T00:00:00+00:00,2026-11-21T00:00:00+00:00,"
        '0.1,usd,"gpt-4o-2024-08-06, output",proj_a,org-a,Acme\n'
        "1795219200,1795305600,2026-11-21T00:00:00+00:00,2026-11-22T00:00:00+00:00,,,,,,\n",
        "openai",
        {(DAY, "gpt-4o"): D("0.995874")},
        id="openai-dashboard-line-items",
    ),
    pytest.param(
        # The same export not grouped by line item: no model, one amount per day.
        "openai dashboard export, daily totals",
        "start_time,end_time,start_time_iso,end_time_iso,amount_value,amount_currency,"
        "line_item,project_id,organization_id,organization_name\n"
        "1795132800,1795219200,2026-11-20T00:00:00+00:00,2026-11-21T00:00:00+00:00,"
        "0.5617712500000000,usd,,,org-a,Acme\n"
        "1795219200,1795305600,2026-11-21T00:00:00+00:00,2026-11-22T00:00:00+00:00,,,,,,\n",
        "openai",
        {(DAY, reconcile.ALL_MODELS): D("0.56177125")},
        id="openai-dashboard-daily-totals",
    ),
    pytest.param(
        # Anthropic Console, Cost page, CSV export
        # (https://support.anthropic.com/en/articles/9534590-cost-and-usage-reporting-in-console):
        # models by display name, amounts in USD rounded to cents, one row per token type.
        "anthropic console cost export",
        "usage_date_utc,model,workspace,api_key,usage_type,context_window,token_type,cost_usd,"
        "list_price_usd,cost_type,inference_geo,speed,api_key_id,api_key_status\n"
        "2026-11-20,Claude Sonnet 4.5,Default,prod,message,≤ 200k,input_no_cache,0.30,0.30,"
        "token,global,,apikey_01,active\n"
        "2026-11-20,Claude Sonnet 4.5,Default,prod,message,≤ 200k,input_cache_read,0.02,0.02,"
        "token,global,,apikey_01,active\n"
        "2026-11-20,Claude Sonnet 4.5,Default,prod,message,≤ 200k,output,0.45,0.45,"
        "token,global,,apikey_01,active\n"
        "2026-11-20,Claude Haiku 3.5,Default,prod,message,≤ 200k,output,0.01,0.01,"
        "token,global,,apikey_01,active\n"
        "2026-11-21,Claude 3.5 Sonnet 2024-10-22,Default,prod,message,≤ 200k,output,1.00,1.00,"
        "token,global,,apikey_01,active\n",
        "anthropic",
        {
            (DAY, "claude-sonnet-4-5"): D("0.77"),
            (DAY, "claude-3-5-haiku"): D("0.01"),
            (NEXT, "claude-3-5-sonnet"): D("1.00"),
        },
        id="anthropic-console-cost-export",
    ),
    pytest.param(
        # OpenAI Costs API line items beyond "<model>, <kind>": a service tier in front, a
        # modality after the model, a context tier after the kind, tool and storage charges
        # (https://platform.openai.com/docs/api-reference/usage/costs, group_by=line_item).
        "openai line items",
        "start_time_iso,line_item,amount_value,amount_currency\n"
        '2026-11-20T00:00:00+00:00,"priority | gpt-5-2025-08-07, output, long context",2,usd\n'
        '2026-11-20T00:00:00+00:00,"gpt-5-2025-08-07, cached input",0.5,usd\n'
        '2026-11-20T00:00:00+00:00,"gpt-audio-mini-2025-10-06 audio, input",0.25,usd\n'
        "2026-11-20T00:00:00+00:00,web search tool calls,0.03,usd\n"
        "2026-11-20T00:00:00+00:00,Vector storage,0.01,usd\n",
        "openai",
        {
            (DAY, "gpt-5"): D("2.5"),
            (DAY, "gpt-audio-mini"): D("0.25"),
            (DAY, "(web search tool calls)"): D("0.03"),
            (DAY, "(vector storage)"): D("0.01"),
        },
        id="openai-line-items",
    ),
    pytest.param(
        # Anthropic Console cost export rows that are not tokens (cost_type, as the Admin API's
        # cost report: https://platform.claude.com/docs/en/api/admin/cost_report).
        "anthropic non-token costs",
        "usage_date_utc,model,token_type,cost_usd,cost_type\n"
        "2026-11-20,Claude Sonnet 4.5,output,0.45,token\n"
        "2026-11-20,Claude Sonnet 4.5,,0.10,web_search\n",
        "anthropic",
        {(DAY, "claude-sonnet-4-5"): D("0.45"), (DAY, "(web_search)"): D("0.10")},
        id="anthropic-non-token-costs",
    ),
    pytest.param(
        # OpenAI GET /v1/organization/costs?group_by=line_item, the page saved as returned
        # (https://platform.openai.com/docs/api-reference/usage/costs): unix-second buckets,
        # amounts as USD numbers (read exactly, never through a float).
        "openai costs api json",
        """{"object": "page", "has_more": false, "next_page": null, "data": [
          {"object": "bucket", "start_time": 1795132800, "end_time": 1795219200, "results": [
            {"object": "organization.costs.result", "amount": {"value": 0.1, "currency": "usd"},
             "line_item": "gpt-4o-2024-08-06, input", "project_id": null},
            {"object": "organization.costs.result", "amount": {"value": 0.2, "currency": "usd"},
             "line_item": "gpt-4o-2024-08-06, output", "project_id": null}]},
          {"object": "bucket", "start_time": 1795219200, "end_time": 1795305600, "results": []}
        ]}""",
        "openai",
        {(DAY, "gpt-4o"): D("0.3")},
        id="openai-costs-api-json",
    ),
    pytest.param(
        # Two pages of the same, one per line (what a loop following next_page appends).
        "openai costs api json lines",
        '{"object": "page", "has_more": true, "next_page": "p2", "data": [{"object": "bucket",'
        ' "start_time": 1795132800, "end_time": 1795219200, "results": [{"amount": {"value":'
        ' 0.06, "currency": "usd"}, "line_item": null}]}]}\n'
        '{"object": "page", "has_more": false, "next_page": null, "data": [{"object": "bucket",'
        ' "start_time": 1795219200, "end_time": 1795305600, "results": [{"amount": {"value":'
        ' 1, "currency": "usd"}, "line_item": null}]}]}\n',
        "openai",
        {(DAY, reconcile.ALL_MODELS): D("0.06"), (NEXT, reconcile.ALL_MODELS): D("1")},
        id="openai-costs-api-json-lines",
    ),
    pytest.param(
        # Anthropic GET /v1/organizations/cost_report?group_by[]=description
        # (https://platform.claude.com/docs/en/api/admin/cost_report): RFC 3339 buckets,
        # amounts as decimal strings in cents ("123.45" is 1.2345 USD).
        "anthropic cost report json",
        """{"has_more": false, "next_page": null, "data": [
          {"starting_at": "2026-11-20T00:00:00Z", "ending_at": "2026-11-21T00:00:00Z",
           "results": [
            {"amount": "123.45", "currency": "USD", "cost_type": "tokens",
             "model": "claude-sonnet-4-5-20250929", "token_type": "output_tokens",
             "service_tier": "standard", "context_window": "0-200k", "workspace_id": null,
             "description": "Claude Sonnet 4.5 Usage - Output Tokens"},
            {"amount": "1.5", "currency": "USD", "cost_type": "tokens",
             "model": "claude-sonnet-4-5-20250929",
             "token_type": "cache_creation.ephemeral_5m_input_tokens"},
            {"amount": "1000", "currency": "USD", "cost_type": "web_search", "model": null}]}
        ]}""",
        "anthropic",
        {(DAY, "claude-sonnet-4-5"): D("1.2495"), (DAY, "(web_search)"): D("10")},
        id="anthropic-cost-report-json",
    ),
]


@pytest.mark.parametrize(("name", "text", "provider", "totals"), LAYOUTS)
def test_layout(tmp_path, name, text, provider, totals):
    path = tmp_path / "export"
    path.write_bytes(text.encode())
    assert reconcile.read_provider_usage(str(path)) == (provider, totals), name


class FakeReader:
    """Stored cost by day and model, as queries/stored_cost_by_day_model.sql returns it."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def query(self, sql: str, parameters: Any) -> FakeReader:
        return self

    def dicts(self) -> list[dict[str, Any]]:
        return self.rows


def stored_row(
    day: date, model: str, cost: str, provider: str = "openai", part: str = "tokens", **facts: Any
) -> dict[str, Any]:
    return {
        "day": day,
        "provider": provider,
        "model": model,
        "part": part,
        "calls": 1,
        "unpriced_calls": 0,
        "failed_calls": 0,
        "failed_calls_without_usage": 0,
        "unattributed_calls": 0,
        "stored_cost_usd": D(cost),
        "restated_cost_usd": D(cost),
        "restated_unpriced_calls": 0,
        "restated_unpriced_speed_calls": 0,
        "restated_unpriced_premium_tier_calls": 0,
        "restated_unpriced_geo_calls": 0,
        "restated_unpriced_advisor_calls": 0,
        "restated_unpriced_advisor_models": [],
        **facts,
    }


def test_an_export_without_models_is_compared_by_day(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(LAYOUTS[1].values[1])
    reader = FakeReader(
        [
            stored_row(DAY, "gpt-4o-2024-08-06", "0.5"),
            stored_row(DAY, "gpt-4o-mini", "0.06"),
            stored_row(DAY, "claude-haiku-4-5", "9", provider="anthropic"),
        ]
    )
    provider, rows = reconcile.reconcile(reader, str(path))
    assert provider == "openai"
    assert [(r["day"], r["model"], r["stored_cost_usd"], r["stored_calls"]) for r in rows] == [
        (DAY.isoformat(), reconcile.ALL_MODELS, D("0.56"), 2)
    ]
    assert rows[0]["explanation"] == "match"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"has_more": true, "data": []}', "has_more"),
        ('{"object": "list"}', "not a page"),
        (
            '{"data": [{"start_time": 1795132800, "results": [{"amount": {"value": "x"}}]}]}',
            "bucket 1 result 1: 'x' is not an amount",
        ),
        (
            '{"data": [{"starting_at": "2026-11-20T00:00:00Z", "results": [{"amount": "1",'
            ' "currency": "EUR"}]}]}',
            "currency 'eur' is not usd",
        ),
        ('{"data": [', "not readable JSON"),
    ],
)
def test_unreadable_json_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "costs.json"
    path.write_text(text)
    with pytest.raises(reconcile.ProviderUsageError, match=message):
        reconcile.read_provider_usage(str(path))


def test_tool_charges_are_not_called_unseen_calls():
    assert reconcile.explain(D("0.03"), None, D("0.01"), "(vector storage)").startswith(
        "not a model's tokens"
    )
    # searches are recorded: billed ones no stored call made were not seen
    assert reconcile.explain(D("0.03"), None, D("0.01"), reconcile.WEB_SEARCHES).startswith(
        "unattributed: the provider billed web searches of calls the processor never saw"
    )
    assert reconcile.explain(D("1"), None, D("0.01"), "gpt-4.1").startswith("unattributed")


PREMIUM_FIX = (
    "with no priority-tier price: give the tier a multiplier under `service_tiers:` in the "
    "price overlay (`openai/priority`)"
)
SPEED_FIX = "in a speed mode the price book has no price for"


@pytest.mark.parametrize(
    ("facts", "named", "not_named"),
    [
        # unpriced for its model only: a model entry prices it
        ({}, ["(add the model to the price overlay"], ["`service_tiers:`", "`speeds:`"]),
        # served at priority with no priority price: a model entry would not price it
        (
            {"restated_unpriced_premium_tier_calls": 2},
            [f"(2 {PREMIUM_FIX}; any other, add the model; then `llm-margin reprice`)"],
            ["`speeds:`"],
        ),
        ({"restated_unpriced_speed_calls": 1}, [f"(1 {SPEED_FIX}"], ["`service_tiers:`"]),
        # named for the provider, as `prices check` names it
        (
            {"restated_unpriced_speed_calls": 1},
            ["`speeds:` in the price overlay (`openai/fast`)"],
            [],
        ),
        # consulted an advisor the book may not price: a model entry for this model would not
        # price it (the explanation said to add this model)
        (
            {"restated_unpriced_advisor_calls": 2, "restated_unpriced_advisor_models": ["adv-x"]},
            [
                "(2 consulted an advisor on another model (adv-x): if the price book has no "
                "price for it, add that model, not this one (`llm-margin prices check` names "
                "it); any other, add the model; then `llm-margin reprice`)"
            ],
            ["`speeds:`"],
        ),
        (
            {"restated_unpriced_premium_tier_calls": 1, "restated_unpriced_speed_calls": 1},
            [f"(1 {PREMIUM_FIX}; 1 {SPEED_FIX}", "`speeds:`"],
            [],
        ),
    ],
)
def test_unpriced_calls_are_told_the_fix_that_prices_them(facts, named, not_named):
    row = stored_row(DAY, "gpt-4-turbo", "0", unpriced_calls=3, restated_unpriced_calls=3, **facts)
    explanation = reconcile.explain(D("0.05"), row, D("0.01"), "gpt-4-turbo", provider="openai")
    assert explanation.startswith("unpriced: 3 calls stored without a price (")
    for text in named:
        assert text in explanation
    for text in not_named:
        assert text not in explanation


@pytest.mark.parametrize(
    ("stored_cost", "explanation"),
    [
        # Three rows each rounded to cents (0.30 + 0.02 + 0.45 = 0.77) may be 0.015 off the
        # exact cost, more than the default tolerance: the export's rounding, not a price.
        ("0.7551", "match; within the export's rounding (±0.015 USD)"),
        ("0.765", "match"),
        ("0.75", "price mismatch: provider charged 2.67% more than stored"),
    ],
)
def test_exports_rounded_to_cents_match_within_their_rounding(tmp_path, stored_cost, explanation):
    path = tmp_path / "console.csv"
    path.write_text(LAYOUTS[2].values[1])  # the Anthropic Console export
    reader = FakeReader([stored_row(DAY, "claude-sonnet-4-5-20250929", stored_cost, "anthropic")])
    _, rows = reconcile.reconcile(reader, str(path))
    sonnet = next(r for r in rows if r["model"] == "claude-sonnet-4-5")
    assert sonnet["provider_cost_usd"] == D("0.77")
    assert sonnet["explanation"].startswith(explanation)


@pytest.mark.parametrize(
    ("cents", "stored_cost", "explanation"),
    [
        # Whole cents are rounded to the cent: half a cent per result, whatever the digits.
        ("10", "0.05", "price mismatch: provider charged 100.00% more than stored"),
        ("100", "1.3", "price mismatch: provider charged 23.08% less than stored"),
        ("10", "0.096", "match; within the export's rounding (±0.005 USD)"),
        ("10.0", "0.098", "price mismatch: provider charged 2.04% more than stored"),
    ],
)
def test_cost_report_rounding_is_the_written_cents(tmp_path, cents, stored_cost, explanation):
    """Anthropic's cost report writes amounts in cents: the rounding it explains is half a unit
    in the last place written, in cents (``"10"`` is 0.10 USD to the cent). Dividing by 100
    dropped trailing zeros (``"10"`` became 0.1, ``"100"`` 1), so a 0.05 USD difference on
    0.10 USD, or 0.30 on 1 USD, was called a match within the export's rounding."""
    path = tmp_path / "cost_report.json"
    path.write_text(
        '{"data": [{"starting_at": "2026-11-20T00:00:00Z", "results": [{"amount": "'
        + cents
        + '", "currency": "USD", "cost_type": "tokens", "model": "claude-haiku-4-5"}]}],'
        ' "has_more": false}'
    )
    reader = FakeReader([stored_row(DAY, "claude-haiku-4-5-20251001", stored_cost, "anthropic")])
    _, rows = reconcile.reconcile(reader, str(path), tolerance=D("0.001"))
    assert rows[0]["provider_cost_usd"] == D(cents) / 100
    assert rows[0]["explanation"].startswith(explanation)


OPENAI_WITH_SEARCHES = (
    "start_time_iso,line_item,amount_value,amount_currency\n"
    '2026-11-20T00:00:00+00:00,"gpt-4o-2024-08-06, input",0.02,usd\n'
    '2026-11-20T00:00:00+00:00,"gpt-4o-2024-08-06, output",0.01,usd\n'
    '2026-11-20T00:00:00+00:00,"gpt-4o-mini-2024-07-18, input",0.004,usd\n'
    "2026-11-20T00:00:00+00:00,web search tool calls,{web},usd\n"
    "2026-11-20T00:00:00+00:00,file search tool calls,0.005,usd\n"
    "2026-11-20T00:00:00+00:00,Vector storage,0.01,usd\n"
)


def _searches_day(web_stored: str = "0.03", **web_facts: Any) -> FakeReader:
    """gpt-4o's calls made 3 web and 2 file searches (0.03 + 0.005 USD of their 0.065 USD),
    gpt-4o-mini's 1 web search; the parts as stored_cost_by_day_model.sql returns them."""
    return FakeReader(
        [
            stored_row(DAY, "gpt-4o-2024-08-06", "0.03"),
            stored_row(DAY, "gpt-4o-2024-08-06", "0.005", part="file_search", searches=2),
            stored_row(DAY, "gpt-4o-2024-08-06", web_stored, part="web_search", **web_facts),
            stored_row(DAY, "gpt-4o-mini-2024-07-18", "0.004"),
            stored_row(DAY, "gpt-4o-mini-2024-07-18", "0.01", part="web_search"),
        ]
    )


def test_searches_are_compared_with_the_exports_search_lines(tmp_path):
    # Stored cost includes the searches; the export bills them on tool lines without a model.
    # Compared per model they were a price mismatch and the lines "not a model's tokens".
    path = tmp_path / "costs.csv"
    path.write_text(OPENAI_WITH_SEARCHES.format(web="0.04"))
    _, rows = reconcile.reconcile(FakeReader(_searches_day().rows), str(path), D("0"))
    got = {
        r["model"]: (r["provider_cost_usd"], r["stored_cost_usd"], r["explanation"]) for r in rows
    }
    assert got == {
        "gpt-4o": (D("0.03"), D("0.03"), "match"),
        "gpt-4o-mini": (D("0.004"), D("0.004"), "match"),
        "(web searches)": (D("0.04"), D("0.04"), "match"),  # both models' web searches
        "(file searches)": (D("0.005"), D("0.005"), "match"),
        "(vector storage)": (D("0.01"), D("0"), got["(vector storage)"][2]),
    }
    assert got["(vector storage)"][2].startswith("not a model's tokens")
    assert all(r["difference_usd"] == 0 for r in rows if r["model"] != "(vector storage)")
    assert next(r for r in rows if r["model"] == "(web searches)")["stored_calls"] == 2


@pytest.mark.parametrize(
    ("web_stored", "facts", "explanation"),
    [
        ("0.02", {}, "price mismatch: provider charged 33.33% more than stored"),
        ("0.04", {}, "price mismatch: provider charged 20.00% less than stored"),
        (
            "0",
            {"unpriced_calls": 1, "restated_unpriced_calls": 1},
            "unpriced: 1 calls with web searches stored without a price (give the model's "
            "overlay entry `web_search_per_k`, then `llm-margin reprice`)",
        ),
    ],
)
def test_a_search_difference_is_explained(tmp_path, web_stored, facts, explanation):
    path = tmp_path / "costs.csv"
    path.write_text(OPENAI_WITH_SEARCHES.format(web="0.04"))
    _, rows = reconcile.reconcile(_searches_day(web_stored, **facts), str(path), D("0"))
    web = next(r for r in rows if r["model"] == reconcile.WEB_SEARCHES)
    assert web["explanation"].startswith(explanation)
    assert web["difference_usd"] == D("0.04") - D(web_stored) - D("0.01")
    # the models' token rows are unaffected by it
    assert {r["explanation"] for r in rows if not r["model"].startswith("(")} == {"match"}


def test_a_search_row_of_calls_unpriced_for_their_tier_names_the_tier_multiplier(tmp_path):
    """A priority call (no priority-tier price) that made a web search is unpriced for its
    tier: its search row said to give the model `web_search_per_k`, which would not price it."""
    path = tmp_path / "costs.csv"
    path.write_text(OPENAI_WITH_SEARCHES.format(web="0.04"))
    facts = {
        "unpriced_calls": 1,
        "restated_unpriced_calls": 1,
        "restated_unpriced_premium_tier_calls": 1,
    }
    _, rows = reconcile.reconcile(_searches_day("0", **facts), str(path), D("0"))
    web = next(r for r in rows if r["model"] == reconcile.WEB_SEARCHES)
    assert web["explanation"].startswith(
        f"unpriced: 1 calls with web searches stored without a price (1 {PREMIUM_FIX}; any "
        "other, give the model's overlay entry `web_search_per_k`; then `llm-margin reprice`)"
    )


def test_a_price_mismatch_names_every_multiplier_that_changes_a_price():
    row = stored_row(DAY, "claude-opus-4-6", "0.05", "anthropic")
    explanation = reconcile.explain(D("0.055"), row, D("0.001"), "claude-opus-4-6")
    assert explanation == (
        "price mismatch: provider charged 10.00% more than stored (check the price book "
        "version, negotiated discounts, and the multipliers of service tiers, speed modes and "
        "inference geographies)"
    )


def test_anthropic_web_search_cost_matches_stored_searches(tmp_path):
    path = tmp_path / "cost_report.json"
    path.write_text(
        '{"has_more": false, "data": [{"starting_at": "2026-11-20T00:00:00Z", "results": ['
        '{"amount": "45", "currency": "USD", "cost_type": "tokens",'
        ' "model": "claude-sonnet-4-5-20250929", "token_type": "output_tokens"},'
        '{"amount": "7", "currency": "USD", "cost_type": "web_search", "model": null}]}]}'
    )
    reader = FakeReader(
        [
            stored_row(DAY, "claude-sonnet-4-5-20250929", "0.45", "anthropic"),
            stored_row(DAY, "claude-sonnet-4-5-20250929", "0.07", "anthropic", "web_search"),
        ]
    )
    _, rows = reconcile.reconcile(reader, str(path), D("0"))
    assert [(r["model"], r["difference_usd"], r["explanation"]) for r in rows] == [
        ("(web searches)", D(0), "match"),
        ("claude-sonnet-4-5", D(0), "match"),
    ]


def test_searches_count_in_a_day_compared_whole(tmp_path):
    # an export without line items: the day's whole cost, searches included, calls once each
    path = tmp_path / "export.csv"
    path.write_text(
        "start_time_iso,line_item,amount_value,amount_currency\n"
        "2026-11-20T00:00:00+00:00,,0.079,usd\n"
    )
    _, rows = reconcile.reconcile(_searches_day(), str(path), D("0"))
    assert [
        (r["model"], r["stored_cost_usd"], r["stored_calls"], r["explanation"]) for r in rows
    ] == [(reconcile.ALL_MODELS, D("0.079"), 2, "match")]
