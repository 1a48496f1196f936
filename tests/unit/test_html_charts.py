"""The weekly page's charts draw the report's numbers: values in, marks and labels out.

Each mark (bar, n/a placeholder, day total) carries the exact string it stands for in
``data-value``; these tests read them back with the standard library's HTML parser and compare
with the wire rows the JSON report prints."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from llm_margin.processor.reports import weekly
from llm_margin.processor.reports.html import (
    cost_revenue_chart,
    daily_feature_chart,
    margin_by_plan_chart,
    period_days,
    render_html,
)

from tests.chart_marks import Chart


def customer(cid: str, cost: str, revenue: str, calls: int = 1) -> dict[str, Any]:
    return {"customer_id": cid, "cost_usd": cost, "revenue_usd": revenue, "calls": calls}


TEN = [customer(f"c{i:02}", f"{10 - i}.5", "20.00") for i in range(10)]


@pytest.mark.parametrize(
    ("top", "rest", "pairs"),
    [
        pytest.param(
            [customer("acme", "0.0042", "0.00")],
            [],
            [("acme", "0.0042", "0.00")],
            id="cost-exact-not-cents",
        ),
        pytest.param(
            TEN,
            [customer("k", "0.1", "1.10"), customer("l", "0.2", "2.20")],
            [*((c["customer_id"], c["cost_usd"], c["revenue_usd"]) for c in TEN)]
            + [("others (2 customers)", "0.3", "3.30")],
            id="beyond-top-summed-as-others",
        ),
        pytest.param(
            [customer("acme", "5", "1.00")],
            [customer("idle", "0", "29.00", calls=0)],
            [("acme", "5", "1.00"), ("others (1 customer)", "0", "29.00")],
            id="paying-customer-without-calls-in-others",
        ),
        pytest.param(
            [customer("(unattributed)", "2.5", "0.00")],
            [],
            [("(unattributed)", "2.5", "0.00")],
            id="unattributed-shown-as-in-json",
        ),
    ],
)
def test_cost_revenue_bars_are_the_report_rows(top, rest, pairs) -> None:
    chart = Chart(cost_revenue_chart(top, top + rest))
    expected = []
    for name, cost, revenue in pairs:
        expected += [("revenue", name, revenue), ("cost", name, cost)]
    assert chart.values() == expected
    # The printed labels are the same exact strings.
    for _name, cost, revenue in pairs:
        assert f"cost {cost}" in chart.texts and f"revenue {revenue}" in chart.texts


def test_no_customer_with_calls_says_so() -> None:
    html = cost_revenue_chart([], [customer("idle", "0", "29.00", calls=0)])
    assert "<svg" not in html and "No customer made calls in this period" in html


@pytest.mark.parametrize(
    ("values", "widths", "noted"),
    [
        # One customer 1000x the others: the small bars stay visible and the chart says so.
        (("1000", "1", "1"), None, True),
        (("5", "4", "3"), None, False),
        # Zero is drawn as nothing, not as a 1px bar that reads as "a little".
        (("0", "4", "0"), (0.0, None, 0.0), False),
    ],
)
def test_cost_revenue_scale(values, widths, noted) -> None:
    rows = [customer(f"c{i}", v, "0.00") for i, v in enumerate(values)]
    html = cost_revenue_chart(rows, rows)
    chart = Chart(html)
    costs = [m for m in chart.marks if m["data-series"] == "cost"]
    for mark, value, width in zip(costs, values, widths or (None,) * len(values), strict=True):
        drawn = float(mark["width"])
        if width is not None:
            assert drawn == width
        else:
            assert drawn >= 1.0, (value, drawn)
    assert bool(chart.notes) == noted, chart.notes


def test_long_customer_name_is_cut_with_the_full_name_as_tooltip() -> None:
    name = "Very Long Customer Name Incorporated International Holdings GmbH"
    chart = Chart(cost_revenue_chart([customer(name, "1", "2.00")], []))
    shown = [t for t in chart.texts if t.startswith("Very")]
    assert shown == ["Very Long Customer Na\u2026"]
    assert name in chart.tooltips
    assert ("cost", name, "1") in chart.values()


def plan(name: str, margin: str | None, target: str | None = "60", cost: str = "1") -> dict:
    return {"plan": name, "margin_pct": margin, "target_margin_pct": target, "cost_usd": cost}


@pytest.mark.parametrize(
    ("rows", "marks"),
    [
        pytest.param(
            [plan("pro", "72.50"), plan("starter", "-31.25")],
            [("pro", "72.50"), ("starter", "-31.25")],
            id="negative",
        ),
        pytest.param(
            [plan("pro", "10.00"), plan("(no plan)", None, None, cost="4.2")],
            [("pro", "10.00"), ("(no plan)", "n/a")],
            id="no-revenue-is-n/a-not-dropped",
        ),
        pytest.param(
            [plan("(no plan)", None, None)],
            [("(no plan)", "n/a")],
            id="only-no-revenue",
        ),
        pytest.param([plan("pro", "-5000.00")], [("pro", "-5000.00")], id="single-deep-loss"),
    ],
)
def test_margin_bars_are_the_plan_rows(rows, marks) -> None:
    html = margin_by_plan_chart(rows)
    chart = Chart(html)
    assert [(label, value) for _, label, value in chart.values()] == marks
    zero = float(html.split('<line x1="50" x2="750" y1="')[1].split('"')[0])
    for mark, row in zip(chart.marks, rows, strict=True):
        top, height = float(mark["y"]), float(mark["height"])
        if row["margin_pct"] is None:
            assert height == 0 and f"{row['plan']}: no revenue" in " ".join(chart.tooltips)
            assert "n/a (no revenue)" in chart.texts
        elif Decimal(row["margin_pct"]) < 0:
            assert top == zero and height > 1  # hangs below the zero line
        else:
            assert top + height == pytest.approx(zero, abs=0.11)
        if row["margin_pct"] is not None:
            assert f"{row['margin_pct']}%" in chart.texts


def test_no_plans_says_so() -> None:
    assert "No plans in this period" in margin_by_plan_chart([])


SINCE, UNTIL = datetime(2026, 11, 1, 10, 30), datetime(2026, 11, 8, 10, 30)


def day(d: str, feature: str, cost: str) -> dict[str, str]:
    return {"day": d, "feature": feature, "cost_usd": cost}


@pytest.mark.parametrize(
    ("since", "until", "days"),
    [
        (SINCE, UNTIL, ["2026-11-0" + str(d) for d in range(1, 9)]),
        (datetime(2026, 11, 1), datetime(2026, 11, 8), ["2026-11-0" + str(d) for d in range(1, 8)]),
        (datetime(2026, 11, 3, 5), datetime(2026, 11, 3, 6), ["2026-11-03"]),
        # Periods are UTC: an aware instant counts by its UTC day.
        (
            datetime(2026, 11, 1, 23, 30, tzinfo=timezone.utc),
            datetime(2026, 11, 2, 0, 30, tzinfo=timezone.utc),
            ["2026-11-01", "2026-11-02"],
        ),
    ],
)
def test_every_utc_day_of_the_period(since, until, days) -> None:
    assert [d.isoformat() for d in period_days(since, until)] == days


def test_daily_bars_every_day_exact_and_stacks_add_up() -> None:
    rows = [
        day("2026-11-01", "chat", "0.1"),
        day("2026-11-01", "search", "0.2"),
        day("2026-11-05", "chat", "1.23456789"),
        day("2026-11-08", "search", "0.000001"),
    ]
    chart = Chart(daily_feature_chart(rows, SINCE, UNTIL))
    totals = chart.values("text")
    assert [label for _, label, _ in totals] == [f"2026-11-0{d}" for d in range(1, 9)]
    assert [value for _, _, value in totals] == [
        "0.3", "0", "0", "0", "1.23456789", "0", "0", "0.000001",
    ]  # fmt: skip
    assert chart.values() == [
        ("chat", "2026-11-01", "0.1"),
        ("search", "2026-11-01", "0.2"),
        ("chat", "2026-11-05", "1.23456789"),
        ("search", "2026-11-08", "0.000001"),
    ]
    for _, label, total in totals:
        stacked = sum((Decimal(v) for _, d, v in chart.values() if d == label), Decimal(0))
        assert stacked == Decimal(total)
    # The axis top is the exact peak; no float digits anywhere.
    assert "1.23456789" in chart.texts
    assert not any("0000000" in t for t in chart.texts + chart.tooltips + chart.descs)
    assert "2026-11-08 search: 0.000001 USD" in chart.tooltips
    # The partial first and last days say so.
    assert any("2026-11-01: total 0.3 USD, partial day from 10:30 UTC" in t for t in chart.tooltips)
    assert any(
        "2026-11-08: total 0.000001 USD, partial day until 10:30 UTC" in t for t in chart.tooltips
    )


@pytest.mark.parametrize(("count", "bands"), [(3, 3), (10, 10), (14, 10)])
def test_features_beyond_the_palette_are_one_band(count, bands) -> None:
    rows = [day("2026-11-02", f"f{i:02}", str(i + 1)) for i in range(count)]
    chart = Chart(daily_feature_chart(rows, SINCE, UNTIL))
    series = [s for s, _, _ in chart.values()]
    assert len(series) == bands
    if count > bands:
        grouped = count - bands + 1
        other = f"other features ({grouped})"
        assert other in series
        # The grouped band is the sum of the cheapest features.
        assert ("other", str(sum(range(1, grouped + 1)))) in [
            (s.split()[0], v) for s, _, v in chart.values()
        ]
    assert [v for _, _, v in chart.values("text") if v != "0"] == [str(sum(range(1, count + 1)))]


def report(calls: bool = True) -> weekly.WeeklyReport:
    wire = {
        "customer_id": "acme", "plan": "pro", "calls": 3 if calls else 0, "tasks": 1,
        "input_tokens": 1, "output_tokens": 1, "cost_usd": Decimal("0.1") + Decimal("0.2"),
        "revenue_usd": Decimal(3), "margin_usd": Decimal("2.7"), "margin_pct": Decimal(90),
        "status": "healthy", "unpriced_calls": 0,
    }  # fmt: skip
    sections: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in weekly.SECTIONS}
    sections["top_customers"] = [wire] if calls else []
    sections["plans"] = [plan("pro", "90.00", "60")]
    return weekly.WeeklyReport(
        since=SINCE,
        until=UNTIL,
        totals=dict(wire, customer_id="TOTAL", plan=""),
        sections=sections,
        daily=[day("2026-11-02", "chat", "0.3")] if calls else [],
        all_customers=[wire],
    )


@pytest.mark.parametrize("calls", [True, False])
def test_page_is_self_contained_and_every_chart_is_described(calls) -> None:
    html = render_html(report(calls))
    # No URL of any kind: nothing to fetch, nothing a mail client would block.
    for needle in ("http:", "https:", "//", "url(", "@import", "<script", "<link", "src="):
        assert needle not in html.replace("</", ""), needle
    chart = Chart(html)
    if calls:
        assert chart.svg_titles == [
            "AI cost vs revenue per customer",
            "Gross margin by plan",
            "Daily spend by feature",
        ]
        assert len(chart.descs) == 3 and all(chart.descs)
        assert "acme: cost 0.3 USD, revenue 3.00 USD" in chart.descs[0]
        assert "0.30000000000000004" not in html
    else:
        assert "No customer made calls in this period" in html
        assert "No calls in this period" in html
