"""`llm-margin export` and `llm-margin reconcile` as real subprocesses against a running
processor that received real OTLP spans. Expected costs come from genai-prices directly."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import genai_prices
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests.conftest import bin_path, wait_until

pytestmark = pytest.mark.integration

# customer, request model, response model, input, output, failed
CALLS = [
    ("acme", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 1200, 300, False),
    ("acme", "gpt-4o", "gpt-4o-2024-08-06", 5000, 900, False),
    ("globex", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 800, 120, False),
    (None, "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 100, 10, False),  # (unattributed)
    ("initech", "my-private-finetune", "", 700, 70, False),  # unpriced
    ("globex", "o3-mini", "", 0, 0, True),  # failed, no usage
]


def price(model: str, inp: int, out: int) -> Decimal:
    try:
        result = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=inp, output_tokens=out), model, provider_id="openai"
        )
    except LookupError:
        return Decimal(0)
    return Decimal(result.total_price)


def send(http_url: str) -> None:
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{http_url}/v1/traces"))
    )
    tracer = provider.get_tracer("test")
    for customer, model, response_model, inp, out, failed in CALLS:
        attributes = {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": inp,
            "gen_ai.usage.output_tokens": out,
        }
        if response_model:
            attributes["gen_ai.response.model"] = response_model
        if customer:
            attributes["customer.id"] = customer
        with tracer.start_as_current_span(f"chat {model}", attributes=attributes) as span:
            if failed:
                span.set_attribute("error.type", "timeout")
                span.set_status(Status(StatusCode.ERROR))
    provider.shutdown()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [bin_path("llm-margin"), *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def loaded(processor):
    send(processor.http_url)
    wait_until(lambda: processor.metrics.get("stored_calls") >= len(CALLS), message="stored")
    return processor


def stored_total(processor, since: datetime, until: datetime) -> Decimal:
    rows = processor.store.query(
        "SELECT sum(cost_usd) FROM llm_calls FINAL WHERE ts >= {s:DateTime64(6)} "
        "AND ts < {u:DateTime64(6)}",
        {"s": since.replace(tzinfo=None), "u": until.replace(tzinfo=None)},
    ).rows
    return Decimal(rows[0][0])


def test_export_csv_and_stripe_totals_exact(loaded, tmp_path):
    from llm_margin.processor.reports.export import month_bounds

    data_dir = loaded.config.data_dir
    period = f"{datetime.now(timezone.utc):%Y-%m}"
    expected = sum((price(m, i, o) for _, m, _, i, o, _ in CALLS), Decimal(0))
    assert stored_total(loaded, *month_bounds(period)) == expected > 0

    result = cli("export", "--period", period, "--data-dir", data_dir, "--markup-pct", "20")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    total, lines = rows[-1], rows[:-1]
    assert total["customer_id"] == "TOTAL"
    assert sum(Decimal(r["cost_usd"]) for r in lines) == Decimal(total["cost_usd"]) == expected
    # demo/billing.yaml gives globex its own markup; the others take --markup-pct
    markup = {r["customer_id"]: Decimal(10 if r["customer_id"] == "globex" else 20) for r in lines}
    assert all(Decimal(r["markup_pct"]) == markup[r["customer_id"]] for r in lines)
    amounts = [Decimal(r["cost_usd"]) * (1 + markup[r["customer_id"]] / 100) for r in lines]
    assert [Decimal(r["amount_usd"]) for r in lines] == amounts
    assert Decimal(total["amount_usd"]) == sum(amounts)
    assert {r["customer_id"] for r in lines} == {"acme", "globex", "initech", "(unattributed)"}

    # Stripe, the month so far: its events are stamped now (never ahead: Stripe refuses
    # those), with a warning that the month's identifiers are used up.
    before = int(datetime.now(timezone.utc).timestamp())
    result = cli("export", "--period", period, "--data-dir", data_dir, "--format", "stripe")
    assert result.returncode == 0 and "has not ended" in result.stderr
    so_far = [json.loads(line) for line in result.stdout.splitlines()]
    assert {e["payload"]["customer_id"] for e in so_far} == {"acme", "globex", "initech"}
    assert all(before - 1 <= e["timestamp"] <= time.time() for e in so_far)
    assert all(e["identifier"].startswith(f"llm-margin-llm_usage-{period}-") for e in so_far)
    assert sum(Decimal(e["payload"]["cost_usd"]) for e in so_far) == expected - price(
        "gpt-4o-mini", 100, 10
    )  # all but the unattributed call
    since, _ = month_bounds(period)
    # A whole second after the calls: `until` is cut to the second, and a call sent in the
    # same second falls after it.
    time.sleep(1)
    until = datetime.now(timezone.utc).replace(microsecond=0)
    window = ("--since", since.isoformat(), "--until", until.isoformat())
    result = cli("export", *window, "--data-dir", data_dir, "--format", "stripe")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    label = f"{since:%Y%m%dT%H%M%SZ}-{until:%Y%m%dT%H%M%SZ}"
    assert all(e["identifier"].startswith(f"llm-margin-llm_usage-{label}-") for e in events)
    assert all(e["timestamp"] == int(until.timestamp()) - 1 for e in events)
    assert {e["payload"]["stripe_customer_id"] for e in events} == {"acme", "globex", "initech"}
    unattributed = price("gpt-4o-mini", 100, 10)
    assert unattributed > 0 and "unattributed" in result.stderr
    assert "1 calls of billed customers have no price" in result.stderr  # initech's
    billed = sum(Decimal(e["payload"]["cost_usd"]) for e in events)
    assert billed + unattributed == expected
    for e in events:  # each customer's billed amount in micro-dollars, half up
        micro = Decimal(e["payload"]["amount_usd"]) / Decimal("0.000001")
        assert int(e["payload"]["value"]) == int(micro.to_integral_value("ROUND_HALF_UP"))
    assert len({e["identifier"] for e in events}) == len(events)
    assert "not Stripe customer ids (cus_...)" in result.stderr  # acme is not a Stripe id

    # Stripe maps meter events by its own customer ids: --stripe-customers gives them.
    mapping = tmp_path / "stripe-customers.csv"
    mapping.write_text("customer_id,stripe_customer_id\nacme,cus_A\nglobex,cus_G\n")
    stripe = ("--format", "stripe", "--stripe-customers", str(mapping))
    result = cli("export", *window, "--data-dir", data_dir, *stripe)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert {e["payload"]["stripe_customer_id"] for e in events} == {"cus_A", "cus_G"}
    assert "not billed, no Stripe customer id" in result.stderr and "initech" in result.stderr


def test_export_rejects_bad_period(loaded):
    result = cli("export", "--period", "2026-13", "--data-dir", loaded.config.data_dir)
    assert result.returncode == 2 and "--period" in result.stderr
    # a month without calls: a zero TOTAL that names its month; no Stripe events
    result = cli("export", "--period", "2020-01", "--data-dir", loaded.config.data_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == ["2020-01,TOTAL,,,,0,0,0,0,0,,0"]
    stripe = ("--format", "stripe", "--data-dir", loaded.config.data_dir)
    result = cli("export", "--period", "2020-01", *stripe)
    assert result.returncode == 0 and result.stdout == ""


def test_reconcile_explains_each_difference(loaded, tmp_path):
    today = datetime.now(timezone.utc).date().isoformat()
    mini = sum(price(m, i, o) for _, m, _, i, o, _ in CALLS if m == "gpt-4o-mini")
    big = price("gpt-4o", 5000, 900)
    path = tmp_path / "openai.csv"
    rows = [
        ("gpt-4o-mini-2024-07-18, input", mini),  # the same: match
        ("gpt-4o-2024-08-06, input", big + Decimal("0.5")),  # price mismatch
        ("my-private-finetune, input", Decimal("0.3")),  # stored unpriced
        ("o3-mini-2025-01-31, input", Decimal("0.02")),  # failed but billed
        ("gpt-4.1-2025-04-14, input", Decimal("0.7")),  # never seen
    ]
    lines = [
        "start_time_iso,end_time_iso,organization_id,project_id,project_name,line_item,"
        "amount_value,amount_currency"
    ]
    lines += [
        f'{today}T00:00:00+00:00,{today}T23:59:59+00:00,org,proj,P,"{item}",{amount},usd'
        for item, amount in rows
    ]
    path.write_text("\n".join(lines) + "\n")

    result = cli(
        "reconcile",
        "--provider-usage",
        str(path),
        "--data-dir",
        loaded.config.data_dir,
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    by_model = {r["model"]: r for r in json.loads(result.stdout)}
    assert by_model["gpt-4o-mini"]["explanation"].startswith("match")
    assert "1 calls have no customer" in by_model["gpt-4o-mini"]["explanation"]
    assert Decimal(by_model["gpt-4o"]["difference_usd"]) == Decimal("0.5")
    assert by_model["gpt-4o"]["explanation"].startswith("price mismatch")
    assert by_model["my-private-finetune"]["explanation"].startswith("unpriced")
    assert by_model["o3-mini"]["explanation"].startswith("failed-but-billed")
    assert by_model["gpt-4.1"]["explanation"].startswith("unattributed")
    assert Decimal(by_model["gpt-4.1"]["stored_cost_usd"]) == 0

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = cli("reconcile", "--provider-usage", str(bad), "--data-dir", loaded.config.data_dir)
    assert result.returncode == 2 and "unknown layout" in result.stderr


def test_export_any_period_and_table_json_formats(loaded):
    """--since/--until instead of --period (DESIGN: read commands take them), and the table /
    json formats: the same lines and the same exact total as the month's CSV."""
    data_dir = loaded.config.data_dir
    now = datetime.now(timezone.utc)
    period = f"{now:%Y-%m}"
    month = cli("export", "--period", period, "--data-dir", data_dir)
    assert month.returncode == 0, month.stderr
    month_rows = list(csv.DictReader(io.StringIO(month.stdout)))
    expected = Decimal(month_rows[-1]["cost_usd"])

    until = now.replace(microsecond=0) + timedelta(minutes=1)
    window = ("--since", (until - timedelta(days=1)).isoformat(), "--until", until.isoformat())
    window_csv = cli("export", *window, "--data-dir", data_dir)
    assert window_csv.returncode == 0, window_csv.stderr
    rows = list(csv.DictReader(io.StringIO(window_csv.stdout)))
    assert Decimal(rows[-1]["cost_usd"]) == expected  # every call was sent just now
    label = rows[0]["period"]
    assert label.endswith(until.strftime("%Y%m%dT%H%M%SZ")) and "-" in label

    as_json = cli("export", *window, "--data-dir", data_dir, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    lines = json.loads(as_json.stdout)
    assert all(isinstance(x["cost_usd"], str) for x in lines)  # money as decimal strings
    assert sum(Decimal(x["cost_usd"]) for x in lines) == expected
    assert [x["customer_id"] for x in lines] == [r["customer_id"] for r in rows[:-1]]

    table = cli("export", *window, "--data-dir", data_dir, "--format", "table")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[-1].split()[0] == label  # the TOTAL row
    assert "TOTAL" in table.stdout.splitlines()[-1]

    stripe = cli("export", *window, "--data-dir", data_dir, "--format", "stripe")
    assert stripe.returncode == 0 and "has not ended" in stripe.stderr  # until is ahead
    relative = cli("export", "--since", "30d", "--data-dir", data_dir, "--format", "stripe")
    assert relative.returncode == 0 and "new period" in relative.stderr

    both = cli("export", "--period", period, *window, "--data-dir", data_dir)
    assert both.returncode == 2 and "not both" in both.stderr
    neither = cli("export", "--data-dir", data_dir)
    assert neither.returncode == 2 and "--period" in neither.stderr


def test_reconcile_since_until_keeps_the_days_of_the_period(loaded, tmp_path):
    today = datetime.now(timezone.utc).date()
    yesterday = today - timedelta(days=1)
    mini = sum(price(m, i, o) for _, m, _, i, o, _ in CALLS if m == "gpt-4o-mini")
    path = tmp_path / "openai.csv"
    header = (
        "start_time_iso,end_time_iso,organization_id,project_id,project_name,line_item,"
        "amount_value,amount_currency"
    )
    rows = [
        f'{day}T00:00:00+00:00,{day}T23:59:59+00:00,org,proj,P,"gpt-4o-mini, input",{amount},usd'
        for day, amount in ((yesterday, Decimal("0.9")), (today, mini))
    ]
    path.write_text("\n".join([header, *rows]) + "\n")
    base = ["reconcile", "--provider-usage", str(path), "--data-dir", loaded.config.data_dir]

    every_day = json.loads(cli(*base, "--format", "json").stdout)
    assert {r["day"] for r in every_day} >= {yesterday.isoformat(), today.isoformat()}

    # Overlaps today only (a fixed hour of today would lie ahead before it, in CI at 00:50 UTC)
    result = cli(*base, "--format", "json", "--since", f"{today}T00:00")
    assert result.returncode == 0, result.stderr
    only_today = json.loads(result.stdout)
    assert {r["day"] for r in only_today} == {today.isoformat()}
    mini_row = next(r for r in only_today if r["model"] == "gpt-4o-mini")
    assert mini_row["explanation"].startswith("match")

    result = cli(*base, "--since", f"{yesterday - timedelta(days=3)}", "--until", f"{yesterday}")
    assert result.returncode == 2 and "no usage rows in the period" in result.stderr
