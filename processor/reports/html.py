"""`report weekly --html FILE`: one self-contained page (inline CSS and SVG, no scripts, no
network), so it opens offline, can be mailed, and renders the same in any browser.

Charts: cost vs revenue per customer, gross margin by plan, daily spend by feature. Numbers in
labels are the exact strings of the report; floats are used for pixel geometry only.
"""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal
from html import escape
from typing import Any

from llm_margin.processor.reports import weekly
from llm_margin.processor.reports.money import cents_str, to_decimal

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
COST, REVENUE = "#e15759", "#4e79a7"
WIDTH = 760


def _num(value: Any) -> float:
    return float(to_decimal(value)) if value not in (None, "") else 0.0


def _label(value: Any, places: str = "0.01") -> str:
    return format(to_decimal(value).quantize(Decimal(places)), "f") if value is not None else "-"


def cost_revenue_chart(rows: list[dict[str, Any]]) -> str:
    """Horizontal paired bars per customer: AI cost against revenue for the period."""
    rows = [r for r in rows if r["customer_id"] != "TOTAL"][:15]
    if not rows:
        return _empty("No customers in this period")
    bar, gap, left = 12, 10, 150
    scale_max = max(max(_num(r["cost_usd"]), _num(r["revenue_usd"])) for r in rows) or 1.0
    plot = WIDTH - left - 110
    height = len(rows) * (2 * bar + gap) + 40
    parts = [_svg_open(height, "chart-cost-revenue", "AI cost vs revenue per customer")]
    y = 10
    for row in rows:
        cost, revenue = _num(row["cost_usd"]), _num(row["revenue_usd"])
        parts.append(
            f'<text x="{left - 8}" y="{y + bar + 4}" text-anchor="end">'
            f"{escape(str(row['customer_id']))}</text>"
        )
        for value, color, text, dy in (
            (revenue, REVENUE, f"revenue {_label(row['revenue_usd'])}", 0),
            (cost, COST, f"cost {_label(row['cost_usd'])}", bar),
        ):
            width = max(plot * value / scale_max, 1.0)
            parts.append(
                f'<rect class="bar" x="{left}" y="{y + dy}" width="{width:.1f}" '
                f'height="{bar - 1}" fill="{color}"><title>{escape(text)}</title></rect>'
            )
            parts.append(
                f'<text x="{left + width + 4:.1f}" y="{y + dy + bar - 2}" class="small">'
                f"{escape(text)}</text>"
            )
        y += 2 * bar + gap
    parts.append(_legend(((REVENUE, "revenue (pro-rated)"), (COST, "AI cost")), height - 18))
    parts.append("</svg>")
    return "".join(parts)


def margin_by_plan_chart(rows: list[dict[str, Any]]) -> str:
    """Vertical bars of gross margin % per plan around a zero line, target marked."""
    rows = [r for r in rows if r.get("margin_pct") is not None]
    if not rows:
        return _empty("No plan revenue in this period")
    height, top, bottom, left = 260, 20, 50, 50
    values = [_num(r["margin_pct"]) for r in rows]
    high, low = max(100.0, *values), min(0.0, *values)
    plot_h = height - top - bottom

    def y_of(v: float) -> float:
        return top + (high - v) * plot_h / (high - low)

    step = (WIDTH - left - 20) / len(rows)
    parts = [_svg_open(height, "chart-margin-plan", "Gross margin by plan")]
    zero = y_of(0.0)
    parts.append(
        f'<line x1="{left}" x2="{WIDTH - 10}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#333"/>'
    )
    for i, row in enumerate(rows):
        value = values[i]
        x = left + i * step + step * 0.2
        w = step * 0.6
        y1, y2 = sorted((y_of(value), zero))
        color = (
            "#59a14f"
            if value >= _num(row.get("target_margin_pct") or 0)
            else ("#edc948" if value >= 0 else "#e15759")
        )
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y1:.1f}" width="{w:.1f}" '
            f'height="{max(y2 - y1, 1.0):.1f}" fill="{color}">'
            f"<title>{escape(str(row['plan']))}: {_label(row['margin_pct'])}%</title></rect>"
        )
        if row.get("target_margin_pct") is not None:
            ty = y_of(_num(row["target_margin_pct"]))
            parts.append(
                f'<line x1="{x - 4:.1f}" x2="{x + w + 4:.1f}" y1="{ty:.1f}" y2="{ty:.1f}" '
                'stroke="#333" stroke-dasharray="4 3"><title>target</title></line>'
            )
        parts.append(
            f'<text x="{x + w / 2:.1f}" y="{y1 - 4:.1f}" text-anchor="middle" class="small">'
            f"{_label(row['margin_pct'])}%</text>"
        )
        parts.append(
            f'<text x="{x + w / 2:.1f}" y="{height - bottom + 18}" text-anchor="middle">'
            f"{escape(str(row['plan']))}</text>"
        )
    parts.append(_legend((("#333", "dashed: target margin"),), height - 12))
    parts.append("</svg>")
    return "".join(parts)


def daily_feature_chart(rows: list[dict[str, Any]]) -> str:
    """Stacked daily bars of AI spend, one colour per feature."""
    if not rows:
        return _empty("No calls in this period")
    days: OrderedDict[str, dict[str, float]] = OrderedDict()
    features: list[str] = []
    for row in rows:
        day = str(row["day"])[:10]
        days.setdefault(day, {})[row["feature"]] = _num(row["cost_usd"])
        if row["feature"] not in features:
            features.append(row["feature"])
    colors = {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(features)}
    height, top, bottom, left = 280, 20, 70, 60
    plot_h = height - top - bottom
    peak = max(sum(v.values()) for v in days.values()) or 1.0
    step = (WIDTH - left - 20) / len(days)
    parts = [_svg_open(height, "chart-daily-feature", "Daily spend by feature")]
    parts.append(
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="small">{peak:.2f}</text>'
    )
    parts.append(
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" class="small">0</text>'
    )
    for i, (day, spend) in enumerate(days.items()):
        x = left + i * step + step * 0.15
        w = step * 0.7
        base = top + plot_h
        for feature in features:
            value = spend.get(feature, 0.0)
            if value <= 0:
                continue
            h = max(plot_h * value / peak, 1.0)
            base -= h
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{base:.1f}" width="{w:.1f}" height="{h:.1f}" '
                f'fill="{colors[feature]}"><title>{escape(day)} {escape(feature)}: '
                f"{value:.4f}</title></rect>"
            )
        parts.append(
            f'<text x="{x + w / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
            f'class="small">{escape(day[5:])}</text>'
        )
    parts.append(_legend(tuple((colors[f], f) for f in features), height - 20))
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(height: int, css_id: str, title: str) -> str:
    return (
        f'<svg id="{css_id}" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )


def _legend(items: tuple[tuple[str, str], ...], y: float) -> str:
    parts, x = [], 60
    for color, text in items:
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{x + 14}" y="{y}" class="small">{escape(text)}</text>')
        x += 24 + 7 * len(text)
    return "".join(parts)


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    if not rows:
        return _empty("none")
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape('-' if r.get(c) in (None, '') else str(r.get(c)))}</td>" for c in columns
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:980px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 8px;border-bottom:1px solid #eee;
text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f6f6f6}
svg text{font:12px system-ui,sans-serif;fill:#222}svg text.small{font-size:10px}
.kpi{display:inline-block;margin-right:24px}.kpi b{font-size:20px;display:block}
.empty{color:#888}
"""


def render_html(report: weekly.WeeklyReport) -> str:
    totals = weekly.customers.to_wire(report.totals)
    doc = weekly.to_document(report)
    # Headline cost in cents, as people read a bill; the exact amount is its tooltip and in
    # the tables below.
    kpis = "".join(
        f'<div class="kpi" title="{escape(str(exact))}"><b>{escape(str(shown))}</b>'
        f"{escape(k)}</div>"
        for k, shown, exact in (
            ("AI cost (USD)", cents_str(totals["cost_usd"]), totals["cost_usd"]),
            ("revenue (USD)", totals["revenue_usd"], totals["revenue_usd"]),
            ("gross margin %", totals["margin_pct"] or "-", totals["margin_pct"] or "-"),
            ("calls", totals["calls"], totals["calls"]),
            ("tasks", totals["tasks"], totals["tasks"]),
        )
    )
    customers_wire = [weekly.customers.to_wire(r) for r in report.all_customers if r["calls"]]
    sections = "".join(
        f"<h2>{escape(title)}</h2>{_table(doc[name], weekly.SECTION_COLUMNS[name])}"
        for name, title in weekly.SECTIONS
    )
    title = weekly.page_title(report.since, report.until)
    period = f"{report.since:%Y-%m-%d %H:%M} .. {report.until:%Y-%m-%d %H:%M} UTC"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} {escape(period)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p>{escape(period)}</p>{kpis}"
        f"<h2>AI cost vs revenue per customer</h2>{cost_revenue_chart(customers_wire)}"
        f"<h2>Gross margin by plan</h2>{margin_by_plan_chart(doc['plans'])}"
        f"<h2>Daily spend by feature</h2>{daily_feature_chart(doc['daily'])}"
        f"{sections}"
        '<p class="empty">Generated by llm-margin. Money is exact in the tables; chart '
        "geometry is approximate.</p></body></html>\n"
    )
