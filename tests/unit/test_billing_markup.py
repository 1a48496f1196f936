"""Markups per plan and per customer: parsing the billing file's ``markup_pct``, and how the
export picks each line's markup and names it in the table title."""

from __future__ import annotations

from decimal import Decimal as D
from decimal import localcontext

import pytest
import yaml
from llm_margin.processor.billing import parse_billing
from llm_margin.processor.config import ConfigError, load_serve_config
from llm_margin.processor.reports import export
from llm_margin.processor.reports.money import EXACT


def _document(plan_markup: str | None = None, customer_markup: str | None = None) -> dict:
    """A billing document from YAML text, so values arrive typed as YAML types them."""
    plan = f"{{monthly_price_usd: '99', markup_pct: {plan_markup}}}" if plan_markup else "{}"
    if plan == "{}":
        plan = "{monthly_price_usd: '99'}"
    customer = f"{{plan: pro, markup_pct: {customer_markup}}}" if customer_markup else "{plan: pro}"
    return yaml.safe_load(f"plans:\n  pro: {plan}\ncustomers:\n  acme: {customer}\n")


@pytest.mark.parametrize(
    "yaml_value, expected",
    [
        ("'10'", D("10")),
        ("30", D("30")),  # a YAML int
        ("0", D("0")),  # set to 0: not the same as not set
        ("'0'", D("0")),
        ("12.5", D("12.5")),  # a YAML float
        ("0.1", D("0.1")),  # through its shortest spelling, not 0.1000000000000000055511...
        ("33.333", D("33.333")),
        ("1.0e+1", D("10")),
        ("'33.333333333333333333'", D("33.333333333333333333")),  # 18 places: the column's
        ("'1.500000000000000000000000'", D("1.5")),  # trailing zeros are not digits lost
        ("'99999999999999999999.999999999999999999'", D("99999999999999999999.999999999999999999")),
        ("' 7.25 '", D("7.25")),
        ("null", None),  # written but empty: not set, as custom_price_usd
    ],
)
def test_markup_values_are_kept_exact(yaml_value, expected):
    plans, customers = parse_billing(_document(plan_markup=yaml_value))
    assert plans[0].markup_pct == expected and customers[0].markup_pct is None
    plans, customers = parse_billing(_document(customer_markup=yaml_value))
    assert customers[0].markup_pct == expected and plans[0].markup_pct is None


def test_no_markup_is_none_not_zero():
    plans, customers = parse_billing(_document())
    assert plans[0].markup_pct is None and customers[0].markup_pct is None


@pytest.mark.parametrize(
    "yaml_value, message",
    [
        ("-1", "must be a non-negative amount"),
        ("'-0.5'", "must be a non-negative amount"),
        ("-0.000001", "must be a non-negative amount"),
        (".inf", "must be a non-negative amount"),
        ("-.inf", "must be a non-negative amount"),
        (".nan", "must be a non-negative amount"),  # NaN was an uncaught InvalidOperation
        ("'NaN'", "must be a non-negative amount"),
        ("'sNaN'", "must be a non-negative amount"),
        ("'Infinity'", "must be a non-negative amount"),
        ("ten", "is not an amount"),
        ("'10%'", "is not an amount"),
        ("''", "is not an amount"),
        ("true", "is not an amount"),
        ("[10]", "is not an amount"),
        ("{pct: 10}", "is not an amount"),
        ("2026-01-01", "is not an amount"),
        ("'0.0000000000000000001'", "more digits than are stored"),  # 19 places
        ("'33.3333333333333333333'", "more digits than are stored"),
        ("'100000000000000000000'", "more digits than are stored"),  # 21 digits before .
        ("1.0e+25", "more digits than are stored"),
    ],
)
@pytest.mark.parametrize("entry", ["plan", "customer"])
def test_bad_markups_are_refused_naming_the_entry_and_field(yaml_value, message, entry):
    document = (
        _document(plan_markup=yaml_value)
        if entry == "plan"
        else _document(customer_markup=yaml_value)
    )
    name = "pro" if entry == "plan" else "acme"
    with pytest.raises(ConfigError, match=message) as info:
        parse_billing(document, "billing.yaml")
    assert f"billing.yaml: {entry} {name} markup_pct: " in str(info.value)


def test_a_not_a_number_price_is_refused_not_a_traceback():
    # The markup's validation shares _money: its NaN check ran after `amount < 0`, which
    # raises InvalidOperation for NaN.
    document = yaml.safe_load("plans:\n  pro: {monthly_price_usd: .nan}\n")
    with pytest.raises(ConfigError, match="plan pro monthly_price_usd: 'nan' must be a non-neg"):
        parse_billing(document)


def test_a_bad_markup_fails_serve_at_start(tmp_path):
    path = tmp_path / "billing.yaml"
    path.write_text(
        "plans:\n  pro: {monthly_price_usd: '99', markup_pct: 20}\n"
        "customers:\n  acme: {plan: pro, markup_pct: -10}\n"
    )
    with pytest.raises(ConfigError, match=r"customer acme markup_pct: -10 must be a non-neg"):
        load_serve_config(None, {"billing_file": str(path)})


class Rows:
    """A reader answering every query with ``rows``."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    def query(self, sql, parameters):
        return self

    def dicts(self):
        return [dict(r) for r in self.rows]


def _row(customer: str, cost: str, billing_markup: D | str | None) -> dict:
    return {"customer_id": customer, "plan": "pro", "provider": "openai", "model": "gpt-4o",
            "calls": 1, "input_tokens": 1, "output_tokens": 1, "unpriced_calls": 0,
            "cost_usd": D(cost), "billing_markup_pct": billing_markup}  # fmt: skip


@pytest.mark.parametrize(
    "customer, billing_markup, default, markup",
    [
        ("acme", D("10"), D("20"), D("10")),  # the billing file's (customer's, else plan's)
        ("acme", D("0"), D("20"), D("0")),  # set to 0 is not "not set"
        ("acme", None, D("20"), D("20")),  # neither set: the default
        ("acme", None, D("0"), D("0")),
        ("acme", "12.5", D("20"), D("12.5")),  # as a running processor's JSON may send it
        ("(unattributed)", D("30"), D("20"), D("20")),  # nobody's: always the default
    ],
)
def test_each_line_takes_its_own_markup(customer, billing_markup, default, markup):
    cost = "1234567.123456789012345678"
    lines = export.usage_lines(Rows([_row(customer, cost, billing_markup)]), "2026-11", default)
    assert lines[0]["markup_pct"] == markup
    with localcontext(EXACT):  # the oracle keeps every digit too
        assert lines[0]["amount_usd"] == D(cost) * (1 + markup / 100)
    assert "billing_markup_pct" not in lines[0]  # one markup column, the applied one


def test_totals_add_the_lines_own_amounts_exactly():
    rows = [_row("acme", "0.000000000000000001", D("33.333")), _row("globex", "3", None),
            _row("initech", "1234567.123456789012345678", D("12.5"))]  # fmt: skip
    lines = export.usage_lines(Rows(rows), "2026-11", D("20"))
    rendered, total = export.to_rows(lines)
    assert [r["markup_pct"] for r in rendered] == ["33.333", "20", "12.5"]
    assert [r["amount_usd"] for r in rendered] == [
        "0.00000000000000000133333",
        "3.6",
        "1388888.01388888763888888775",
    ]
    assert total["cost_usd"] == "1234570.123456789012345679"
    assert total["amount_usd"] == "1388891.61388888763888888908333"
    with localcontext(EXACT):  # 30 digits: more than the default context keeps
        assert D(total["amount_usd"]) == sum(D(r["amount_usd"]) for r in rendered)


@pytest.mark.parametrize(
    "markups, default, title",
    [
        ([], "20", "markup 20%"),  # no lines: the default is the only one
        (["20", "20"], "20", "markup 20%"),
        (["10", "10.000"], "20", "markup 10%"),  # one markup on every line is true as it is
        (["10", "20"], "20", "markup: per customer, default 20%"),
        (["10", "30", "0"], "0", "markup: per customer, default 0%"),
    ],
)
def test_the_table_title_names_the_markup_truly(markups, default, title):
    lines = [{"markup_pct": D(m)} for m in markups]
    assert export.markup_title(lines, D(default)) == title


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("plans:\n  pro: {monthly_price_usd: '99.0000001'}\n", "plan pro monthly_price_usd"),
        (
            "plans:\n  pro: {monthly_price_usd: 99, included_ai_usd: '19.1234567'}\n",
            "plan pro included_ai_usd",
        ),
        (
            "plans:\n  pro: {monthly_price_usd: 99}\n"
            "customers:\n  acme: {plan: pro, custom_price_usd: '149.00000001'}\n",
            "customer acme custom_price_usd",
        ),
    ],
)
def test_prices_with_more_digits_than_stored_are_refused(yaml_text, field):
    """Prices are Decimal(38, 6) columns: a seventh decimal would be stored rounded."""
    with pytest.raises(ConfigError, match=f"{field}: .* has more digits than are stored"):
        parse_billing(yaml.safe_load(yaml_text))


def test_prices_with_six_decimals_are_kept_exact():
    plans, customers = parse_billing(
        yaml.safe_load(
            "plans:\n  pro: {monthly_price_usd: '99.123456', included_ai_usd: '0.000001'}\n"
            "customers:\n  acme: {plan: pro, custom_price_usd: 149.5}\n"
        )
    )
    assert (plans[0].monthly_price_usd, plans[0].included_ai_usd) == (
        D("99.123456"),
        D("0.000001"),
    )
    assert customers[0].custom_price_usd == D("149.5")
