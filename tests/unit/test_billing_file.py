"""The billing file's ids and margins: refused at start when no call could match them or the
tables would store another value than the file says."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
import yaml
from llm_margin.processor.billing import parse_billing
from llm_margin.processor.config import ConfigError


def _parse(text: str):
    return parse_billing(yaml.safe_load(text))


PRO = "plans:\n  pro: {monthly_price_usd: '99'}\n"


@pytest.mark.parametrize(
    "text, message",
    [
        (PRO + "customers:\n  'acme ': {plan: pro}\n", r"customer: 'acme ' has spaces around it"),
        (PRO + "customers:\n  ' acme': {plan: pro}\n", r"customer: ' acme' has spaces around it"),
        (PRO + 'customers:\n  "ac\\tme": {plan: pro}\n', r"customer: 'ac\\tme' has spaces"),
        (PRO + "customers:\n  '': {plan: pro}\n", r"customer: '' is empty"),
        (PRO + "customers:\n  ' ': {plan: pro}\n", r"customer: ' ' is empty"),
        (
            PRO + "customers:\n  acme: {plan: pro, workspaces: [ws_1, 'ws_2 ']}\n",
            r"customer acme workspace: 'ws_2 ' has spaces around it",
        ),
        ("plans:\n  'pro ': {monthly_price_usd: '99'}\n", r"plan: 'pro ' has spaces around it"),
        (
            "plans:\n  pro: {monthly_price_usd: '99', target_gross_margin_pct: '66.66667'}\n",
            r"plan pro target margin: '66.66667' has more digits than are stored",
        ),
    ],
    ids=[
        "trailing space",
        "leading space",
        "tab",
        "empty",
        "blank",
        "workspace",
        "plan",
        "margin decimals",
    ],  # fmt: skip
)
def test_ids_no_call_could_carry_and_unstorable_margins_are_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        _parse(text)


def test_odd_but_valid_ids_are_kept_as_written():
    text = PRO + "customers:\n  \"o'brien é\": {plan: pro, workspaces: ['ws 1', 50%_off]}\n"
    (customer,) = _parse(text)[1]
    assert (customer.customer_id, customer.workspaces) == ("o'brien é", ("ws 1", "50%_off"))


@pytest.mark.parametrize(
    "price, margin, allowance",
    [
        ("99", "80", D("19.8")),
        ("100", "66.6667", D("33.3333")),  # 33.3333 exactly: nothing to round
        ("99.99", "66.6667", D("33.329967")),  # 33.32996667 rounded half up
        ("0.000001", "50", D("0.000001")),  # 0.0000005: half up
        ("1", "99.9999", D("0.000001")),  # 0.000001 exactly
    ],
)
def test_computed_allowance_is_the_amount_its_column_keeps(price, margin, allowance):
    (plan,), _ = _parse(
        f"plans:\n  pro: {{monthly_price_usd: '{price}', target_gross_margin_pct: '{margin}'}}\n"
    )
    assert plan.included_ai_usd == allowance
