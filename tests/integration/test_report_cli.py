"""`llm-margin report customers` against a real `serve` subprocess, and after it stopped.

Spans travel through the real OTLP/HTTP exporter; expected costs come from genai-prices
directly, computed here from the token counts the spans carried.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from decimal import Decimal

import genai_prices
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.conftest import bin_path, free_port, wait_until

pytestmark = pytest.mark.integration

CALLS = [
    # customer, model, input, output, cache_read
    ("acme", "gpt-4o-mini", 1200, 300, 200),
    ("acme", "gpt-4o", 5000, 900, 0),
    ("globex", "gpt-4o-mini", 800, 120, 0),
    (None, "gpt-4o-mini", 100, 10, 0),  # no customer: (unattributed)
    ("initech", "my-private-finetune", 700, 70, 0),  # unknown model: stored unpriced
]


def expected_cost(model: str, inp: int, out: int, cache: int) -> Decimal:
    try:
        price = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=cache),
            model,
            provider_id="openai",
        )
    except LookupError:
        return Decimal(0)
    return Decimal(price.total_price)


def send_calls(http_url: str) -> None:
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{http_url}/v1/traces"))
    )
    tracer = provider.get_tracer("test")
    for customer, model, inp, out, cache in CALLS:
        attributes = {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": inp,
            "gen_ai.usage.output_tokens": out,
            "gen_ai.usage.cache_read.input_tokens": cache,
        }
        if customer:
            attributes.update({"customer.id": customer, "plan": "pro"})
        with tracer.start_as_current_span(f"chat {model}", attributes=attributes):
            pass
    provider.shutdown()


def run_report(data_dir: str, fmt: str) -> str:
    result = subprocess.run(
        [
            bin_path("llm-margin"),
            "report",
            "customers",
            "--data-dir",
            data_dir,
            "--since",
            "1d",
            "--format",
            fmt,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def check_json_report(text: str) -> None:
    rows = {r["customer_id"]: r for r in json.loads(text)}
    for key in ("customer_id", "plan", "calls", "tasks", "cost_usd", "revenue_usd", "margin_pct"):
        assert all(key in r for r in rows.values()), key
    assert all(isinstance(r["cost_usd"], str) for r in rows.values())
    expected: dict[str, Decimal] = {}
    for customer, model, inp, out, cache in CALLS:
        key = customer or "(unattributed)"
        expected[key] = expected.get(key, Decimal(0)) + expected_cost(model, inp, out, cache)
    for customer, cost in expected.items():
        assert Decimal(rows[customer]["cost_usd"]) == cost, customer
    assert rows["acme"]["calls"] == 2
    assert rows["initech"]["unpriced_calls"] == 1
    # Customers with a plan but no calls still show their revenue.
    assert Decimal(rows["stark"]["revenue_usd"]) > 0 and rows["stark"]["calls"] == 0
    assert "TOTAL" not in rows


def check_csv_total(text: str) -> None:
    rows = list(csv.DictReader(io.StringIO(text)))
    total = rows[-1]
    assert total["customer_id"] == "TOTAL"
    assert sum(Decimal(r["cost_usd"]) for r in rows[:-1]) == Decimal(total["cost_usd"])
    assert sum(int(r["calls"]) for r in rows[:-1]) == int(total["calls"]) == len(CALLS)


def test_report_while_serving_and_after(serve_process):
    send_calls(serve_process["http_url"])
    data_dir = serve_process["data_dir"]

    def stored() -> bool:
        text = run_report(data_dir, "json")
        return sum(r["calls"] for r in json.loads(text)) == len(CALLS) and text

    # While serve runs it owns the chDB directory: the CLI asks it over HTTP.
    check_json_report(wait_until(stored, timeout=30, message="calls stored"))
    check_csv_total(run_report(data_dir, "csv"))

    serve_process["process"].terminate()
    assert serve_process["process"].wait(timeout=30) == 0
    # After it stopped, the CLI opens the embedded store itself.
    check_json_report(run_report(data_dir, "json"))
    table = run_report(data_dir, "table")
    assert "TOTAL" in table and "(unattributed)" in table


def test_unreachable_clickhouse_server_is_one_error_line(tmp_path):
    """The HTTP libraries' retry warnings would come before the command's own error line."""
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = subprocess.run(
        [bin_path("llm-margin"), "report", "customers", "--clickhouse-url", url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llm-margin report: "), result.stderr
    assert url.rsplit(":", 1)[1] in lines[0]
