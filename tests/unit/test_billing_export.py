"""Billing export and reconciliation helpers, table by table."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from llm_margin.processor.reports import export, reconcile


@pytest.mark.parametrize(
    "period, start, end",
    [
        ("2026-11", datetime(2026, 11, 1), datetime(2026, 12, 1)),
        ("2026-12", datetime(2026, 12, 1), datetime(2027, 1, 1)),
        ("2028-02", datetime(2028, 2, 1), datetime(2028, 3, 1)),
    ],
)
def test_month_bounds(period, start, end):
    assert export.month_bounds(period) == (
        start.replace(tzinfo=timezone.utc),
        end.replace(tzinfo=timezone.utc),
    )


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "26-11", "", "2026-11-01"])
def test_month_bounds_rejects(bad):
    with pytest.raises(ValueError, match="--period"):
        export.month_bounds(bad)


@pytest.mark.parametrize("bad", ["0001-01", "1899-12", "2300-01", "9999-12"])
def test_month_bounds_outside_the_stores_range(bad):
    # 0001-01 reached ClickHouse and failed as its parameter error; 9999-12 overflowed.
    with pytest.raises(ValueError, match="out of range: use a month from 1900 to 2299"):
        export.month_bounds(bad)


@pytest.mark.parametrize(
    "amounts, unit, expected",
    [
        # equal usage, equal value: no customer carries another's remainder
        (["0.0000014", "0.0000014", "0.0000014"], "0.000001", [1, 1, 1]),
        (["0.006", "0.006", "0.006"], "0.01", [1, 1, 1]),
        (["0.005", "0.0049999", "0"], "0.01", [1, 0, 0]),  # half a unit rounds up
        (["1", "2"], "0.5", [2, 4]),
        (["0.3333333", "0.3333333", "0.3333334"], "0.01", [33, 33, 33]),
    ],
)
def test_stripe_values_round_each_customer_on_its_own(amounts, unit, expected):
    lines = [
        {"customer_id": f"c{i}", "cost_usd": D(a), "amount_usd": D(a)}
        for i, a in enumerate(amounts)
    ]
    text, _ = export.to_stripe(lines, "2026-11", unit_usd=D(unit))
    values = [int(json.loads(x)["payload"]["value"]) for x in text.splitlines()]
    assert values == expected
    # a customer's value does not depend on who else is billed
    alone = [export.to_stripe([line], "2026-11", unit_usd=D(unit))[0] for line in lines]
    assert [int(json.loads(x)["payload"]["value"]) for x in alone] == expected


def test_stripe_lines_leave_out_unattributed():
    lines = [
        {"customer_id": "acme", "cost_usd": D("1.5"), "amount_usd": D("1.8")},
        {"customer_id": "acme", "cost_usd": D("0.25"), "amount_usd": D("0.3")},
        {"customer_id": "(unattributed)", "cost_usd": D("0.1"), "amount_usd": D("0.12")},
    ]
    text, left_out = export.to_stripe(lines, "2026-11")
    assert left_out["unattributed_cost_usd"] == D("0.1")
    assert text.count("\n") == 1 and '"value": "2100000"' in text and '"cost_usd": "1.75"' in text


@pytest.mark.parametrize(
    "name, expected",
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("GPT-4o-mini", "gpt-4o-mini"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("o3-mini", "o3-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        # Anthropic's Console export names models by display name
        ("Claude Sonnet 4.5", "claude-sonnet-4-5"),
        ("Claude Opus 4", "claude-opus-4"),
        ("Claude Sonnet 3.7", "claude-3-7-sonnet"),
        ("Claude 3.5 Haiku", "claude-3-5-haiku"),
        ("Claude 3.5 Sonnet 2024-10-22", "claude-3-5-sonnet"),
        # OpenAI's older snapshots end in MMDD; Anthropic's aliases of a whole version in -0
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-4-1106-preview", "gpt-4-1106-preview"),
        ("claude-sonnet-4-0", "claude-sonnet-4"),
        ("claude-opus-4-0", "claude-opus-4"),
        ("Claude Opus 4.0", "claude-opus-4"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-opus-4-1", "claude-opus-4-1"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
    ],
)
def test_normalise_model(name, expected):
    assert reconcile.normalise_model(name) == expected


def stored(cost="1", unpriced=0, failed=0, unattributed=0, restated=None, still_unpriced=None):
    row = {
        "stored_cost_usd": D(cost),
        "calls": 3,
        "unpriced_calls": unpriced,
        "failed_calls": failed,
        "failed_calls_without_usage": failed,
        "unattributed_calls": unattributed,
    }
    if restated is not None:  # after `reprice`
        row["restated_cost_usd"] = D(restated)
        row["restated_unpriced_calls"] = unpriced if still_unpriced is None else still_unpriced
    return row


@pytest.mark.parametrize(
    "provider, row, starts",
    [
        (D("1.004"), stored(), "match"),
        (D("1"), None, "unattributed"),
        (None, stored(), "not in the provider export"),
        (D("1.5"), stored(unpriced=2), "unpriced"),
        (D("1.5"), stored(failed=1), "failed-but-billed"),
        (D("1.5"), stored(), "price mismatch: provider charged 50.00% more"),
        (D("0.5"), stored(), "price mismatch: provider charged 50.00% less"),
        (D("0.5"), stored(cost="0"), "price mismatch"),
        # after `reprice`: the restated cost is compared, the as-charged one named
        (
            D("1.5"),
            stored(unpriced=2, restated="1.5", still_unpriced=0),
            "match; restated by reprice: 1.5 USD (as charged 1 USD)",
        ),
        (D("2"), stored(unpriced=2, restated="1.5", still_unpriced=1), "unpriced: 1 calls"),
        (D("0.88"), stored(restated="0.88"), "match; restated by reprice: 0.88 USD"),
        (D("1"), stored(restated="0.88"), "price mismatch: provider charged 13.64% more"),
        (D("1"), stored(restated="1"), "match"),
    ],
)
def test_explain(provider, row, starts):
    assert reconcile.explain(provider, row, D("0.01")).startswith(starts)


def test_read_examples_and_reject_bad(tmp_path):
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
    provider, totals = reconcile.read_provider_usage(
        os.path.join(root, "provider-usage-openai.csv")
    )
    assert provider == "openai"
    assert totals[(datetime(2026, 11, 20).date(), "gpt-4o-mini")] == D("0.0424")
    provider, totals = reconcile.read_provider_usage(
        os.path.join(root, "provider-usage-anthropic.csv")
    )
    assert provider == "anthropic"
    assert totals[(datetime(2026, 11, 20).date(), "claude-sonnet-4-5")] == D("0.81")
    bad = tmp_path / "bad.csv"
    bad.write_text("usage_date_utc,model,cost_usd\n2026-11-20,x,abc\n")
    with pytest.raises(reconcile.ProviderUsageError, match="line 2"):
        reconcile.read_provider_usage(str(bad))


@pytest.mark.parametrize(
    "period, customer",
    [
        ("2026-11", "acme"),
        ("2026-11", "c" * 88),  # exactly 100 characters
        ("2026-11", "c" * 128),  # the longest customer id the instrumentation sends
        ("20261101T000000Z-20261115T000000Z", "tenant/ü" * 16),
    ],
)
def test_stripe_identifiers_fit_and_are_stable(period, customer):
    def identifier(customer_id: str) -> str:
        line = {"customer_id": customer_id, "cost_usd": D("1"), "amount_usd": D("1")}
        until = datetime(2026, 11, 15, tzinfo=timezone.utc)
        return json.loads(export.to_stripe([line], period, until=until)[0])["identifier"]

    assert len(identifier(customer).encode()) <= 100  # Stripe's limit
    assert f"-{period}-" in identifier(customer)
    assert identifier(customer) == identifier(customer)  # the same on every run
    assert identifier(customer + "x") != identifier(customer)


NOV_END = datetime(2026, 12, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "now, outcome",
    [
        (datetime(2026, 11, 15, tzinfo=timezone.utc), "has not ended"),  # mid-month
        (NOV_END - timedelta(seconds=1), "has not ended"),
        (NOV_END, None),
        (datetime(2027, 1, 4, tzinfo=timezone.utc), None),  # 34 days after the last second
        (datetime(2027, 1, 5, 12, tzinfo=timezone.utc), "more than 35 days ago"),
    ],
)
def test_stripe_period_warns_unless_ended_and_recent(now, outcome):
    if outcome is None:
        assert export.stripe_period_warning(NOV_END, now) is None
    else:
        assert outcome in export.stripe_period_warning(NOV_END, now)


@pytest.mark.parametrize(
    "now, stamped",
    [
        (datetime(2026, 11, 15, 12, tzinfo=timezone.utc), datetime(2026, 11, 15, 12)),
        (NOV_END + timedelta(days=3), NOV_END - timedelta(seconds=1)),
        (None, NOV_END - timedelta(seconds=1)),
    ],
)
def test_stripe_events_are_never_stamped_ahead(now, stamped):
    line = {"customer_id": "acme", "cost_usd": D("1.5"), "amount_usd": D("1.5")}
    text, _ = export.to_stripe([line], "2026-11", now=now)
    expected = int(stamped.replace(tzinfo=timezone.utc).timestamp())
    if now is not None and now < NOV_END:
        expected -= 1  # the second before the export
    assert json.loads(text)["timestamp"] == expected


def test_stripe_events_go_to_the_mapped_stripe_customer(tmp_path):
    path = tmp_path / "stripe-customers.csv"
    path.write_text(
        "\ufeffCustomer_ID,Stripe_Customer_ID,note\nacme,cus_A,x\n\n,,\nglobex,cus_G,\n"
    )
    mapping = export.read_stripe_customers(str(path))
    assert mapping == {"acme": "cus_A", "globex": "cus_G"}
    lines = [
        {"customer_id": c, "cost_usd": D("1"), "amount_usd": D("1.2")}
        for c in ("acme", "globex", "initech", "(unattributed)")
    ]
    text, left_out = export.to_stripe(lines, "2026-11", stripe_customers=mapping)
    events = [json.loads(x) for x in text.splitlines()]
    assert [(e["payload"]["stripe_customer_id"], e["payload"]["customer_id"]) for e in events] == [
        ("cus_A", "acme"),
        ("cus_G", "globex"),
    ]
    assert events[0]["identifier"] == "llm-margin-llm_usage-2026-11-acme"  # stable whatever the map
    assert left_out["unmapped"] == {"initech": D("1.2")}
    assert left_out["unattributed_cost_usd"] == D("1")


@pytest.mark.parametrize(
    "text, message",
    [
        ("customer_id,stripe\nacme,cus_A\n", "needs the columns"),
        ("customer_id,stripe_customer_id\nacme,\n", "line 2: both ids"),
        ("customer_id,stripe_customer_id\nacme,cus_A\nacme,cus_B\n", "line 3: 'acme' has two"),
    ],
)
def test_bad_stripe_customer_maps_are_refused(tmp_path, text, message):
    path = tmp_path / "map.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        export.read_stripe_customers(str(path))


def test_a_period_without_calls_still_names_its_total():
    assert export.to_csv([], "2026-11").splitlines() == [
        ",".join(export.CSV_COLUMNS),
        "2026-11,TOTAL,,,,0,0,0,0,0,,0",
    ]


def test_stripe_counts_the_unpriced_calls_it_bills_at_zero():
    lines = [
        {"customer_id": "initech", "cost_usd": D(0), "amount_usd": D(0), "unpriced_calls": 2},
        {"customer_id": "acme", "cost_usd": D(1), "amount_usd": D(1), "unpriced_calls": 1},
        {
            "customer_id": "(unattributed)",
            "cost_usd": D(0),
            "amount_usd": D(0),
            "unpriced_calls": 5,
        },
    ]
    text, left_out = export.to_stripe(lines, "2026-11")
    assert left_out["unpriced_calls"] == 3
    assert [json.loads(x)["payload"]["value"] for x in text.splitlines()] == ["1000000", "0"]


class Rows:
    def __init__(self, rows):
        self.rows = rows

    def query(self, sql, parameters):
        return self

    def dicts(self):
        return self.rows


def test_markup_and_totals_keep_every_digit():
    # A Decimal(38, 18) cost with 25 significant digits times a 33.333% markup has 31: more
    # than Python's default 28-digit context keeps.
    cost = D("1234567.123456789012345678")
    row = {"customer_id": "acme", "plan": "pro", "provider": "openai", "model": "gpt-4o",
           "calls": 1, "input_tokens": 1, "output_tokens": 1, "unpriced_calls": 0,
           "cost_usd": cost}  # fmt: skip
    lines = export.usage_lines(
        Rows([row, {**row, "customer_id": "globex"}]), "2026-11", D("33.333")
    )
    assert lines[0]["amount_usd"] == D("1646085.38271864049383086284774")
    assert lines[0]["amount_usd"] / D("1.33333") == cost
    rows, total = export.to_rows(lines)
    assert rows[0]["amount_usd"] == "1646085.38271864049383086284774"
    assert total["amount_usd"] == "3292170.76543728098766172569548"
    assert total["cost_usd"] == "2469134.246913578024691356"


@pytest.mark.parametrize(
    "period, refused",
    [
        (["--period", "2025-11"], False),
        (["--since", "2025-11-01", "--until", "2025-11-15"], False),
        (["--since", "2025-11-01T00:00:00Z", "--until", "2025-11-15T12:00"], False),
        (["--since", "2025-11-01"], True),  # until now: a new period on every run
        (["--since", "30000d", "--until", "2025-11-15"], True),
        (["--since", "2025-11-01", "--until", "1h"], True),
    ],
)
def test_stripe_warns_of_a_period_that_changes_on_every_run(tmp_path, capsys, period, refused):
    from llm_margin.processor.cli import main

    data_dir = str(tmp_path / "none")
    assert main(["export", *period, "--format", "stripe", "--data-dir", data_dir]) == 2
    error = capsys.readouterr().err
    assert ("new period, with new identifiers, on every run" in error) == refused
    assert "no llm-margin data" in error  # a warning: the export goes on (to the missing store)
    assert main(["export", *period, "--data-dir", data_dir]) == 2  # CSV takes any period
    assert "no llm-margin data" in capsys.readouterr().err


def test_stripe_identifiers_of_two_meters_do_not_collide():
    # Stripe refuses an identifier it has seen in the last 24 hours whatever the meter (and
    # recommends globally unique ones): the same customer and period sent to a second meter
    # must not be taken for a re-send of the first.
    line = {"customer_id": "acme", "cost_usd": D("1"), "amount_usd": D("1.2")}

    def identifier(event_name: str, customer: str = "acme") -> str:
        text, _ = export.to_stripe([{**line, "customer_id": customer}], "2026-11",
                                   event_name=event_name)  # fmt: skip
        return json.loads(text)["identifier"]

    assert identifier("llm_usage") == "llm-margin-llm_usage-2026-11-acme"
    assert identifier("llm_usage") == identifier("llm_usage")  # a re-run: the same
    assert identifier("llm_usage") != identifier("llm_cost_markup")
    long_name = "m" * 100  # Stripe's longest event name
    for customer in ("acme", "c" * 128):
        assert len(identifier(long_name, customer).encode()) <= 100
        assert identifier(long_name, customer).startswith("llm-margin-2026-11-")
        assert identifier(long_name, customer) != identifier(long_name[:-1] + "n", customer)
    assert identifier(long_name, "acme") != identifier(long_name, "acmf")
