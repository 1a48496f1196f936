"""Every `report` view through the real CLI, over real OTLP/gRPC spans stored by a running
processor (the CLI asks it over /api/query), and once more from the store after it stopped.
Expected money comes from genai-prices, computed here from the spans' token counts."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal

import genai_prices
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests.conftest import bin_path, wait_until

pytestmark = pytest.mark.integration

# task, customer, workspace, feature, outcome, [(model, kind, ok, input, output)]
TASKS = [
    (
        "t1",
        "acme",
        "ws_acme_legal",
        "summarize",
        "success",
        [("gpt-4o", "first", False, 1000, 0), ("gpt-4o-mini", "fallback", True, 1000, 200)],
    ),
    ("t2", "acme", "ws_acme_legal", "summarize", "success", [("gpt-4o", "first", True, 2000, 300)]),
    (
        "t3",
        "globex",
        "ws_globex_main",
        "chat",
        "failure",
        [("gpt-4o-mini", "first" if i == 0 else "retry", False, 500, 50) for i in range(6)],
    ),
    (
        "t4",
        "initech",
        "ws_initech",
        "chat",
        "success",
        [("my-private-finetune", "first", True, 700, 70)],
    ),
    ("t5", "", "", "chat", "success", [("gpt-4o-mini", "first", True, 100, 10)]),
]


def price(model: str, inp: int, out: int) -> Decimal:
    try:
        result = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=inp, output_tokens=out), model, provider_id="openai"
        )
    except LookupError:
        return Decimal(0)
    return Decimal(result.total_price)


def task_cost(task) -> Decimal:
    return sum((price(m, i, o) for m, _, _, i, o in task[5]), Decimal(0))


def send(grpc_port: int) -> int:
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True))
    )
    tracer = provider.get_tracer("test")
    calls = 0
    for task_id, customer, workspace, feature, outcome, attempts in TASKS:
        context = {"task.id": task_id, "feature": feature}
        if customer:
            context.update({"customer.id": customer, "workspace.id": workspace})
        root = {**context, "llm_margin.task.root": True, "llm_margin.task.outcome": outcome}
        with tracer.start_as_current_span("llm_margin.task", attributes=root):
            for n, (model, kind, ok, inp, out) in enumerate(attempts, start=1):
                attributes = {
                    **context,
                    "gen_ai.provider.name": "openai",
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": model,
                    "gen_ai.usage.input_tokens": inp,
                    "gen_ai.usage.output_tokens": out,
                    "llm_margin.route": f"openai/{model}",
                    "llm_margin.attempt": n,
                    "llm_margin.attempt_kind": kind,
                }
                with tracer.start_as_current_span(f"chat {model}", attributes=attributes) as s:
                    if not ok:
                        s.set_attribute("error.type", "invalid_json")
                        s.set_status(Status(StatusCode.ERROR))
                calls += 1
    provider.shutdown()
    return calls


def report(data_dir: str, view: str, *extra: str) -> list | dict:
    result = subprocess.run(
        [
            bin_path("llm-margin"),
            "report",
            view,
            "--data-dir",
            data_dir,
            "--since",
            "1d",
            "--format",
            "json",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def check_views(data_dir: str) -> None:
    by_id = {t[0]: t for t in TASKS}
    customers = {r["customer_id"]: r for r in report(data_dir, "customers")}
    acme_cost = task_cost(by_id["t1"]) + task_cost(by_id["t2"])
    assert Decimal(customers["acme"]["cost_usd"]) == acme_cost
    assert customers["acme"]["calls"] == 3 and customers["acme"]["tasks"] == 2
    assert customers["(unattributed)"]["cost_usd"] == str(task_cost(by_id["t5"]).normalize())
    assert {c["status"] for c in customers.values()} <= {"healthy", "thin", "underwater", "n/a"}
    # Revenue pro-rated over the one-day period with a 30-day month: 99 / 30, 449 / 30.
    assert customers["acme"]["revenue_usd"] == "3.30"
    assert customers["globex"]["revenue_usd"] == "14.97"  # custom price
    assert customers["stark"]["revenue_usd"] == "16.63" and customers["stark"]["calls"] == 0

    plans = {r["plan"]: r for r in report(data_dir, "plans")}
    assert Decimal(plans["pro"]["cost_usd"]) == acme_cost
    assert plans["pro"]["active_customers"] == 1 and plans["pro"]["customers"] == 2
    assert Decimal(plans["pro"]["cost_per_active_customer_usd"]) == acme_cost
    revenue = Decimal(plans["pro"]["revenue_usd"])
    assert Decimal(plans["pro"]["margin_usd"]) == revenue - acme_cost

    features = {r["feature"]: r for r in report(data_dir, "features")}
    assert features["summarize"]["successful_tasks"] == 2
    assert Decimal(features["summarize"]["cost_per_successful_task_usd"]) == acme_cost / 2
    chat_cost = sum(task_cost(by_id[t]) for t in ("t3", "t4", "t5"))
    assert Decimal(features["chat"]["cost_usd"]) == chat_cost
    assert features["chat"]["tasks"] == 3 and features["chat"]["successful_tasks"] == 2
    # The failed loop's whole cost is wasted.
    assert Decimal(features["chat"]["wasted_cost_usd"]) == task_cost(by_id["t3"])

    routes = {r["original_route"]: r for r in report(data_dir, "routes")}
    assert routes["openai/gpt-4o"]["tasks"] == 2 and routes["openai/gpt-4o"]["fallback_tasks"] == 1
    assert routes["openai/gpt-4o"]["fallback_rate_pct"] == "50.00"
    assert Decimal(routes["openai/gpt-4o"]["fallback_cost_usd"]) == price("gpt-4o-mini", 1000, 200)
    assert routes["openai/gpt-4o"]["fallback_routes"] == "openai/gpt-4o-mini"

    runaway = report(data_dir, "runaway", "--loop-attempts", "5")
    assert runaway[0]["workspace_id"] == "ws_globex_main" and runaway[0]["loop_tasks"] == 1
    assert runaway[0]["max_attempts"] == 6

    budgets = {(r["scope"], r["scope_id"]): r for r in report(data_dir, "budgets")}
    acme = budgets[("customer", "acme")]
    assert Decimal(acme["allowance_usd"]) == Decimal("19.80")  # 99 at an 80% target margin
    assert Decimal(acme["spent_usd"]) >= acme_cost  # month to date (test may cross a day)
    assert ("workspace", "ws_acme_legal") in budgets and ("plan", "pro") in budgets

    unpriced = {(r["kind"], r["model"]): r for r in report(data_dir, "unpriced")}
    assert unpriced[("unpriced", "my-private-finetune")]["calls"] == 1
    assert unpriced[("unattributed", "gpt-4o-mini")]["calls"] == 1

    weekly = report(data_dir, "weekly")
    assert weekly["top_customers"][0]["customer_id"] in ("acme", "globex")
    assert Decimal(weekly["totals"]["cost_usd"]) == sum((task_cost(t) for t in TASKS), Decimal(0))
    for section in ("features", "routes", "plans", "near_budget", "runaway", "unpriced", "daily"):
        assert section in weekly


def test_all_views_while_serving_and_after(serve_process):
    calls = send(serve_process["grpc_port"])
    data_dir = serve_process["data_dir"]
    wait_until(
        lambda: sum(r["calls"] for r in report(data_dir, "customers")) == calls,
        timeout=30,
        message="calls stored",
    )
    check_views(data_dir)
    serve_process["process"].terminate()
    assert serve_process["process"].wait(timeout=30) == 0
    check_views(data_dir)  # now from the embedded store directly


def test_bad_period_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [
            bin_path("llm-margin"),
            "report",
            "plans",
            "--data-dir",
            str(tmp_path),
            "--since",
            "yesterday-ish",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "cannot read time" in result.stderr
