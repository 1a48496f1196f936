"""`report weekly`: the founders' page, assembled from the other views.

Top customers by AI cost, cost per successful task by feature, fallback rate by route, gross
margin by plan, customers and workspaces close to their budget caps, runaway workspaces, and
the spend nobody's margin carries (unpriced / unattributed). Also the daily trend for charts.

`report weekly --customer ID` narrows the page to one customer: every section holds only that
customer's rows (as `report VIEW --customer ID` does), the titles name it, and there is no
section by plan (a plan's margin is many customers').
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from llm_margin.processor.reports import customers
from llm_margin.processor.reports.parallel import gather, read_only
from llm_margin.processor.reports.terminal import terminal_text
from llm_margin.processor.reports.values import json_value
from llm_margin.processor.reports.views import VIEWS, to_wire, view_rows

TOP_CUSTOMERS = 10
# A budget row is "close" once this share of the allowance is used, or projected for the month.
NEAR_USED_PCT = Decimal(50)
NEAR_PROJECTED_PCT = Decimal(80)

SECTIONS: tuple[tuple[str, str], ...] = (
    ("top_customers", "Top customers by AI cost"),
    ("features", "Cost per successful task by feature"),
    ("routes", "Fallback rate by route"),
    ("plans", "Gross margin by plan"),
    ("near_budget", "Close to budget caps (month to date / projected)"),
    ("runaway", "Runaway workspaces"),
    ("unpriced", "Unpriced and unattributed spend"),
)
# One customer's page: "Top customers" would be a list of one.
CUSTOMER_SECTION_TITLES = {"top_customers": "AI cost and margin"}


@dataclass
class WeeklyReport:
    since: datetime
    until: datetime
    totals: dict[str, Any]
    sections: dict[str, list[dict[str, Any]]]
    daily: list[dict[str, Any]]
    all_customers: list[dict[str, Any]]
    # The one customer the page is narrowed to (`--customer`), else None.
    customer: str | None = None


def page_title(since: datetime, until: datetime, customer: str | None = None) -> str:
    """The page's name for its period: `report weekly` takes any --since/--until. A period
    within a minute of whole days counts as whole days (`--until now` adds a few seconds).
    A page narrowed to one customer says which."""
    span = until - since
    days = round(span / timedelta(days=1))
    if days < 1 or abs(span - timedelta(days=days)) > timedelta(minutes=1):
        title = "AI margin"
    else:
        title = {1: "Daily AI margin", 7: "Weekly AI margin"}.get(
            days, f"AI margin over {days} days"
        )
    return title if customer is None else f"{title} for customer {customer}"


def page_sections(customer: str | None = None) -> tuple[tuple[str, str], ...]:
    """The page's (section, title) pairs: all of SECTIONS, or for one customer's page all but
    the plans, their titles naming the customer."""
    if customer is None:
        return SECTIONS
    return tuple(
        (name, f"{CUSTOMER_SECTION_TITLES.get(name, title)} for customer {customer}")
        for name, title in SECTIONS
        if name != "plans"
    )


def near_budget(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Budget rows at or past the soft thresholds, most used first."""

    def close(row: dict[str, Any]) -> bool:
        used, projected = row.get("used_pct"), row.get("projected_pct")
        return (used is not None and used >= NEAR_USED_PCT) or (
            projected is not None and projected >= NEAR_PROJECTED_PCT
        )

    return [r for r in rows if close(r)]


def build_weekly(
    reader: Any, since: datetime, until: datetime, customer: str | None = None
) -> WeeklyReport:
    """Every section's rows, or one customer's (``customer``); the queries run at the same
    time on read-only clients."""
    read = read_only(reader)

    def view(name: str, **options: Any) -> Any:
        return lambda: view_rows(read, VIEWS[name], since, until, customer=customer, **options)

    jobs = {
        "customers": lambda: customers.customer_rows(read, since, until, customer or ""),
        "features": view("features"),
        "routes": view("routes"),
        "plans": view("plans"),
        "budgets": view("budgets"),
        "runaway": view("runaway", limit=5),
        "unpriced": view("unpriced"),
        "daily": view("daily"),
    }
    if customer is not None:
        del jobs["plans"]  # not one customer's (see page_sections)
    results = gather(jobs, getattr(read, "read_concurrency", 1))
    customer_rows = results["customers"]
    sections = {
        "top_customers": [r for r in customer_rows if r["calls"] > 0][:TOP_CUSTOMERS],
        "features": results["features"],
        "routes": results["routes"],
        "plans": results.get("plans", []),
        "near_budget": near_budget(results["budgets"]),
        "runaway": results["runaway"],
        "unpriced": results["unpriced"],
    }
    return WeeklyReport(
        since=since,
        until=until,
        totals=customers.total_row(customer_rows, customer),
        sections=sections,
        daily=results["daily"],
        all_customers=customer_rows,
        customer=customer,
    )


SECTION_COLUMNS: dict[str, tuple[str, ...]] = {
    "top_customers": (
        "customer_id",
        "plan",
        "calls",
        "tasks",
        "cost_usd",
        "revenue_usd",
        "margin_pct",
        "status",
    ),
    "features": (
        "feature",
        "tasks",
        "successful_tasks",
        "cost_usd",
        "cost_per_successful_task_usd",
        "wasted_cost_usd",
    ),
    "routes": ("original_route", "tasks", "fallback_rate_pct", "fallback_cost_usd", "cost_usd"),
    "plans": (
        "plan",
        "active_customers",
        "cost_usd",
        "revenue_usd",
        "margin_pct",
        "target_margin_pct",
        "cost_per_active_customer_usd",
    ),
    "near_budget": (
        "scope",
        "scope_id",
        # a workspace id alone may be any customer's ("default")
        "customer_id",
        "allowance_usd",
        "spent_usd",
        "used_pct",
        "projected_pct",
    ),
    "runaway": (
        "customer_id",
        "workspace_id",
        "cost_usd",
        "spend_growth_pct",
        "attempts_per_task",
        "loop_tasks",
    ),
    "unpriced": ("kind", "provider", "model", "calls", "cost_usd"),
}


def section_wire(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if name == "top_customers":
        return [customers.to_wire(r) for r in rows]
    return [to_wire(r) for r in rows]


def to_document(report: WeeklyReport) -> dict[str, Any]:
    """The JSON shape of the weekly page; one customer's page also names it (`customer`) and
    has no `plans`."""
    only = {} if report.customer is None else {"customer": report.customer}
    return {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        **only,
        "totals": customers.to_wire(report.totals),
        **{
            name: section_wire(name, report.sections[name])
            for name, _ in page_sections(report.customer)
        },
        "daily": [to_wire(r) for r in report.daily],
    }


def weekly_text(
    reader: Any,
    since: datetime,
    until: datetime,
    fmt: str = "table",
    html_path: str | None = None,
    customer: str | None = None,
) -> str:
    """The weekly page as text (table, csv or json), of every customer or one (``customer``);
    also writes the HTML page if asked.

    One call for the CLI and for embedding (e.g. the end of `llm-margin demo`)."""
    import json

    from llm_margin.processor.reports.render import render

    report = build_weekly(reader, since, until, customer)
    if html_path:
        from llm_margin.processor.reports.html import render_html

        with open(html_path, "w", encoding="utf-8") as handle:
            handle.write(render_html(report))
    if fmt == "json":
        return json.dumps(json_value(to_document(report)), indent=2) + "\n"
    parts = []
    if fmt == "table":
        totals = customers.to_wire(report.totals)
        # The customer id is untrusted text on its way to a terminal.
        title = terminal_text(page_title(since, until, customer))
        parts.append(
            f"{title} {since:%Y-%m-%d %H:%M} .. {until:%Y-%m-%d %H:%M} UTC\n"
            f"AI cost {totals['cost_usd']} USD, revenue {totals['revenue_usd']} USD, "
            f"gross margin {totals['margin_pct'] or '-'}%, {totals['calls']} calls\n"
        )
    for name, title in page_sections(customer):
        rows = section_wire(name, report.sections[name])
        columns = SECTION_COLUMNS[name]
        if fmt == "csv":
            parts.append(f"# {name}\n" + render(rows, columns, "csv"))
        else:
            parts.append(
                render(rows, columns, "table", title=title)
                if rows
                else f"{terminal_text(title)}\n(none)\n"
            )
    if html_path and fmt == "table":
        parts.append(f"HTML page written to {html_path}\n")
    return "\n".join(parts)
