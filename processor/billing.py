"""Revenue side: plans and customers from YAML, loaded into the ``plans``/``customers`` tables.

Format::

    plans:
      pro:
        monthly_price_usd: "99"        # strings or numbers; kept exact (Decimal)
        included_ai_usd: "20"          # AI allowance (optional; default: from target margin,
                                       # rounded half up to the micro-dollar)
        target_gross_margin_pct: 80    # optional, default 80; at most 4 decimal places
        markup_pct: 30                 # optional: export's markup on its customers' AI cost
    customers:
      acme:
        name: Acme Inc.
        plan: pro
        custom_price_usd: "149"        # optional negotiated price
        markup_pct: "10"               # optional: export's markup on this customer's AI cost
        workspaces: [ws_acme_1]

A customer's ``markup_pct`` wins over its plan's; `llm-margin export --markup-pct` applies to
customers where neither is set. Not set is ``None`` (NULL in the tables), not 0: a plan's
markup applies to a customer whose entry says nothing, but not to one that sets 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import yaml
from llm_margin.processor.config import ConfigError
from llm_margin.processor.reports.money import EXACT
from llm_margin.processor.storage import Store

# Digits after the point the columns keep: a value with more would be stored rounded, and
# billed (or measured against) at an amount nobody wrote.
_MARKUP_SCALE = 18  # markup_pct Decimal(38, 18)
_PRICE_SCALE = 6  # monthly_price_usd, included_ai_usd, custom_price_usd: Decimal(38, 6)
_MARGIN_SCALE = 4  # target_gross_margin_pct: Decimal(9, 4)
_MICRO = Decimal("0.000001")


@dataclass(frozen=True)
class Plan:
    plan: str
    monthly_price_usd: Decimal
    included_ai_usd: Decimal
    target_gross_margin_pct: Decimal
    markup_pct: Decimal | None = None  # None: not set (export's --markup-pct applies)


@dataclass(frozen=True)
class Customer:
    customer_id: str
    name: str
    plan: str
    custom_price_usd: Decimal | None = None
    workspaces: tuple[str, ...] = field(default_factory=tuple)
    markup_pct: Decimal | None = None  # None: not set (its plan's markup applies)


def _money(value: Any, where: str) -> Decimal:
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ConfigError(f"{where}: {value!r} is not an amount") from exc
    # is_finite first: ordering a NaN raises InvalidOperation (a traceback, not this message).
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{where}: {value!r} must be a non-negative amount")
    return amount


def _stored(value: Any, where: str, scale: int) -> Decimal:
    """An amount its Decimal(38, ``scale``) column holds exactly: more digits would be stored
    rounded, and the reports would then disagree with the file."""
    amount = _money(value, where)
    _, digits, exponent = amount.normalize(EXACT).as_tuple()
    assert isinstance(exponent, int)  # finite: checked by _money
    if exponent < -scale or len(digits) + exponent > 38 - scale:
        raise ConfigError(
            f"{where}: {value!r} has more digits than are stored (at most "
            f"{scale} after the decimal point and {38 - scale} before it)"
        )
    return amount


def _price(value: Any, where: str) -> Decimal:
    """A price in USD, as its Decimal(38, 6) column stores it."""
    return _stored(value, where, _PRICE_SCALE)


def _markup(value: Any, where: str) -> Decimal | None:
    """An optional markup in percent, exact, as its Decimal(38, 18) column stores it."""
    return None if value is None else _stored(value, where, _MARKUP_SCALE)


def _identifier(value: Any, where: str) -> str:
    """A customer, plan or workspace id as calls carry it. The instrumentation trims baggage
    values and drops control characters, so an id with spaces around it, or none at all, would
    never match a call: its customer would show no usage, silently."""
    text = str(value)
    if not text.strip():
        raise ConfigError(f"{where}: {value!r} is empty")
    if text != text.strip() or not text.isprintable():
        raise ConfigError(
            f"{where}: {value!r} has spaces around it or control characters, which calls' "
            "ids never have (the instrumentation trims them): no call would match it"
        )
    return text


def parse_billing(document: Any, source: str = "billing file") -> tuple[list[Plan], list[Customer]]:
    if not isinstance(document, dict):
        raise ConfigError(f"{source} must be a mapping with 'plans' and 'customers'")
    for section in ("plans", "customers"):
        if not isinstance(document.get(section) or {}, dict):
            raise ConfigError(f"{source}: {section} must be a mapping by name")
    plans: list[Plan] = []
    for name, spec in (document.get("plans") or {}).items():
        if not isinstance(spec, dict) or "monthly_price_usd" not in spec:
            raise ConfigError(f"{source}: plan {name!r} needs monthly_price_usd")
        name = _identifier(name, f"{source}: plan")
        price = _price(spec["monthly_price_usd"], f"plan {name} monthly_price_usd")
        margin = _stored(
            spec.get("target_gross_margin_pct", 80), f"plan {name} target margin", _MARGIN_SCALE
        )
        if margin > 100:
            raise ConfigError(f"{source}: plan {name} target_gross_margin_pct must be <= 100")
        if "included_ai_usd" in spec:
            allowance = _price(spec["included_ai_usd"], f"plan {name} included_ai_usd")
        else:
            # What the column keeps, rounded here so it is the same amount everywhere.
            allowance = (price * (Decimal(100) - margin) / Decimal(100)).quantize(
                _MICRO, ROUND_HALF_UP
            )
        markup = _markup(spec.get("markup_pct"), f"{source}: plan {name} markup_pct")
        plans.append(Plan(name, price, allowance, margin, markup))
    plan_names = {p.plan for p in plans}
    customers: list[Customer] = []
    for customer_id, spec in (document.get("customers") or {}).items():
        if not isinstance(spec, dict) or "plan" not in spec:
            raise ConfigError(f"{source}: customer {customer_id!r} needs a plan")
        if spec["plan"] not in plan_names:
            raise ConfigError(
                f"{source}: customer {customer_id!r} is on unknown plan {spec['plan']!r}"
            )
        customer_id = _identifier(customer_id, f"{source}: customer")
        workspaces = tuple(
            _identifier(w, f"{source}: customer {customer_id} workspace")
            for w in spec.get("workspaces") or ()
        )
        custom = spec.get("custom_price_usd")
        customers.append(
            Customer(
                customer_id=str(customer_id),
                name=str(spec.get("name", customer_id)),
                plan=str(spec["plan"]),
                custom_price_usd=None
                if custom is None
                else _price(custom, f"customer {customer_id} custom_price_usd"),
                workspaces=workspaces,
                markup_pct=_markup(
                    spec.get("markup_pct"), f"{source}: customer {customer_id} markup_pct"
                ),
            )
        )
    return plans, customers


def load_billing_file(path: str) -> tuple[list[Plan], list[Customer]]:
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read billing file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"billing file {path} is not valid YAML: {exc}") from exc
    return parse_billing(document, path)


def store_billing(store: Store, plans: list[Plan], customers: list[Customer]) -> None:
    """Replace the plans and customers tables' contents with these (newest version wins)."""
    version = time.time_ns()
    store.command("TRUNCATE TABLE IF EXISTS plans")
    store.command("TRUNCATE TABLE IF EXISTS customers")
    store.insert_rows(
        "plans",
        [
            (
                p.plan,
                p.monthly_price_usd,
                p.included_ai_usd,
                p.target_gross_margin_pct,
                p.markup_pct,
                version,
            )
            for p in plans
        ],
        (
            "plan",
            "monthly_price_usd",
            "included_ai_usd",
            "target_gross_margin_pct",
            "markup_pct",
            "version",
        ),
    )
    store.insert_rows(
        "customers",
        [
            (
                c.customer_id,
                c.name,
                c.plan,
                c.custom_price_usd,
                list(c.workspaces),
                c.markup_pct,
                version,
            )
            for c in customers
        ],
        ("customer_id", "name", "plan", "custom_price_usd", "workspaces", "markup_pct", "version"),
    )
