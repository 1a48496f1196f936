"""`llm-margin export` over a real embedded store holding calls made by hand: period boundaries
to the microsecond, re-deliveries, identifiers of one period however it is spelt, the Stripe ids
sent. The CLI runs in-process (`main`) on the closed store, as it would after `serve` stops."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from llm_margin.processor.billing import parse_billing, store_billing
from llm_margin.processor.cli import main
from llm_margin.processor.records import CallRecord
from llm_margin.processor.storage import Store

pytestmark = pytest.mark.integration

NOV, DEC = datetime(2026, 11, 1), datetime(2026, 12, 1)
US = timedelta(microseconds=1)


def _call(n: int, ts: datetime, customer: str, cost: str, version: int = 1, **fields):
    return CallRecord(
        ts=ts,
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        task_id=f"t{n}",
        customer_id=customer,
        cost_usd=Decimal(cost),
        priced=fields.pop("priced", True),
        latency_ms=1.0,
        version=version,
        **{"route": "openai/gpt-4o", "provider": "openai", "request_model": "gpt-4o", **fields},
    )


CALLS = [
    _call(1, NOV, "acme", "0.000000000000000001"),  # the month's first microsecond
    _call(2, DEC - US, "acme", "1.5"),  # its last
    _call(2, DEC - US, "acme", "2.5", version=2),  # re-priced re-delivery: only this counts
    _call(3, DEC, "acme", "100"),  # December
    _call(4, NOV - US, "acme", "100"),  # October
    _call(5, NOV + timedelta(days=3), "globex", "0.3333333"),
    _call(6, NOV + timedelta(days=3), "(unattributed)", "0.25"),
    _call(7, NOV + timedelta(days=4), "initech", "0", priced=False),
]
NOVEMBER_COST = (
    Decimal("0.000000000000000001") + Decimal("2.5") + Decimal("0.3333333") + Decimal("0.25")
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("export") / "data")
    store = Store.open(data_dir=path)
    store_billing(store, *parse_billing({"plans": {"pro": {"monthly_price_usd": "100"}},
                                         "customers": {"acme": {"plan": "pro"}}}))  # fmt: skip
    store.insert_calls(CALLS)
    store.close()
    return path


def run(capsys, *args: str) -> tuple[str, str]:
    assert main(["export", *args]) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_the_month_to_the_microsecond_equals_report_customers(data_dir, capsys):
    out, _ = run(capsys, "--period", "2026-11", "--data-dir", data_dir, "--markup-pct", "20")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[-1]["customer_id"] == "TOTAL"
    assert Decimal(rows[-1]["cost_usd"]) == NOVEMBER_COST
    assert Decimal(rows[-1]["amount_usd"]) == NOVEMBER_COST * Decimal("1.2")
    assert main(["report", "customers", "--since", "2026-11-01", "--until", "2026-12-01",
                 "--data-dir", data_dir, "--format", "json"]) == 0  # fmt: skip
    customers = json.loads(capsys.readouterr().out)
    assert sum(Decimal(c["cost_usd"]) for c in customers) == NOVEMBER_COST


@pytest.mark.parametrize(
    "window",
    [
        ("--since", "2026-11-01", "--until", "2026-12-01"),
        ("--since", "2026-11-01T01:00:00+01:00", "--until", "2026-12-01T00:00:00Z"),
    ],
)
def test_a_calendar_month_has_the_months_identifiers_however_given(data_dir, capsys, window):
    # The identifiers are what makes a re-send within 24 hours harmless: the same month spelt
    # as --since/--until was a new period to Stripe, so both runs' events were billed.
    stripe = ("--data-dir", data_dir, "--format", "stripe")
    by_month, _ = run(capsys, "--period", "2026-11", *stripe)
    by_window, _ = run(capsys, *window, *stripe)
    assert by_window == by_month
    assert json.loads(by_month.splitlines()[0])["identifier"] == "llm-margin-llm_usage-2026-11-acme"
    out, _ = run(capsys, *window, "--data-dir", data_dir)
    assert {row["period"] for row in csv.DictReader(io.StringIO(out))} == {"2026-11"}
    # any other period keeps its own name
    out, _ = run(capsys, "--since", "2026-11-01", "--until", "2026-11-30", "--data-dir", data_dir)
    assert out.splitlines()[1].startswith("20261101T000000Z-20261130T000000Z,")


def test_stripe_ids_that_stripe_cannot_find_are_named_mapped_or_not(data_dir, capsys, tmp_path):
    # A meter finds its customer by Stripe id only; an id from the map that is not one (a
    # swapped column, an internal id) was sent without a word and its usage never invoiced.
    mapping = tmp_path / "stripe-customers.csv"
    mapping.write_text("customer_id,stripe_customer_id\nacme,acme_prod\nglobex,cus_G\n")
    stripe = ("--period", "2026-11", "--data-dir", data_dir, "--format", "stripe")
    out, err = run(capsys, *stripe, "--stripe-customers", str(mapping))
    sent = {json.loads(x)["payload"]["stripe_customer_id"] for x in out.splitlines()}
    assert sent == {"acme_prod", "cus_G"}
    assert f"1 Stripe id in {mapping} is not a Stripe customer id (cus_...), e.g. acme_prod" in err
    assert "initech" in err and "not billed, no Stripe customer id" in err
    mapping.write_text("customer_id,stripe_customer_id\nacme,cus_A\nglobex,cus_G\n")
    _, err = run(capsys, *stripe, "--stripe-customers", str(mapping))
    assert "not Stripe customer ids" not in err
    _, err = run(capsys, *stripe)  # no map: our ids are sent as they are
    assert "3 customer ids are not Stripe customer ids (cus_...), e.g. acme" in err
