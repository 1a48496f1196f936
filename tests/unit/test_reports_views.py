"""Report helpers: parameter binding, exact wire strings, margin status, near-budget filter."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal as D

import pytest
from llm_margin.clickhouse import read_sql
from llm_margin.processor.reports import customers, views, weekly


def test_every_view_sql_ships_and_declares_since_until():
    for view in views.VIEWS.values():
        sql = read_sql(view.sql)
        declared = set(views._PARAMETER.findall(sql))
        assert "until" in declared, view.name
        assert set(view.defaults) <= declared, view.name


def test_every_view_but_plans_takes_a_customer():
    """`report --customer` narrows every view but plans (a plan's margin is many customers')."""
    for view in views.VIEWS.values():
        declared = set(views._PARAMETER.findall(read_sql(view.sql)))
        assert ("customer" in declared) == (view.name != "plans"), view.name
    assert "{customer:String}" in read_sql("queries/customer_margin.sql")


def test_bind_leaves_the_customer_filter_off_unless_given():
    sql = "SELECT {until:DateTime64(6)}, {customer:String}"
    until = datetime(2026, 11, 1)
    assert views.bind(sql, {"until": until}) == {"until": until, "customer": ""}
    assert views.bind(sql, {"until": until, "customer": "acme"})["customer"] == "acme"
    assert views.bind("SELECT {until:DateTime64(6)}", {"until": until}) == {"until": until}


def test_bind_passes_only_declared_and_requires_all():
    sql = "SELECT {since:DateTime64(6)}, {limit:UInt32}"
    since = datetime(2026, 11, 1, tzinfo=timezone.utc)
    bound = views.bind(sql, {"since": since, "limit": 3, "extra": 1})
    assert bound == {"since": datetime(2026, 11, 1), "limit": 3}
    with pytest.raises(ValueError, match="limit"):
        views.bind(sql, {"since": since})


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("cost_usd", D("1.230000000000000000"), "1.23"),
        ("cost_usd", "0.000000000000000001", "0.000000000000000001"),
        ("revenue_usd", D("23.1"), "23.10"),
        ("margin_pct", D("12.345"), "12.34"),
        ("fallback_rate_pct", 50.0, "50.00"),
        ("day", date(2026, 11, 22), "2026-11-22"),
        ("attempts_per_task", 2.5, "2.50"),
        ("calls", 7, 7),
        ("spend_growth_pct", None, None),
    ],
)
def test_to_wire(key, value, expected):
    row = views._normalise({key: value})
    assert views.to_wire(row)[key] == expected


@pytest.mark.parametrize(
    "margin, target, status",
    [
        (None, None, "n/a"),
        (D("-0.01"), D(80), "underwater"),
        (D("79.99"), D(80), "thin"),
        (D("80"), D(80), "healthy"),
        (D("49"), None, "thin"),
        (D("51"), None, "healthy"),
    ],
)
def test_margin_status(margin, target, status):
    assert customers.margin_status(margin, target) == status


def test_near_budget():
    rows = [
        {"used_pct": D(49), "projected_pct": D(79)},
        {"used_pct": D(50), "projected_pct": D(60)},
        {"used_pct": D(10), "projected_pct": D(80)},
        {"used_pct": None, "projected_pct": None},
    ]
    assert weekly.near_budget(rows) == rows[1:3]


def test_total_row_sums_exactly():
    rows = [{"cost_usd": D("0.1"), "calls": 1}, {"cost_usd": D("0.2"), "calls": 2}]
    total = views.total_row(views.VIEWS["daily"], rows)
    assert total["cost_usd"] == D("0.3") and total["calls"] == 3


def test_rollup_freshness_block_is_the_same_everywhere():
    """Freshness lives in one place, the view llm_rollup_fresh (schema/039); each roll-up query
    reads it with the same few lines (each file must still run as-is)."""
    start, end = "    -- Roll-up freshness", "    fresh.3 AS fresh_refreshes,\n"

    def block(name: str) -> str:
        text = read_sql(f"queries/{name}.sql")
        return text[text.index(start) : text.index(end)]

    reference = block("customer_margin")
    assert "llm_rollup_fresh(" in reference and "system.parts" not in reference
    for name in ("plan_margin", "daily_trend", "unpriced_spend"):
        assert block(name) == reference, name
    # budget_usage measures from the month start instead of {since}.
    assert block("budget_usage") == reference.replace("{since:DateTime64(6)}", "month_start_ts")


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_render_output_ends_with_a_newline(fmt):
    # Every format ends its last line, so a shell prompt or a `>>` append starts on a new one.
    from llm_margin.processor.reports.render import render

    for rows in ([], [{"a": 1}]):
        assert render(rows, ["a"], fmt).endswith("\n")


def test_near_budget_table_names_the_workspaces_customer():
    """Workspace ids are per customer ("default" may be anyone's): the weekly table says whose."""
    from llm_margin.processor.reports.render import render

    rows = weekly.section_wire(
        "near_budget",
        [
            {"scope": "workspace", "scope_id": "default", "customer_id": "acme",
             "allowance_usd": D(10), "spent_usd": D(6), "used_pct": D(60), "projected_pct": D(90)},
            {"scope": "workspace", "scope_id": "default", "customer_id": "globex",
             "allowance_usd": D(10), "spent_usd": D(8), "used_pct": D(80), "projected_pct": D(95)},
        ],
    )  # fmt: skip
    table = render(rows, weekly.SECTION_COLUMNS["near_budget"], "table")
    assert "acme" in table and "globex" in table
