"""The table-shaped report views: each runs one SQL file of clickhouse/queries as-is.

A view is data (which SQL, which columns, which are money): the runner binds only the
parameters the SQL declares, keeps money as Decimal, and ``to_wire`` turns rows into exact
strings for table, CSV and JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from llm_margin.clickhouse import read_sql
from llm_margin.processor.reports.money import cents_str, money_str, pct_str
from llm_margin.processor.reports.period import naive_utc

_PARAMETER = re.compile(r"\{(\w+):")
# Filters whose empty value means "no filter": bound so when a caller does not narrow the
# report (every caller but `report --customer`: the budget evaluator, the weekly page, tests).
FILTER_DEFAULTS: Mapping[str, Any] = {"customer": ""}


@dataclass(frozen=True)
class View:
    name: str
    sql: str
    title: str
    columns: tuple[str, ...]
    # Columns summed into the TOTAL footer (table/CSV only); empty: no footer.
    total_columns: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)


VIEWS: dict[str, View] = {
    v.name: v
    for v in (
        View(
            "plans",
            "queries/plan_margin.sql",
            "Gross margin by plan",
            (
                "plan",
                "customers",
                "active_customers",
                "calls",
                "tasks",
                "cost_usd",
                "revenue_usd",
                "margin_usd",
                "margin_pct",
                "target_margin_pct",
                "cost_per_active_customer_usd",
            ),
            (
                "customers",
                "active_customers",
                "calls",
                "tasks",
                "cost_usd",
                "revenue_usd",
                "margin_usd",
            ),
        ),
        View(
            "features",
            "queries/feature_cost.sql",
            "Cost per successful task by feature",
            (
                "feature",
                "tasks",
                "successful_tasks",
                "success_rate_pct",
                "calls",
                "cost_usd",
                "wasted_cost_usd",
                "cost_per_successful_task_usd",
                "active_customers",
            ),
            ("tasks", "successful_tasks", "calls", "cost_usd", "wasted_cost_usd"),
        ),
        View(
            "routes",
            "queries/route_fallbacks.sql",
            "Fallback rate and fallback cost by original route",
            (
                "original_route",
                "tasks",
                "fallback_tasks",
                "fallback_rate_pct",
                "retry_tasks",
                "calls",
                "cost_usd",
                "fallback_cost_usd",
                "failed_cost_usd",
                "fallback_routes",
            ),
            (
                "tasks",
                "fallback_tasks",
                "retry_tasks",
                "calls",
                "cost_usd",
                "fallback_cost_usd",
                "failed_cost_usd",
            ),
        ),
        View(
            "runaway",
            "queries/runaway_workspaces.sql",
            "Top runaway workspaces (growth vs the previous period, attempts per task, loops)",
            (
                "customer_id",
                "workspace_id",
                "cost_usd",
                "previous_cost_usd",
                "spend_growth_pct",
                "tasks",
                "calls",
                "attempts_per_task",
                "max_attempts",
                "loop_tasks",
                "failed_cost_usd",
            ),
            defaults={"loop_attempts": 5, "limit": 20},
        ),
        View(
            "budgets",
            "queries/budget_usage.sql",
            "AI allowance used this month (to date and projected to month end)",
            (
                "scope",
                "scope_id",
                "customer_id",
                "plan",
                "allowance_usd",
                "spent_usd",
                "used_pct",
                "projected_usd",
                "projected_pct",
                "calls",
            ),
        ),
        View(
            "unpriced",
            "queries/unpriced_spend.sql",
            "Unpriced and unattributed spend",
            (
                "kind",
                "provider",
                "model",
                "calls",
                "input_tokens",
                "output_tokens",
                "cost_usd",
                "first_seen",
                "last_seen",
            ),
        ),
        View(
            "daily",
            "queries/daily_trend.sql",
            "Daily spend by feature",
            ("day", "feature", "calls", "tasks", "active_customers", "cost_usd"),
            ("calls", "cost_usd"),
        ),
    )
}


def bind(sql: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Only the parameters the SQL declares (``{name:Type}``); a missing one is an error,
    except a filter of FILTER_DEFAULTS (then: not filtered)."""
    parameters = {**FILTER_DEFAULTS, **parameters}
    wanted = set(_PARAMETER.findall(sql))
    missing = wanted - set(parameters)
    if missing:
        raise ValueError(f"query needs parameters {sorted(missing)}")
    out = {}
    for name in wanted:
        value = parameters[name]
        out[name] = naive_utc(value) if isinstance(value, datetime) else value
    return out


def run_sql(reader: Any, sql_file: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of one query file as dicts; money stays Decimal."""
    sql = read_sql(sql_file)
    return [_normalise(r) for r in reader.query(sql, bind(sql, parameters)).dicts()]


def view_rows(
    reader: Any, view: View, since: datetime, until: datetime, **options: Any
) -> list[dict[str, Any]]:
    parameters = {**view.defaults, **{k: v for k, v in options.items() if v is not None}}
    parameters.update(since=since, until=until)
    return run_sql(reader, view.sql, parameters)


def total_row(view: View, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not view.total_columns:
        return None
    total: dict[str, Any] = {view.columns[0]: "TOTAL"}
    for column in view.total_columns:
        values = [r[column] for r in rows if r.get(column) is not None]
        total[column] = sum(values, Decimal(0) if column.endswith("_usd") else 0)
    return total


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, str) and key.endswith(("_usd", "_pct")):
            # Rows from a running processor arrive over JSON: Decimals as strings.
            value = Decimal(value)
        elif isinstance(value, float) and key.endswith("_pct"):
            value = Decimal(repr(value))
        out[key] = value
    return out


def to_wire(row: dict[str, Any]) -> dict[str, Any]:
    """Exact strings: money trimmed, percentages to 2 places, instants in ISO 8601."""
    out = {}
    for key, value in row.items():
        if value is None:
            out[key] = None
        elif key.endswith("_pct"):
            out[key] = pct_str(value)
        elif key in ("revenue_usd", "allowance_usd"):
            out[key] = cents_str(value)
        elif isinstance(value, Decimal) or key.endswith("_usd"):
            out[key] = money_str(value)
        elif isinstance(value, (datetime, date)):
            out[key] = value.isoformat()
        elif isinstance(value, float):
            out[key] = format(value, ".2f")
        else:
            out[key] = value
    return out
