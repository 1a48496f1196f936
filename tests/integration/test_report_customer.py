"""`llm-margin report VIEW --customer ID`: one customer's drill-down, through the real CLI.

A store with three customers' calls (one of them `(unattributed)`) and a fourth customer that
is billed but made no calls, read with the roll-up absent and with it current for part of the
period (so the filtered queries take every path: roll-up, raw calls by LIMIT BY and by FINAL,
tasks merged from fragments and raw calls). Each customer's filtered report must be exactly its
rows of the unfiltered one (for `features`, `routes` and `unpriced`, whose rows are not per
customer: an oracle computed from the stored calls), and the customers' reports add up to the
unfiltered one, to the last unit.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

import pytest
from llm_margin.processor import cli
from llm_margin.processor.billing import parse_billing, store_billing
from llm_margin.processor.commands import report as report_command
from llm_margin.processor.records import CallRecord, TaskSpanRecord
from llm_margin.processor.reports.rollup import refresh_usage_rollup
from llm_margin.processor.storage import Store

from tests.conftest import free_port, running_serve, wait_until
from tests.integration.test_reports import TASKS, send
from tests.integration.test_reports import report as serve_report

pytestmark = pytest.mark.integration

BILLING = {
    "plans": {
        "pro": {"monthly_price_usd": "100", "target_gross_margin_pct": 80},
        "enterprise": {"monthly_price_usd": "1000", "target_gross_margin_pct": 75},
    },
    "customers": {
        "acme": {"plan": "pro", "workspaces": ["ws_a1", "ws_a2"]},
        "globex": {"plan": "enterprise"},
        "stark": {"plan": "pro"},  # billed, no calls
    },
}
UNATTRIBUTED = "(unattributed)"
CUSTOMERS = ("acme", "globex", "stark", UNATTRIBUTED)
# Partial first and last hours; the "rollup" store has current hours [21st, 22nd 08:00).
SINCE, UNTIL = "2026-11-20T00:30", "2026-11-23T00:30"
# Over a week of raw calls: the queries deduplicate with FINAL.
LONG_SINCE = "2026-10-01T00:00"


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute)


# task, customer, workspace, feature, ts, route, attempt kind, ok, cost (None: unpriced)
CALLS = [
    ("a1", "acme", "ws_a1", "summarize", at(20, 10), "openai/gpt-4o", "first", False, "0.01"),
    ("a1", "acme", "ws_a1", "summarize", at(20, 10, 1), "openai/gpt-4o-mini", "fallback", True,
     "0.002"),
    # Across the start of the current roll-up: merged from its raw call and its fragment.
    ("a2", "acme", "ws_a1", "summarize", at(20, 23, 50), "openai/gpt-4o", "first", True, "0.03"),
    ("a2", "acme", "ws_a1", "summarize", at(21, 0, 10), "openai/gpt-4o", "retry", True, "0.04"),
    # A loop: six attempts, five failed.
    *[
        ("a3", "acme", "ws_a2", "chat", at(21, 5, 5 * i), "openai/gpt-4o-mini",
         "first" if i == 0 else "retry", i == 5, "0.005")
        for i in range(6)
    ],
    # Two hours inside the roll-up: merged from its fragments.
    ("a4", "acme", "ws_a2", "chat", at(21, 10, 55), "openai/gpt-4o", "first", False, "0.02"),
    ("a4", "acme", "ws_a2", "chat", at(21, 11, 5), "anthropic/claude-sonnet-4", "fallback", True,
     "0.06"),
    # A process without the customer's baggage stored the first attempt unattributed: the task
    # is still acme's (its first call carrying a customer), the call's cost (unattributed)'s.
    ("a5", UNATTRIBUTED, "", "chat", at(22, 8), "openai/gpt-4o", "first", False, "0.003"),
    ("a5", "acme", "ws_a2", "chat", at(22, 8, 1), "openai/gpt-4o-mini", "fallback", True,
     "0.001"),
    ("a6", "acme", "ws_a1", "extract", at(22, 12), "openai/acme-ft", "first", True, None),
    ("a7", "acme", "ws_a1", "chat", at(23, 0, 10), "openai/gpt-4o", "first", True, "0.07"),
    # The previous period (runaway growth), and October (the long period only).
    ("a8", "acme", "ws_a1", "summarize", at(18, 9), "openai/gpt-4o", "first", True, "12"),
    ("a9", "acme", "ws_a2", "chat", at(15, 9, month=10), "openai/gpt-4o", "first", True, "1"),
    ("g1", "globex", "ws_g", "chat", at(20, 0, 10), "openai/gpt-4o", "first", True, "0.15"),
    ("g2", "globex", "ws_g", "chat", at(20, 5), "openai/gpt-4o", "first", True, "0.2"),
    ("g3", "globex", "ws_g", "summarize", at(21, 15), "openai/gpt-4o", "first", False, "0.1"),
    ("g3", "globex", "ws_g", "summarize", at(21, 15, 2), "anthropic/claude-sonnet-4", "fallback",
     True, "0.3"),
    ("g4", "globex", "ws_g2", "summarize", at(22, 20), "anthropic/claude-sonnet-4", "first", True,
     "0.25"),
    ("g5", "globex", "ws_g2", "extract", at(21, 16), "openai/acme-ft", "first", True, None),
    ("u1", UNATTRIBUTED, "", "chat", at(21, 9), "openai/gpt-4o-mini", "first", True, "0.011"),
    ("u2", UNATTRIBUTED, "", "", at(22, 9), "openai/other-ft", "first", True, None),
]  # fmt: skip
# Root spans: the app's outcome of each task (a3 failed; a9, u2 have none: unknown).
OUTCOMES = {"a1": "success", "a2": "success", "a3": "failure", "a4": "success",
            "a5": "success", "a6": "success", "a7": "success", "a8": "success",
            "g1": "success", "g2": "success", "g3": "success", "g4": "success",
            "g5": "failure", "u1": "success"}  # fmt: skip


def call_records() -> list[CallRecord]:
    records = []
    for n, (task, customer, workspace, feature, ts, route, kind, ok, cost) in enumerate(CALLS):
        provider, model = route.split("/")
        records.append(
            CallRecord(
                ts=ts,
                trace_id=f"trace-{task}",
                span_id=f"{n:016x}",
                task_id=task,
                customer_id=customer,
                workspace_id=workspace,
                plan=BILLING["customers"].get(customer, {}).get("plan", ""),
                feature=feature,
                provider=provider,
                route=route,
                request_model=model,
                status="ok" if ok else "error",
                attempt=sum(1 for c in CALLS[:n] if c[0] == task) + 1,
                attempt_kind=kind,
                input_tokens=100 + n,
                output_tokens=10 + n,
                cost_usd=Decimal(cost or 0),
                priced=cost is not None,
                version=2,
            )
        )
    return records


def task_spans() -> list[TaskSpanRecord]:
    first = {}
    for task, customer, workspace, feature, ts, *_ in CALLS:
        if customer != UNATTRIBUTED:
            first.setdefault(task, (customer, workspace, feature, ts))
    return [
        TaskSpanRecord(
            task_id=task,
            trace_id=f"trace-{task}",
            span_id=f"root-{task}",
            outcome=outcome,
            customer_id=first[task][0] if task in first else "",
            workspace_id=first[task][1] if task in first else "",
            feature=first[task][2] if task in first else "",
            started_at=min(c[4] for c in CALLS if c[0] == task),
            ended_at=max(c[4] for c in CALLS if c[0] == task),
            version=1,
        )
        for task, outcome in OUTCOMES.items()
    ]


def _naive(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module", params=["raw", "rollup"])
def store_dir(request, tmp_path_factory):
    """The data directory, with the oracle's stored calls and tasks read from it."""
    path = str(tmp_path_factory.mktemp(f"drill-{request.param}") / "data")
    store = Store.open(data_dir=path)
    try:
        store_billing(store, *parse_billing(BILLING))
        calls = call_records()
        # A stream's estimate (an older version), then every call, then duplicates of some.
        store.insert_calls([replace(c, cost_usd=c.cost_usd * 2, version=1) for c in calls[::3]])
        store.insert_calls(calls)
        store.insert_calls(calls[5:12])
        store.insert_task_spans(task_spans())
        store.link_tasks(OUTCOMES.keys() | {c[0] for c in CALLS})
        if request.param == "rollup":
            assert refresh_usage_rollup(store, since=at(21, 0), until=at(23, 0)) == 48
            # A late duplicate: its hour (22nd 08:00) is stale again, and so read from
            # llm_calls with every hour after it.
            store.insert_calls([c for c in calls if c.task_id == "a5"])
        stored = {
            "calls": store.query("SELECT * FROM llm_calls FINAL").dicts(),
            "tasks": store.query("SELECT * FROM llm_tasks FINAL").dicts(),
        }
    finally:
        store.close()
    return path, stored


@pytest.fixture(autouse=True)
def fixed_rollup(monkeypatch):
    """The CLI refreshes the roll-up when it owns the store: keep each store's roll-up as the
    fixture made it, so every run reads the same mix of roll-up and raw calls."""
    monkeypatch.setattr(report_command, "_refresh_rollup", lambda *args: None)


def run(capsys, data_dir: str, view: str, *extra: str, since: str = SINCE) -> list | dict:
    argv = ["report", view, "--data-dir", data_dir, "--since", since, "--until", UNTIL]
    assert cli.main([*argv, "--format", "json", *extra]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def money(value: str | None) -> Decimal:
    return Decimal(value or 0)


def total(rows: list[dict], column: str) -> Decimal:
    return sum((money(r[column]) for r in rows), Decimal(0))


@pytest.mark.parametrize("since", [SINCE, LONG_SINCE])
def test_customers_is_the_customers_row(store_dir, capsys, since):
    data_dir, _ = store_dir
    everyone = run(capsys, data_dir, "customers", since=since)
    assert {r["customer_id"] for r in everyone} == set(CUSTOMERS)
    costs = Decimal(0)
    for customer in CUSTOMERS:
        rows = run(capsys, data_dir, "customers", "--customer", customer, since=since)
        assert rows == [r for r in everyone if r["customer_id"] == customer]
        costs += money(rows[0]["cost_usd"])
    assert costs == total(everyone, "cost_usd") > 0
    # Stored ids are trimmed: an id pasted with spaces around it is the same customer.
    assert run(capsys, data_dir, "customers", "--customer", " acme\t", since=since) == [
        r for r in everyone if r["customer_id"] == "acme"
    ]
    stark = run(capsys, data_dir, "customers", "--customer", "stark", since=since)[0]
    assert (stark["calls"], stark["cost_usd"], stark["status"]) == (0, "0", "healthy")


def test_customers_table_total_is_the_customers_row(store_dir, capsys):
    data_dir, _ = store_dir
    argv = ["report", "customers", "--data-dir", data_dir, "--since", SINCE, "--until", UNTIL]
    assert cli.main([*argv, "--customer", "acme"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Customer margin for customer acme 2026-11-20 00:30")
    row, footer = lines[3].split(), lines[-1].split()
    assert row[0] == "acme" and footer[0] == "TOTAL"
    assert footer[2:] == row[2:]  # every figure, the status against pro's 80% target included


def feature_oracle(stored: dict, customer: str) -> list[dict]:
    """feature_cost.sql from the stored tasks: one customer's tasks started in the period."""
    groups = defaultdict(list)
    for task in stored["tasks"]:
        started = task["started_at"].replace(tzinfo=None)
        if task["customer_id"] == customer and _naive(SINCE) <= started < _naive(UNTIL):
            groups[task["feature"] or "(none)"].append(task)
    rows = []
    for feature, tasks in groups.items():
        cost = sum((t["cost_usd"] for t in tasks), Decimal(0))
        success = sum(1 for t in tasks if t["outcome"] == "success")
        per_success = (cost / success).quantize(Decimal("1e-18"), ROUND_DOWN) if success else None
        rows.append(
            {
                "feature": feature,
                "tasks": len(tasks),
                "successful_tasks": success,
                "success_rate_pct": f"{round(success * 100 / len(tasks), 2):.2f}",
                "calls": sum(t["calls"] for t in tasks),
                "cost_usd": _wire(cost),
                "wasted_cost_usd": _wire(sum((t["wasted_cost_usd"] for t in tasks), Decimal(0))),
                "cost_per_successful_task_usd": None if per_success is None else _wire(per_success),
                "active_customers": 1,
            }
        )
    return sorted(rows, key=lambda r: (-money(r["cost_usd"]), r["feature"]))


def _wire(amount: Decimal) -> str:
    return "0" if amount == 0 else format(amount.normalize(), "f")


def test_features_are_the_customers_tasks(store_dir, capsys):
    data_dir, stored = store_dir
    everyone = {r["feature"]: r for r in run(capsys, data_dir, "features")}
    sums = defaultdict(Decimal)
    for customer in CUSTOMERS:
        rows = run(capsys, data_dir, "features", "--customer", customer)
        assert rows == feature_oracle(stored, customer), customer
        for row in rows:
            for column in ("tasks", "successful_tasks", "calls", "cost_usd", "wasted_cost_usd"):
                sums[row["feature"], column] += money(str(row[column]))
    assert {r["active_customers"] for r in everyone.values()} >= {2}
    for feature, row in everyone.items():
        for column in ("tasks", "successful_tasks", "calls", "cost_usd", "wasted_cost_usd"):
            assert sums[feature, column] == money(str(row[column])), (feature, column)


def route_oracle(stored: dict, customer: str, since: str) -> list[dict]:
    """route_fallbacks.sql from the stored calls of the period: a task is its customer's as in
    llm_tasks (its first call carrying one)."""
    tasks = defaultdict(list)
    for call in stored["calls"]:
        if _naive(since) <= call["ts"].replace(tzinfo=None) < _naive(UNTIL):
            tasks[call["task_id"]].append(call)
    routes = defaultdict(list)
    for calls in tasks.values():
        calls.sort(key=lambda c: (c["ts"], c["span_id"]))
        owner = min(calls, key=lambda c: (c["customer_id"] == UNATTRIBUTED, c["ts"]))
        if owner["customer_id"] == customer:
            routes[calls[0]["route"]].append(calls)
    rows = []
    for route, group in routes.items():
        fell_back = [t for t in group if any(c["attempt_kind"] == "fallback" for c in t)]
        calls = [c for t in group for c in t]
        rows.append(
            {
                "original_route": route,
                "tasks": len(group),
                "fallback_tasks": len(fell_back),
                "fallback_rate_pct": f"{round(len(fell_back) * 100 / len(group), 2):.2f}",
                "retry_tasks": sum(
                    1 for t in group if any(c["attempt_kind"] == "retry" for c in t)
                ),
                "calls": len(calls),
                "cost_usd": _wire(sum((c["cost_usd"] for c in calls), Decimal(0))),
                "fallback_cost_usd": _wire(
                    sum(
                        (c["cost_usd"] for c in calls if c["attempt_kind"] == "fallback"),
                        Decimal(0),
                    )
                ),
                "failed_cost_usd": _wire(
                    sum((c["cost_usd"] for c in calls if c["status"] != "ok"), Decimal(0))
                ),
                "fallback_routes": " ".join(
                    sorted({t[-1]["route"] for t in fell_back if t[-1]["route"] != route})
                ),
            }
        )
    return sorted(
        rows,
        key=lambda r: (
            -Decimal(r["fallback_rate_pct"]),
            -money(r["cost_usd"]),
            r["original_route"],
        ),
    )


@pytest.mark.parametrize("since", [SINCE, LONG_SINCE])
def test_routes_are_the_customers_tasks(store_dir, capsys, since):
    data_dir, stored = store_dir
    everyone = {r["original_route"]: r for r in run(capsys, data_dir, "routes", since=since)}
    sums = defaultdict(Decimal)
    for customer in CUSTOMERS:
        rows = run(capsys, data_dir, "routes", "--customer", customer, since=since)
        assert rows == route_oracle(stored, customer, since), customer
        for row in rows:
            for column in ("tasks", "fallback_tasks", "retry_tasks", "calls", "cost_usd",
                           "fallback_cost_usd", "failed_cost_usd"):  # fmt: skip
                sums[row["original_route"], column] += money(str(row[column]))
    for route, row in everyone.items():
        for column in ("tasks", "fallback_tasks", "calls", "cost_usd", "failed_cost_usd"):
            assert sums[route, column] == money(str(row[column])), (route, column)


def test_runaway_is_the_customers_workspaces(store_dir, capsys):
    data_dir, _ = store_dir
    everyone = run(capsys, data_dir, "runaway", "--limit", "100")
    assert {r["customer_id"] for r in everyone} == {"acme", "globex", UNATTRIBUTED}
    for customer in CUSTOMERS:
        rows = run(capsys, data_dir, "runaway", "--limit", "100", "--customer", customer)
        assert rows == [r for r in everyone if r["customer_id"] == customer], customer
    # The limit counts the customer's workspaces, not everyone's.
    top = run(capsys, data_dir, "runaway", "--limit", "1", "--customer", "globex")
    assert top == [r for r in everyone if r["customer_id"] == "globex"][:1]
    acme = {r["workspace_id"]: r for r in everyone if r["customer_id"] == "acme"}
    assert acme["ws_a1"]["previous_cost_usd"] == "12" and acme["ws_a2"]["loop_tasks"] == 1


def test_budgets_are_the_customers_rows_without_plans(store_dir, capsys):
    data_dir, _ = store_dir
    everyone = run(capsys, data_dir, "budgets")
    assert {r["scope"] for r in everyone} == {"customer", "workspace", "plan"}
    for customer in CUSTOMERS:
        rows = run(capsys, data_dir, "budgets", "--customer", customer)
        expected = [r for r in everyone if r["customer_id"] == customer and r["scope"] != "plan"]
        assert rows == expected, customer
    acme = run(capsys, data_dir, "budgets", "--customer", "acme")
    assert {(r["scope"], r["scope_id"]) for r in acme} == {
        ("customer", "acme"), ("workspace", "ws_a1"), ("workspace", "ws_a2")
    }  # fmt: skip


def unpriced_oracle(stored: dict, customer: str, since: str) -> list[dict]:
    groups = defaultdict(list)
    for call in stored["calls"]:
        if call["customer_id"] != customer:
            continue
        if not _naive(since) <= call["ts"].replace(tzinfo=None) < _naive(UNTIL):
            continue
        model = call["response_model"] or call["request_model"]
        if not call["priced"]:
            groups["unpriced", call["provider"], model].append(call)
        if customer == UNATTRIBUTED:
            groups["unattributed", call["provider"], model].append(call)
    rows = [
        {
            "kind": kind,
            "provider": provider,
            "model": model,
            "calls": len(calls),
            "cost_usd": _wire(sum((c["cost_usd"] for c in calls), Decimal(0))),
            "first_seen": min(c["ts"] for c in calls).replace(tzinfo=None).isoformat(),
        }
        for (kind, provider, model), calls in groups.items()
    ]
    return sorted(rows, key=lambda r: (r["kind"], -r["calls"], r["provider"], r["model"]))


@pytest.mark.parametrize("since", [SINCE, LONG_SINCE])
def test_unpriced_is_the_customers_calls(store_dir, capsys, since):
    data_dir, stored = store_dir
    everyone = run(capsys, data_dir, "unpriced", since=since)
    sums = defaultdict(Decimal)
    for customer in CUSTOMERS:
        rows = run(capsys, data_dir, "unpriced", "--customer", customer, since=since)
        columns = ("kind", "provider", "model", "calls", "cost_usd", "first_seen")
        assert [{c: r[c] for c in columns} for r in rows] == unpriced_oracle(
            stored, customer, since
        ), customer
        for row in rows:
            sums[row["kind"], row["model"], "calls"] += row["calls"]
            sums[row["kind"], row["model"], "cost_usd"] += money(row["cost_usd"])
    assert {r["kind"] for r in everyone} == {"unpriced", "unattributed"}
    for row in everyone:
        assert sums[row["kind"], row["model"], "calls"] == row["calls"]
        assert sums[row["kind"], row["model"], "cost_usd"] == money(row["cost_usd"])


def test_weekly_is_the_customers_page(store_dir, capsys, tmp_path):
    data_dir, _ = store_dir
    page = run(capsys, data_dir, "weekly", "--customer", "acme")
    customers = run(capsys, data_dir, "customers", "--customer", "acme")
    assert page["customer"] == "acme" and "plans" not in page
    assert page["top_customers"] == customers
    assert {k: page["totals"][k] for k in ("calls", "cost_usd", "revenue_usd", "margin_pct")} == {
        k: customers[0][k] for k in ("calls", "cost_usd", "revenue_usd", "margin_pct")
    }
    assert page["features"] == run(capsys, data_dir, "features", "--customer", "acme")
    assert page["routes"] == run(capsys, data_dir, "routes", "--customer", "acme")
    runaway = run(capsys, data_dir, "runaway", "--customer", "acme", "--limit", "5")
    assert page["runaway"] == runaway
    assert page["unpriced"] == run(capsys, data_dir, "unpriced", "--customer", "acme")
    budgets = {
        (r["scope"], r["scope_id"]): r
        for r in run(capsys, data_dir, "budgets", "--customer", "acme")
    }
    assert page["near_budget"]  # acme: 12 of its 20 USD this month
    for row in page["near_budget"]:
        assert row["spent_usd"] == budgets[row["scope"], row["scope_id"]]["spent_usd"]
    # The daily trend: acme's calls per day, adding up with the others' to everyone's.
    everyone = run(capsys, data_dir, "weekly")
    daily = defaultdict(Decimal)
    for customer in CUSTOMERS:
        for row in run(capsys, data_dir, "weekly", "--customer", customer)["daily"]:
            assert row["active_customers"] == 1
            daily[row["day"], row["feature"], "calls"] += row["calls"]
            daily[row["day"], row["feature"], "cost_usd"] += money(row["cost_usd"])
    for row in everyone["daily"]:
        assert daily[row["day"], row["feature"], "calls"] == row["calls"]
        assert daily[row["day"], row["feature"], "cost_usd"] == money(row["cost_usd"])
    assert money(page["totals"]["cost_usd"]) == sum(
        (money(r["cost_usd"]) for r in page["daily"]), Decimal(0)
    )
    # The table and the HTML page say whose page it is, and have no plans section.
    html = tmp_path / "acme.html"
    argv = ["report", "weekly", "--data-dir", data_dir, "--since", SINCE, "--until", UNTIL]
    assert cli.main([*argv, "--customer", "acme", "--html", str(html)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("AI margin over 3 days for customer acme 2026-11-20 00:30")
    assert "Cost per successful task by feature for customer acme" in text
    assert "Gross margin by plan" not in text
    page_html = html.read_text()
    assert "<h1>AI margin over 3 days for customer acme</h1>" in page_html
    assert "Gross margin by plan" not in page_html


@pytest.mark.parametrize("view", ["customers", "features", "routes", "runaway", "budgets",
                                  "unpriced"])  # fmt: skip
def test_unknown_customer_is_an_empty_report(store_dir, capsys, view):
    data_dir, _ = store_dir
    assert run(capsys, data_dir, view, "--customer", "nobody") == []


def test_unknown_customer_weekly_is_an_empty_page(store_dir, capsys):
    data_dir, _ = store_dir
    page = run(capsys, data_dir, "weekly", "--customer", "nobody")
    assert page["totals"]["calls"] == 0 and page["totals"]["cost_usd"] == "0"
    sections = ("top_customers", "features", "routes", "near_budget", "runaway", "unpriced")
    assert all(page[name] == [] for name in (*sections, "daily"))


def test_plans_refuses_a_customer(store_dir, capsys):
    data_dir, _ = store_dir
    assert cli.main(["report", "plans", "--data-dir", data_dir, "--customer", "acme"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "--customer does not go with `report plans`" in captured.err


def test_drill_down_through_a_running_serve_and_its_clickhouse_interface(tmp_path):
    """The filter travels with the SQL to the running processor (/api/query), and to a
    ClickHouse server (--clickhouse-url: here serve's own ClickHouse HTTP interface)."""
    data_dir = str(tmp_path / "serve-data")
    grpc_port, http_port, clickhouse_port = free_port(), free_port(), free_port()
    billing = os.path.join(os.path.dirname(__file__), "..", "..", "demo", "billing.yaml")
    options = (
        *("--otlp-grpc-port", str(grpc_port), "--otlp-http-port", str(http_port)),
        *("--billing-file", os.path.abspath(billing)),
        *("--clickhouse-http-port", str(clickhouse_port)),
    )
    with running_serve(data_dir, *options):
        calls = send(grpc_port)
        wait_until(
            lambda: sum(r["calls"] for r in serve_report(data_dir, "customers")) == calls,
            timeout=30,
            message="calls stored",
        )
        assert os.path.exists(os.path.join(data_dir, "llm-margin-serve.json"))
        everyone = serve_report(data_dir, "customers")
        runaway = serve_report(data_dir, "runaway")
        customers = {t[1] or UNATTRIBUTED for t in TASKS}
        for customer in customers:
            rows = serve_report(data_dir, "customers", "--customer", customer)
            assert rows == [r for r in everyone if r["customer_id"] == customer]
            mine = serve_report(data_dir, "runaway", "--customer", customer)
            assert mine == [r for r in runaway if r["customer_id"] == customer]
        cost = sum(
            (
                total(serve_report(data_dir, "routes", "--customer", c), "cost_usd")
                for c in customers
            ),
            Decimal(0),
        )
        assert cost == total(everyone, "cost_usd")
        page = serve_report(data_dir, "weekly", "--customer", "globex")
        assert page["customer"] == "globex" and page["runaway"][0]["loop_tasks"] == 1
        server = ("--clickhouse-url", f"http://127.0.0.1:{clickhouse_port}")
        assert serve_report(data_dir, "customers", *server, "--customer", "globex") == [
            r for r in everyone if r["customer_id"] == "globex"
        ]
        assert serve_report(data_dir, "runaway", *server, "--customer", "globex") == [
            r for r in runaway if r["customer_id"] == "globex"
        ]


def test_weekly_totals_of_one_customer_are_its_row(store_dir, capsys):
    """One customer's page totals are its row, status against its plan's target: acme's 0.07
    USD on 0.21 USD of revenue is a 66.67% margin, thin on pro's 80% (healthy against the 50%
    a sum of customers is held to)."""
    data_dir, _ = store_dir
    since = "2026-11-22T23:00"
    page = run(capsys, data_dir, "weekly", "--customer", "acme", since=since)
    row = run(capsys, data_dir, "customers", "--customer", "acme", since=since)[0]
    assert (row["margin_pct"], row["status"]) == ("66.67", "thin")
    assert page["totals"] == {**row, "customer_id": "TOTAL", "plan": ""}
