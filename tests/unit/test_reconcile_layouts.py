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


def stored_row(day: date, model: str, cost: str, provider: str = "openai") -> dict[str, Any]:
    return {
        "day": day,
        "provider": provider,
        "model": model,
        "calls": 1,
        "unpriced_calls": 0,
        "failed_calls": 0,
        "failed_calls_without_usage": 0,
        "unattributed_calls": 0,
        "stored_cost_usd": D(cost),
        "restated_cost_usd": D(cost),
        "restated_unpriced_calls": 0,
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
