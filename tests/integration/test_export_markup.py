"""Markups per customer and per plan through the real `llm-margin export` CLI (a subprocess) over
an embedded store holding calls made by hand: each line's markup and amount against Decimal
oracles, and the totals' exact reconciliation, in csv, json, stripe and table; the same bytes
through a running processor; a store from before the markup columns gets them on start."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, localcontext
from decimal import Decimal as D

import pytest
import yaml
from llm_margin.processor.records import UNATTRIBUTED, CallRecord
from llm_margin.processor.reports.money import EXACT

from tests.conftest import bin_path, free_port, running_serve, store_with_billing
from tests.integration.test_export_store import _call

pytestmark = pytest.mark.integration

BILLING = """
plans:
  selfserve: {monthly_price_usd: "29", markup_pct: 30}
  pro: {monthly_price_usd: "99", markup_pct: "12.5"}
  enterprise: {monthly_price_usd: "499"}
customers:
  acme: {plan: enterprise, markup_pct: "10"}    # its own; its plan has none
  wayne: {plan: pro, markup_pct: 33.333}        # its own (a YAML float) over its plan's
  globex: {plan: selfserve, markup_pct: 0}      # its own 0 over its plan's 30: 0 is set
  initech: {plan: selfserve}                    # its plan's
  hooli: {plan: enterprise}                     # neither: the default
"""
# Parsed from YAML text, so wayne's 33.333 arrives as a YAML float.
BILLING_DOCUMENT = yaml.safe_load(BILLING)
DEFAULT = D("20")
# The markup each customer's lines must show with --markup-pct 20. stark has no billing entry
# and its calls carry plan pro: the plan the line shows has a markup. nobody has no entry and
# no plan. hooli's calls carry plan selfserve, but the billing file's plan (enterprise) is the
# one its lines show. (unattributed) is billed to nobody: the default, whatever its calls carry.
MARKUP = {
    "acme": D("10"),
    "wayne": D("33.333"),
    "globex": D("0"),
    "initech": D("30"),
    "hooli": DEFAULT,
    "stark": D("12.5"),
    "nobody": DEFAULT,
    UNATTRIBUTED: DEFAULT,
}
PLAN = {"acme": "enterprise", "wayne": "pro", "globex": "selfserve", "initech": "selfserve",
        "hooli": "enterprise", "stark": "pro", "nobody": "", UNATTRIBUTED: "selfserve"}  # fmt: skip

NOV = datetime(2026, 11, 1)
# customer, plan on the call, model, cost: Decimal(38, 18) costs with up to 25 digits
CALLS = [
    ("acme", "", "gpt-4o", "1234567.123456789012345678"),
    ("acme", "", "gpt-4o-mini", "0.000000000000000001"),
    ("acme", "", "gpt-4o-mini", "0.333333333333333333"),
    ("wayne", "pro", "gpt-4o", "7.777777777777777777"),
    ("globex", "selfserve", "gpt-4o", "2.5"),
    ("initech", "", "gpt-4o", "0.123456789012345678"),
    ("initech", "", "o3-mini", "10"),
    ("hooli", "selfserve", "gpt-4o", "3.141592653589793238"),
    ("stark", "starter", "gpt-4o", "1"),  # older call, another plan: the newest plan counts
    ("stark", "pro", "gpt-4o-mini", "0.000001"),
    ("nobody", "", "gpt-4o", "0.05"),
    (UNATTRIBUTED, "selfserve", "gpt-4o", "0.25"),
]
OUTSIDE = ("acme", "", "gpt-4o", "100")  # December: in no line


def _record(n: int, ts: datetime, customer: str, plan: str, model: str, cost: str) -> CallRecord:
    return _call(n, ts, customer, cost, plan=plan, route=f"openai/{model}", request_model=model)


def _records() -> list[CallRecord]:
    """CALLS an hour apart in November (in list order), then one call in December."""
    november = [_record(n, NOV + timedelta(hours=n), *c) for n, c in enumerate(CALLS, start=1)]
    return [*november, _record(0, NOV.replace(month=12), *OUTSIDE)]


def _oracle() -> dict[tuple[str, str], dict[str, D]]:
    """(customer, model) -> expected cost, markup and amount, computed with every digit."""
    lines: dict[tuple[str, str], dict[str, D]] = defaultdict(lambda: {"cost": D(0)})
    with localcontext(EXACT):
        for customer, _, model, cost in CALLS:
            lines[(customer, model)]["cost"] += D(cost)
        for (customer, _), line in lines.items():
            line["markup"] = MARKUP[customer]
            line["amount"] = line["cost"] * (1 + MARKUP[customer] / 100)
    return dict(lines)


ORACLE = _oracle()
with localcontext(EXACT):
    STORED_COST = sum((D(c) for *_, c in CALLS), D(0))
    TOTAL_AMOUNT = sum((line["amount"] for line in ORACLE.values()), D(0))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("markup")
    with store_with_billing(path, BILLING_DOCUMENT) as store:
        store.insert_calls(_records())
        stored = store.query(
            "SELECT sum(cost_usd) FROM llm_calls FINAL WHERE ts >= {s:DateTime64(6)} "
            "AND ts < {u:DateTime64(6)}",
            {"s": NOV, "u": NOV.replace(month=12)},
        ).rows[0][0]
        assert D(stored) == STORED_COST  # the store's own sum of the period: the oracle's
    return str(path / "data")


def export(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [bin_path("llm-margin"), "export", "--period", "2026-11", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


def check_lines(lines: list[dict]) -> None:
    """Each line's plan, markup and amount exactly as the oracle's, every line there once."""
    assert {(r["customer_id"], r["model"]) for r in lines} == set(ORACLE)
    assert len(lines) == len(ORACLE)
    for row in lines:
        expected = ORACLE[(row["customer_id"], row["model"])]
        assert row["plan"] == PLAN[row["customer_id"]], row
        assert D(row["cost_usd"]) == expected["cost"], row
        assert D(row["markup_pct"]) == expected["markup"], row
        assert D(row["amount_usd"]) == expected["amount"], row


def test_csv_lines_take_their_customers_or_plans_markup(data_dir):
    out = export("--data-dir", data_dir, "--markup-pct", "20").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    lines, total = rows[:-1], rows[-1]
    check_lines(lines)
    assert total["customer_id"] == "TOTAL" and total["markup_pct"] == ""
    assert D(total["cost_usd"]) == STORED_COST
    with localcontext(EXACT):
        assert D(total["amount_usd"]) == sum(D(r["amount_usd"]) for r in lines) == TOTAL_AMOUNT
    # the markups differ: not one markup times the stored cost
    assert D(total["amount_usd"]) != STORED_COST * (1 + DEFAULT / 100)


def test_json_lines_are_the_csv_lines(data_dir):
    lines = json.loads(
        export("--data-dir", data_dir, "--markup-pct", "20", "--format", "json").stdout
    )
    check_lines(lines)
    assert all(isinstance(r[c], str) for r in lines for c in ("markup_pct", "amount_usd"))


def test_stripe_bills_each_customer_its_own_lines_amounts(data_dir):
    result = export("--data-dir", data_dir, "--markup-pct", "20", "--format", "stripe")
    events = {e["payload"]["customer_id"]: e for e in map(json.loads, result.stdout.splitlines())}
    billed = {customer for customer, _ in ORACLE} - {UNATTRIBUTED}
    assert set(events) == billed
    for customer, event in events.items():
        with localcontext(EXACT):
            cost = sum((x["cost"] for (c, _), x in ORACLE.items() if c == customer), D(0))
            amount = sum((x["amount"] for (c, _), x in ORACLE.items() if c == customer), D(0))
            value = int((amount / D("0.000001")).to_integral_value(rounding=ROUND_HALF_UP))
        assert D(event["payload"]["cost_usd"]) == cost, customer
        assert D(event["payload"]["amount_usd"]) == amount, customer
        assert event["payload"]["value"] == str(value), customer
    # (unattributed) is billed to nobody, as before: its cost is named on stderr
    assert "0.25 USD of unattributed cost is not billed to anyone" in result.stderr
    with localcontext(EXACT):
        assert sum(D(e["payload"]["cost_usd"]) for e in events.values()) + D("0.25") == STORED_COST


def test_the_default_markup_is_zero_and_the_table_title_says_markups_differ(data_dir):
    out = export("--data-dir", data_dir).stdout  # no --markup-pct: 0 where nothing is set
    rows = {(r["customer_id"], r["model"]): r for r in csv.DictReader(io.StringIO(out))}
    for customer in ("hooli", "nobody", UNATTRIBUTED):
        assert rows[(customer, "gpt-4o")]["markup_pct"] == "0"
        assert rows[(customer, "gpt-4o")]["amount_usd"] == rows[(customer, "gpt-4o")]["cost_usd"]
    assert rows[("initech", "o3-mini")]["markup_pct"] == "30"
    assert rows[("initech", "o3-mini")]["amount_usd"] == "13"
    table = export("--data-dir", data_dir, "--markup-pct", "20", "--format", "table").stdout
    assert table.splitlines()[0] == "export 2026-11 (markup: per customer, default 20%)"


def test_a_running_processor_answers_the_same_bytes(data_dir, tmp_path):
    # Read commands ask a running serve: the markups cross its JSON wire and stay exact.
    def outputs() -> dict[str, str]:
        return {
            fmt: export("--data-dir", data_dir, "--markup-pct", "20", "--format", fmt).stdout
            for fmt in ("csv", "json", "stripe")
        }

    direct = outputs()
    billing = tmp_path / "billing.yaml"
    billing.write_text(BILLING)
    ports = ("--otlp-grpc-port", str(free_port()), "--otlp-http-port", str(free_port()))
    with running_serve(data_dir, *ports, "--billing-file", str(billing)):
        assert os.path.exists(os.path.join(data_dir, "llm-margin-serve.json"))  # asked, not opened
        remote = outputs()
    check_lines(list(csv.DictReader(io.StringIO(remote["csv"])))[:-1])
    assert remote == direct


def test_a_store_from_before_the_markup_columns_gets_them_on_start(tmp_path):
    from llm_margin.processor.billing import parse_billing, store_billing
    from llm_margin.processor.storage import Store

    def columns(store: Store, table: str) -> list[str]:
        return [r[0] for r in store.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase() "
            "AND table = {t:String} ORDER BY position", {"t": table}).rows]  # fmt: skip

    path = str(tmp_path / "data")
    store = Store.open(data_dir=path)
    try:  # the tables as the previous release left them, with a billing file loaded
        store.command("ALTER TABLE plans DROP COLUMN markup_pct")
        store.command("ALTER TABLE customers DROP COLUMN markup_pct")
        store.command("INSERT INTO plans (plan, monthly_price_usd, version) VALUES ('pro', 99, 1)")
        store.insert_calls(_records()[:1])
    finally:
        store.close()
    store = Store.open(data_dir=path)
    try:
        assert columns(store, "plans")[-1] == "markup_pct"
        assert columns(store, "customers")[-1] == "markup_pct"
        assert store.query("SELECT plan, markup_pct FROM plans FINAL").rows == [("pro", None)]
        store_billing(store, *parse_billing(BILLING_DOCUMENT))
        stored = dict(store.query("SELECT customer_id, markup_pct FROM customers FINAL").rows)
        assert stored == {"acme": D("10"), "wayne": D("33.333"), "globex": D("0"),
                          "initech": None, "hooli": None}  # fmt: skip
    finally:
        store.close()
    rows = list(csv.DictReader(io.StringIO(export("--data-dir", path, "--markup-pct", "5").stdout)))
    assert [(r["customer_id"], r["markup_pct"]) for r in rows] == [("acme", "10"), ("TOTAL", "")]
    assert D(rows[0]["amount_usd"]) == D("1234567.123456789012345678") * D("1.1")
