"""`llm-margin report` given only --until: the period ends there and starts a month (weekly:
7 days) before it, with a call exactly at --until left out and one at the start kept. Both
used to start from now: `--until 2026-12-01` was refused as the empty [Dec 1, Dec 1), and
`report weekly --until D` covered the 7 days before now (refused, or silently shorter)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest
from llm_margin.processor import cli
from llm_margin.processor.billing import load_billing_file, store_billing
from llm_margin.processor.records import CallRecord
from llm_margin.processor.storage import Store

from tests.integration.test_html import BILLING

pytestmark = pytest.mark.integration


def _call(n: int, ts: datetime, cost: str) -> CallRecord:
    return CallRecord(
        ts=ts,
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        task_id=f"t{n}",
        customer_id="acme",
        route="openai/gpt-4o",
        cost_usd=Decimal(cost),
        priced=True,
        version=1,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("period") / "data")
    store = Store.open(data_dir=path)
    try:
        store_billing(store, *load_billing_file(BILLING))  # acme: pro
        store.insert_calls(
            [
                _call(1, datetime(2026, 10, 31, 23, 59, 59, 999999), "1"),
                _call(2, datetime(2026, 11, 1), "2"),  # first instant of November
                _call(3, datetime(2026, 11, 7, 23, 59, 59, 999999), "4"),
                _call(4, datetime(2026, 11, 8), "8"),  # at the weekly --until: left out
                _call(5, datetime(2026, 11, 30, 23, 59, 59, 999999), "16"),
                _call(6, datetime(2026, 12, 1), "32"),  # at --until: left out
            ]
        )
    finally:
        store.close()
    return path


def _json(capsys, *argv: str):
    assert cli.main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_until_alone_is_the_month_before_it(data_dir, capsys):
    rows = _json(
        capsys, "report", "customers", "--data-dir", data_dir, "--format", "json",
        "--until", "2026-12-01",
    )  # fmt: skip
    acme = next(r for r in rows if r["customer_id"] == "acme")
    assert (acme["calls"], acme["cost_usd"]) == (4, "30")


def test_weekly_until_is_the_seven_days_before_it(data_dir, capsys):
    page = _json(
        capsys, "report", "weekly", "--data-dir", data_dir, "--format", "json",
        "--until", "2026-11-08",
    )  # fmt: skip
    assert (page["since"], page["until"]) == (
        "2026-11-01T00:00:00+00:00",
        "2026-11-08T00:00:00+00:00",
    )
    assert (page["totals"]["calls"], page["totals"]["cost_usd"]) == (2, "6")


def test_budgets_until_alone_is_the_month_that_ended(data_dir, capsys):
    """budgets measures the calendar month of the period's last instant, as the other views
    do: `--until 2026-12-01` is November (it measured December, not begun)."""
    rows = _json(
        capsys, "report", "budgets", "--data-dir", data_dir, "--format", "json",
        "--until", "2026-12-01",
    )  # fmt: skip
    acme = next(r for r in rows if r["scope"] == "customer" and r["scope_id"] == "acme")
    assert (acme["calls"], acme["spent_usd"]) == (4, "30")
    assert acme["projected_usd"] == "30"  # the whole month has passed
