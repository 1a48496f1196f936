"""`report customers`: cost, revenue and gross margin per customer, with an exact TOTAL."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from llm_margin.clickhouse import read_sql
from llm_margin.processor.reports.money import cents_str, exact, money_str, pct_str, to_decimal
from llm_margin.processor.reports.period import naive_utc

COLUMNS = (
    "customer_id",
    "plan",
    "calls",
    "tasks",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "revenue_usd",
    "margin_usd",
    "margin_pct",
    "status",
    "unpriced_calls",
)
MONEY_COLUMNS = ("cost_usd", "margin_usd")


DEFAULT_TARGET_PCT = Decimal(50)


def margin_status(margin_pct: Decimal | None, target_pct: Decimal | None = None) -> str:
    """healthy (at or above the plan's target margin) / thin (0 to target) / underwater (< 0).

    No revenue: n/a. Without a known target (no plan), 50% separates healthy from thin.
    """
    if margin_pct is None:
        return "n/a"
    if margin_pct < 0:
        return "underwater"
    if margin_pct < (DEFAULT_TARGET_PCT if target_pct is None else target_pct):
        return "thin"
    return "healthy"


@exact
def _exact_pct(margin: Decimal, revenue: Decimal) -> Decimal:
    return margin * 100 / revenue


def customer_rows(
    reader: Any, since: datetime, until: datetime, customer: str = ""
) -> list[dict[str, Any]]:
    """Every customer's row, or only ``customer``'s (none for an id with no calls and no
    billing entry)."""
    result = reader.query(
        read_sql("queries/customer_margin.sql"),
        {"since": naive_utc(since), "until": naive_utc(until), "customer": customer},
    )
    rows = []
    for raw in result.dicts():
        margin_pct = None if raw["margin_pct"] is None else to_decimal(raw["margin_pct"])
        target = raw.get("target_margin_pct")
        target_pct = None if target is None else to_decimal(target)
        revenue = to_decimal(raw["revenue_usd"])
        # The status compares the exact margin, not the shown one (rounded to 2 places): a
        # margin of 79.996% is below an 80% target, and -0.004% is a loss.
        exact_pct = None
        if margin_pct is not None and revenue > 0:
            exact_pct = _exact_pct(to_decimal(raw["margin_usd"]), revenue)
        rows.append(
            {
                "customer_id": raw["customer_id"],
                "plan": raw["plan"],
                "calls": int(raw["calls"]),
                "tasks": int(raw["tasks"]),
                "input_tokens": int(raw["input_tokens"]),
                "output_tokens": int(raw["output_tokens"]),
                "cost_usd": to_decimal(raw["cost_usd"]),
                "revenue_usd": to_decimal(raw["revenue_usd"]),
                "margin_usd": to_decimal(raw["margin_usd"]),
                "margin_pct": margin_pct,
                "status": margin_status(exact_pct, target_pct),
                "unpriced_calls": int(raw["unpriced_calls"]),
            }
        )
    return rows


def total_row(rows: list[dict[str, Any]], customer: str | None = None) -> dict[str, Any]:
    """Sum of the rows, exactly (the TOTAL line; not a customer). The total of one
    ``customer``'s report is its row: its status against its plan's target, not the 50% a sum
    of customers is held to."""
    if customer is not None and len(rows) == 1:
        return {**rows[0], "customer_id": "TOTAL", "plan": ""}
    cost = sum((r["cost_usd"] for r in rows), Decimal(0))
    revenue = sum((r["revenue_usd"] for r in rows), Decimal(0))
    margin_pct = (revenue - cost) * 100 / revenue if revenue > 0 else None
    return {
        "customer_id": "TOTAL",
        "plan": "",
        "calls": sum(r["calls"] for r in rows),
        "tasks": sum(r["tasks"] for r in rows),
        "input_tokens": sum(r["input_tokens"] for r in rows),
        "output_tokens": sum(r["output_tokens"] for r in rows),
        "cost_usd": cost,
        "revenue_usd": revenue,
        "margin_usd": revenue - cost,
        "margin_pct": margin_pct,
        "status": margin_status(margin_pct),
        "unpriced_calls": sum(r["unpriced_calls"] for r in rows),
    }


def to_wire(row: dict[str, Any]) -> dict[str, Any]:
    """Money as exact decimal strings (JSON/CSV/table)."""
    out = dict(row)
    for key in MONEY_COLUMNS:
        out[key] = money_str(row[key])
    out["revenue_usd"] = cents_str(row["revenue_usd"])
    out["margin_pct"] = pct_str(row["margin_pct"])
    return out
