"""The weekly page's charts show the numbers `report weekly --format json` prints for the same
period: a real store with known calls, both commands through the CLI, every chart value
parsed from the page and compared with the JSON."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from decimal import Decimal

import pytest
from llm_margin.processor.billing import load_billing_file, store_billing
from llm_margin.processor.records import CallRecord
from llm_margin.processor.storage import Store

from tests.chart_marks import Chart
from tests.conftest import bin_path

pytestmark = pytest.mark.integration

BILLING = os.path.join(os.path.dirname(__file__), "..", "..", "demo", "billing.yaml")
# Partial first and last UTC days; calls on 20, 22 and 27 November only.
SINCE, UNTIL = "2026-11-20T06:00:00", "2026-11-27T06:00:00"
LONG = "Extremely Long Customer Name Holdings International Limited"
# (customer, plan on the spans, feature, day, hour, cost). initech (starter, $29/month) spends
# ~1000x the others: its plan is underwater. "trial" has no price: revenue 0, margin n/a.
CALLS = [
    ("initech", "starter", "chat", 20, 7, "5000.1"),
    ("acme", "pro", "chat", 20, 8, "0.1"),
    ("acme", "pro", "search", 20, 9, "0.2"),
    ("globex", "enterprise", "summarize", 22, 12, "3"),
    ("hooli", "starter", "chat", 22, 23, "2.000001"),
    ("", "", "chat", 27, 5, "0.7"),  # unattributed
    (LONG, "trial", "extract", 27, 5, "1.5"),
    *((f"trial-{i:02}", "trial", f"feature-{i:02}", 22, i, f"0.{i + 1}") for i in range(9)),
]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("weekly")
    data_dir = str(tmp / "data")
    store = Store.open(data_dir=data_dir)
    store_billing(store, *load_billing_file(BILLING))
    records = [
        CallRecord(
            ts=datetime(2026, 11, day, hour, 30),
            trace_id=f"{i + 1:032x}",
            span_id=f"{i + 1:016x}",
            task_id=f"task{i}",
            customer_id=customer or "(unattributed)",
            plan=plan,
            feature=feature,
            route="openai/gpt-4o",
            cost_usd=Decimal(cost),
            priced=True,
            version=1,
        )
        for i, (customer, plan, feature, day, hour, cost) in enumerate(CALLS)
    ]
    store.insert_calls(records)
    store.link_tasks({c.task_id for c in records})
    store.close()
    page = tmp / "weekly.html"
    base = [bin_path("llm-margin"), "report", "weekly", "--data-dir", data_dir]
    base += ["--since", SINCE, "--until", UNTIL]
    out = {}
    for name, args in (("html", ["--html", str(page)]), ("json", ["--format", "json"])):
        result = subprocess.run([*base, *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        out[name] = result.stdout
    return Chart(page.read_text()), json.loads(out["json"]), page.read_text()


def chart_part(html: str, chart_id: str) -> Chart:
    start = html.index(f'<svg id="{chart_id}"')
    return Chart(html[start : html.index("</svg>", start) + 6])


def test_cost_revenue_chart_is_the_json_top_customers_plus_others(reports) -> None:
    _, doc, html = reports
    chart = chart_part(html, "chart-cost-revenue")
    top = doc["top_customers"]
    assert len(top) == 10
    expected = []
    for row in top:
        expected += [
            ("revenue", row["customer_id"], row["revenue_usd"]),
            ("cost", row["customer_id"], row["cost_usd"]),
        ]
    assert chart.values()[: len(expected)] == expected
    # The rest summed: with the top ten it is the report's totals, to the last digit.
    others = chart.values()[len(expected) :]
    assert [(s, label.split(" (")[0]) for s, label, _ in others] == [
        ("revenue", "others"),
        ("cost", "others"),
    ]
    for series, (_, _, value) in zip(("revenue_usd", "cost_usd"), others, strict=True):
        shown = sum((Decimal(r[series]) for r in top), Decimal(0)) + Decimal(value)
        assert shown == Decimal(doc["totals"][series]), series
    assert "(unattributed)" in [r["customer_id"] for r in top]
    # initech is ~1000x the rest: the chart says small bars are hard to see.
    assert "under 1% of the largest" in html
    # The long name is cut on the chart, whole in its tooltip.
    assert LONG in chart.tooltips and LONG not in chart.texts


def test_margin_chart_is_the_json_plans(reports) -> None:
    _, doc, html = reports
    chart = chart_part(html, "chart-margin-plan")
    assert [(label, value) for _, label, value in chart.values()] == [
        (row["plan"], row["margin_pct"] or "n/a") for row in doc["plans"]
    ]
    plans = {row["plan"]: row for row in doc["plans"]}
    assert Decimal(plans["starter"]["margin_pct"]) < 0 and plans["trial"]["margin_pct"] is None


def test_daily_chart_is_the_json_daily_trend_for_every_utc_day(reports) -> None:
    _, doc, html = reports
    chart = chart_part(html, "chart-daily-feature")
    per_day: dict[str, Decimal] = {}
    for row in doc["daily"]:
        per_day[row["day"]] = per_day.get(row["day"], Decimal(0)) + Decimal(row["cost_usd"])
    days = [f"2026-11-{d}" for d in range(20, 28)]
    assert [(label, Decimal(v)) for _, label, v in chart.values("text")] == [
        (d, per_day.get(d, Decimal(0))) for d in days
    ]
    # Stacks add up to the day's total, and the days to the report's total cost.
    for _, label, total in chart.values("text"):
        stacked = sum((Decimal(v) for _, d, v in chart.values() if d == label), Decimal(0))
        assert stacked == Decimal(total), label
    assert sum(per_day.values(), Decimal(0)) == Decimal(doc["totals"]["cost_usd"])
    # Features drawn on their own carry the JSON's exact value; 13 features: 9 + one band.
    bands = {s for s, _, _ in chart.values()}
    assert len(bands) == 10 and "other features (4)" in bands
    json_values = {(r["feature"], r["day"]): r["cost_usd"] for r in doc["daily"]}
    for series, label, value in chart.values():
        if not series.startswith("other features"):
            assert json_values[(series, label)] == value
