"""`make demo` is the README's first promise: the whole pipeline on the embedded store, from an
instrumented app through the processor to the report and the HTML page. Its workload has one
of every kind of spend the product must show: an unprofitable customer, retries, a fallback,
invalid-JSON re-asks, a model the price book does not know, and calls with no customer."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal

import pytest

from tests.conftest import bin_path

pytestmark = pytest.mark.integration


def llm_margin(*args: str, cwd) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [bin_path("llm-margin"), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_demo_shows_every_kind_of_spend(tmp_path):
    data = tmp_path / "demo-data"
    demo = llm_margin("demo", "--data-dir", str(data), "--format", "json", cwd=tmp_path)
    # --format json: stdout is the customer report alone, progress and weekly page on stderr
    demo_customers = json.loads(demo.stdout)
    assert "Top customers by AI cost" in demo.stderr
    assert (data / "weekly.html").stat().st_size > 0

    read = ("--data-dir", str(data), "--since", "30d", "--format", "json")
    customers = json.loads(llm_margin("report", "customers", *read, cwd=tmp_path).stdout)
    by_id = {row["customer_id"]: row for row in customers}
    assert {row["customer_id"] for row in demo_customers} == set(by_id)
    assert by_id["hooli"]["status"] == "underwater"
    assert by_id["acme"]["unpriced_calls"] == 2
    assert by_id["(unattributed)"]["calls"] == 2
    assert by_id["wayne"]["calls"] == 0  # a customer without usage still has revenue
    stored = llm_margin(
        "sql", "--data-dir", str(data), "--format", "json",
        "SELECT toString(sum(cost_usd)) AS total, count() AS calls FROM llm_calls FINAL",
        cwd=tmp_path,
    )  # fmt: skip
    total = json.loads(stored.stdout)[0]
    assert sum(row["calls"] for row in customers) == int(total["calls"])
    assert sum(Decimal(row["cost_usd"]) for row in customers) == Decimal(total["total"])

    unpriced = json.loads(llm_margin("report", "unpriced", *read, cwd=tmp_path).stdout)
    kinds = {(row["kind"], row["model"]): row["calls"] for row in unpriced}
    assert kinds[("unpriced", "acme-legal-ft")] == 2
    assert sum(calls for (kind, _), calls in kinds.items() if kind == "unattributed") == 2
