"""`report weekly --html FILE`: one self-contained page (inline CSS and SVG, no scripts, no
network), so it opens offline, can be mailed, and renders the same in any browser.

Charts: cost vs revenue per customer, gross margin by plan, daily spend by feature. Numbers in
labels are the exact strings of the report; floats are used for pixel geometry only.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from html import escape
from typing import Any

from llm_margin.processor.reports import weekly
from llm_margin.processor.reports.money import cents_str, money_str, to_decimal

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


TOP_CUSTOMERS = weekly.TOP_CUSTOMERS
# Features drawn in their own colour; more are summed into one "other features" band, since
# colours would repeat past the palette.
MAX_FEATURES = len(PALETTE) - 1
NAME_CHARS = 22
# A non-zero bar under this share of the largest is hard to see: the chart says so.
SMALL_SHARE = 0.01


def _num(value: Any) -> float:
    return float(to_decimal(value)) if value not in (None, "") else 0.0


def _short(name: str) -> str:
    """A name cut to fit the chart's label column; the full name is the label's tooltip."""
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "\u2026"


def _name_text(name: str, attrs: str) -> str:
    return f"<text {attrs}>{escape(_short(name))}<title>{escape(name)}</title></text>"


def customer_groups(
    top: list[dict[str, Any]], everyone: list[dict[str, Any]]
) -> list[tuple[str, str, str]]:
    """(name, cost, revenue) per bar pair, exact strings: the report's top customers as the
    JSON has them, then every other customer summed as one "others" pair, so the chart adds up
    to the page's totals."""
    groups = [(str(r["customer_id"]), str(r["cost_usd"]), str(r["revenue_usd"])) for r in top]
    if not groups:
        return []
    shown = {r["customer_id"] for r in top}
    rest = [r for r in everyone if r["customer_id"] not in shown]
    cost = sum((to_decimal(r["cost_usd"]) for r in rest), Decimal(0))
    revenue = sum((to_decimal(r["revenue_usd"]) for r in rest), Decimal(0))
    if rest and (cost or revenue):
        noun = "customer" if len(rest) == 1 else "customers"
        groups.append((f"others ({len(rest)} {noun})", money_str(cost), cents_str(revenue)))
    return groups


def cost_revenue_chart(top: list[dict[str, Any]], everyone: list[dict[str, Any]]) -> str:
    """Horizontal paired bars per customer: AI cost against revenue for the period.

    ``top``: the report's top customers (wire rows); ``everyone``: all customers' wire rows."""
    groups = customer_groups(top, everyone)
    if not groups:
        return _empty("No customer made calls in this period")
    bar, gap, left = 12, 10, 170
    values = [_num(v) for _, cost, revenue in groups for v in (cost, revenue)]
    scale_max = max(values) or 1.0
    plot = WIDTH - left - 110
    height = len(groups) * (2 * bar + gap) + 40
    desc = "; ".join(f"{n}: cost {c} USD, revenue {r} USD" for n, c, r in groups)
    parts = [_svg_open(height, "chart-cost-revenue", "AI cost vs revenue per customer", desc)]
    y = 10
    for name, cost, revenue in groups:
        parts.append(_name_text(name, f'x="{left - 8}" y="{y + bar + 4}" text-anchor="end"'))
        for series, value, color, dy in (
            ("revenue", revenue, REVENUE, 0),
            ("cost", cost, COST, bar),
        ):
            width = _bar_length(plot, _num(value), scale_max)
            text = f"{series} {value}"
            parts.append(
                f'<rect class="bar" {_data(series, name, value)} x="{left}" y="{y + dy}" '
                f'width="{width:.1f}" height="{bar - 1}" fill="{color}">'
                f"<title>{escape(name)}: {escape(text)} USD</title></rect>"
            )
            parts.append(
                f'<text x="{left + width + 4:.1f}" y="{y + dy + bar - 2}" class="small">'
                f"{escape(text)}</text>"
            )
        y += 2 * bar + gap
    parts.append(_legend(((REVENUE, "revenue (pro-rated)"), (COST, "AI cost")), height - 18))
    parts.append("</svg>")
    return "".join(parts) + _small_note(values, scale_max)


def _bar_length(plot: float, value: float, scale_max: float) -> float:
    # Zero draws nothing; any other amount at least 1px, so it is seen to exist.
    return 0.0 if value <= 0 else max(plot * value / scale_max, 1.0)


def _small_note(values: list[float], scale_max: float) -> str:
    small = [v for v in values if 0 < v < scale_max * SMALL_SHARE]
    if not small:
        return ""
    return (
        f'<p class="note">{len(small)} of these bars are under 1% of the largest and hard to '
        "see at this scale: their amounts are printed beside them.</p>"
    )


def margin_by_plan_chart(rows: list[dict[str, Any]]) -> str:
    """Vertical bars of gross margin % per plan around a zero line, target marked.

    A plan without revenue has no margin: it is shown as "n/a" at the zero line, not left out
    (its AI cost is carried by nobody)."""
    if not rows:
        return _empty("No plans in this period")
    height, top, bottom, left = 260, 20, 50, 50
    values = [None if r.get("margin_pct") is None else _num(r["margin_pct"]) for r in rows]
    drawn = [v for v in values if v is not None]
    high, low = max([100.0, *drawn]), min([0.0, *drawn])
    plot_h = height - top - bottom

    def y_of(v: float) -> float:
        return top + (high - v) * plot_h / (high - low)

    step = (WIDTH - left - 20) / len(rows)
    desc = "; ".join(
        f"{r['plan']}: "
        + (
            "no revenue, margin n/a"
            if r.get("margin_pct") is None
            else f"{r['margin_pct']}% (target {r.get('target_margin_pct') or '-'}%)"
        )
        + f", AI cost {r.get('cost_usd')} USD"
        for r in rows
    )
    parts = [_svg_open(height, "chart-margin-plan", "Gross margin by plan", desc)]
    zero = y_of(0.0)
    parts.append(
        f'<line x1="{left}" x2="{WIDTH - 10}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#333"/>'
    )
    for i, row in enumerate(rows):
        value, plan = values[i], str(row["plan"])
        x = left + i * step + step * 0.2
        w = step * 0.6
        if value is None:
            parts.append(
                f'<rect class="bar" {_data("margin_pct", plan, "n/a")} x="{x:.1f}" '
                f'y="{zero:.1f}" width="{w:.1f}" height="0" fill="none">'
                f"<title>{escape(plan)}: no revenue, margin n/a (AI cost "
                f"{escape(str(row.get('cost_usd')))} USD)</title></rect>"
            )
            label, label_y = "n/a (no revenue)", zero - 4
        else:
            y1, y2 = sorted((y_of(value), zero))
            target = row.get("target_margin_pct")
            color = (
                "#e15759"
                if value < 0
                else ("#59a14f" if target is None or value >= _num(target) else "#edc948")
            )
            parts.append(
                f'<rect class="bar" {_data("margin_pct", plan, str(row["margin_pct"]))} '
                f'x="{x:.1f}" y="{y1:.1f}" width="{w:.1f}" '
                f'height="{max(y2 - y1, 1.0):.1f}" fill="{color}">'
                f"<title>{escape(plan)}: {escape(str(row['margin_pct']))}%</title></rect>"
            )
            if target is not None:
                ty = y_of(_num(target))
                parts.append(
                    f'<line x1="{x - 4:.1f}" x2="{x + w + 4:.1f}" y1="{ty:.1f}" y2="{ty:.1f}" '
                    f'stroke="#333" stroke-dasharray="4 3"><title>target {escape(str(target))}%'
                    "</title></line>"
                )
            label, label_y = f"{row['margin_pct']}%", y1 - 4
        parts.append(
            f'<text x="{x + w / 2:.1f}" y="{label_y:.1f}" text-anchor="middle" class="small">'
            f"{escape(label)}</text>"
        )
        parts.append(
            _name_text(plan, f'x="{x + w / 2:.1f}" y="{height - bottom + 18}" text-anchor="middle"')
        )
    parts.append(_legend((("#333", "dashed: target margin"),), height - 12))
    parts.append("</svg>")
    return "".join(parts)


def _utc(instant: datetime) -> datetime:
    """Naive UTC (a naive instant already is: the report's periods are UTC)."""
    return (
        instant if instant.tzinfo is None else instant.astimezone(timezone.utc).replace(tzinfo=None)
    )


def period_days(since: datetime, until: datetime) -> list[date]:
    """Every UTC day [since, until) touches, first and last included even when partial."""
    since, until = _utc(since), _utc(until)
    last = (until - timedelta(microseconds=1)).date()
    day, days = since.date(), []
    while day <= last:
        days.append(day)
        day += timedelta(days=1)
    return days


def daily_series(
    rows: list[dict[str, Any]], days: list[date], max_features: int = MAX_FEATURES
) -> tuple[list[str], dict[str, dict[str, Decimal]]]:
    """(features in stacking order, {day: {feature: exact cost}}) with every day present.

    Features rank by the period's cost; past ``max_features`` the rest are one band."""
    totals: dict[str, Decimal] = {}
    for row in rows:
        totals[row["feature"]] = totals.get(row["feature"], Decimal(0)) + to_decimal(
            row["cost_usd"]
        )
    ranked = sorted(totals, key=lambda f: (-totals[f], f))
    if len(ranked) > max_features + 1:
        kept = ranked[:max_features]
        other = f"other features ({len(ranked) - max_features})"
        features = [*kept, other]
    else:
        kept, other, features = ranked, "", ranked
    by_day: dict[str, dict[str, Decimal]] = {d.isoformat(): {} for d in days}
    for row in rows:
        day = str(row["day"])[:10]
        feature = row["feature"] if row["feature"] in kept else other
        spend = by_day.setdefault(day, {})
        spend[feature] = spend.get(feature, Decimal(0)) + to_decimal(row["cost_usd"])
    return features, by_day


def daily_feature_chart(rows: list[dict[str, Any]], since: datetime, until: datetime) -> str:
    """Stacked daily bars of AI spend, one colour per feature, one bar per UTC day."""
    if not rows:
        return _empty("No calls in this period")
    since, until = _utc(since), _utc(until)
    features, days = daily_series(rows, period_days(since, until))
    colors = {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(features)}
    height, top, bottom, left = 280, 20, 70, 60
    plot_h = height - top - bottom
    day_totals = {d: sum(s.values(), Decimal(0)) for d, s in days.items()}
    peak_exact = max(day_totals.values())
    peak = float(peak_exact) or 1.0
    step = (WIDTH - left - 20) / len(days)
    every = -(-len(days) // 16)  # day labels that fit side by side
    first, last = min(days), max(days)
    # The period's first and last UTC days are partial unless it starts/ends at midnight.
    partial: dict[str, str] = {}
    if since.time() != time(0):
        partial[first] = f"from {since:%H:%M} UTC"
    if until.time() != time(0):
        partial[last] = ", ".join(filter(None, (partial.get(last), f"until {until:%H:%M} UTC")))
    desc = "; ".join(
        f"{d}{' (partial, ' + str(partial[d]) + ')' if partial.get(d) else ''}: total "
        f"{money_str(day_totals[d])} USD"
        + "".join(f", {f} {money_str(v)}" for f, v in s.items() if v)
        for d, s in days.items()
    )
    parts = [_svg_open(height, "chart-daily-feature", "Daily spend by feature", desc)]
    parts.append(
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="small">'
        f"{escape(money_str(peak_exact))}</text>"
    )
    parts.append(
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" class="small">0</text>'
    )
    for i, (day, spend) in enumerate(days.items()):
        x = left + i * step + step * 0.15
        w = step * 0.7
        base = top + plot_h
        for feature in features:
            value = spend.get(feature, Decimal(0))
            if value <= 0:
                continue
            h = max(plot_h * float(value) / peak, 1.0)
            base -= h
            parts.append(
                f'<rect class="bar" {_data(feature, day, money_str(value))} x="{x:.1f}" '
                f'y="{base:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{colors[feature]}">'
                f"<title>{escape(day)} {escape(feature)}: {money_str(value)} USD</title></rect>"
            )
        note = f", partial day {partial[day]}" if partial.get(day) else ""
        shown = escape(day[5:]) if i % every == 0 else ""
        parts.append(
            f'<text x="{x + w / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
            f'class="small" {_data("total", day, money_str(day_totals[day]))}>{shown}'
            f"<title>{escape(day)}: total {money_str(day_totals[day])} USD{note}</title></text>"
        )
    parts.append(_legend(tuple((colors[f], f) for f in features), height - 20))
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(height: int, css_id: str, title: str, desc: str) -> str:
    # No xmlns: the HTML parser puts inline <svg> in the SVG namespace itself, and the page
    # then holds no URL at all (nothing a mail client or proxy could mistake for a fetch).
    # <desc> is the chart's text alternative: every value it draws, as text.
    return (
        f'<svg id="{css_id}" class="chart" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f"<desc>{escape(desc)}</desc>"
    )


def _data(series: str, label: str, value: str) -> str:
    """The exact value a mark stands for, as attributes (what tests and scrapers read)."""
    return (
        f'data-series="{escape(series)}" data-label="{escape(label)}" data-value="{escape(value)}"'
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
.empty{color:#888}.note{color:#555;font-size:12px}
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
    everyone = [weekly.customers.to_wire(r) for r in report.all_customers]
    sections = "".join(
        f"<h2>{escape(title)}</h2>{_table(doc[name], weekly.SECTION_COLUMNS[name])}"
        for name, title in weekly.page_sections(report.customer)
    )
    # One customer's page has no margin by plan: a plan's margin is many customers'.
    plans = (
        f"<h2>Gross margin by plan</h2>{margin_by_plan_chart(doc['plans'])}"
        if "plans" in doc
        else ""
    )
    title = weekly.page_title(report.since, report.until, report.customer)
    period = f"{report.since:%Y-%m-%d %H:%M} .. {report.until:%Y-%m-%d %H:%M} UTC"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} {escape(period)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p>{escape(period)}</p>{kpis}"
        f"<h2>AI cost vs revenue per customer</h2>"
        f"{cost_revenue_chart(doc['top_customers'], everyone)}"
        f"{plans}"
        f"<h2>Daily spend by feature</h2>{daily_feature_chart(doc['daily'], report.since, report.until)}"
        f"{sections}"
        '<p class="empty">Generated by llm-margin. Money is exact in the tables; chart '
        "geometry is approximate.</p></body></html>\n"
    )
