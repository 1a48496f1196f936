"""The weekly HTML page with hostile ids: every id, plan, feature, route and model name lands
in the page as text (in HTML text, SVG text, attributes), never as markup. The page has no
script, so there is no inline-JSON context to break out of.

Parsed with the standard library's HTML parser: the elements the page is built of are the
only ones, and each hostile string reads back exactly as it went in."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from llm_margin.processor.reports import weekly
from llm_margin.processor.reports.html import render_html

HOSTILE = (
    "</script><script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "'><svg onload=alert(3)>",
    "</text></svg><iframe src=javascript:alert(4)>",
    "<!--",
    "]]><title>x</title>&amp;\u2028\u2029",
)
PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "div", "b", "svg",
    "text", "rect", "line", "table", "thead", "tbody", "tr", "th", "td", "desc",
}  # fmt: skip


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.texts: list[str] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)
        self.texts += [value for _, value in attrs if value]

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def hostile_report(value: str) -> weekly.WeeklyReport:
    money = {"cost_usd": Decimal("1.5"), "revenue_usd": Decimal(3), "margin_usd": Decimal("1.5")}
    customer = {
        "customer_id": value, "plan": value, "calls": 2, "tasks": 1, "input_tokens": 1,
        "output_tokens": 1, **money, "margin_pct": Decimal(50), "status": "healthy",
        "unpriced_calls": 0,
    }  # fmt: skip
    sections = {
        "top_customers": [customer],
        "features": [{"feature": value, "tasks": 1, "cost_usd": Decimal(1)}],
        "routes": [{"original_route": value, "tasks": 1, "cost_usd": Decimal(1)}],
        "plans": [{"plan": value, "margin_pct": Decimal(50), "target_margin_pct": Decimal(40)}],
        "near_budget": [{"scope": "customer", "scope_id": value, "used_pct": Decimal(90)}],
        "runaway": [{"customer_id": value, "workspace_id": value, "cost_usd": Decimal(1)}],
        "unpriced": [{"kind": "unpriced", "provider": value, "model": value, "calls": 1}],
    }
    return weekly.WeeklyReport(
        since=datetime(2026, 11, 1),
        until=datetime(2026, 11, 8),
        totals=dict(customer, customer_id="TOTAL", plan=""),
        sections=sections,
        daily=[{"day": "2026-11-02", "feature": value, "cost_usd": Decimal(1)}],
        all_customers=[customer],
    )


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_ids_are_text_not_markup(value: str) -> None:
    page = Page()
    page.feed(render_html(hostile_report(value)))
    page.close()
    assert page.tags <= PAGE_TAGS, page.tags - PAGE_TAGS
    assert not {a for a in page.attrs if a.startswith("on")}
    assert not page.comments
    # Every place an id is shown (customer, plan, feature, route, model, scope id, legend).
    assert page.texts.count(value) >= 10, page.texts


def test_page_has_no_script_context() -> None:
    html = render_html(hostile_report(HOSTILE[0]))
    assert "<script" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
