"""The ``budgets:`` section of the billing YAML (read once at start, validated).

Example (every key optional)::

    budgets:
      interval_seconds: 30            # how often stored data is evaluated
      soft_alert_pct: [50, 80]        # of the AI allowance, used and projected to month end
      min_projection_hours: 24        # projections start once the month is this old (24 h at least)
      degrade_at_pct: 100             # decision "degrade" from here (app may switch model)
      block_at_pct: null              # decision "block" from here (a hard allowance cap)
      daily_spend_usd: "50"           # hard cap: one customer's spend in one UTC day
      workspace_daily_spend_usd: null # hard cap: one workspace's spend in one UTC day
      max_attempts_per_task: 8        # runaway loop: calls in one task
      max_cost_per_task_usd: "2"      # runaway loop: cost of one task
      webhook_url: https://hooks.slack.com/services/...   # or env LLM_MARGIN_ALERT_WEBHOOK_URL
      customers:                      # per-customer overrides
        acme: {daily_spend_usd: "200", block_at_pct: 150}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any

import yaml
from llm_margin.processor.config import ConfigError

WEBHOOK_ENV = "LLM_MARGIN_ALERT_WEBHOOK_URL"
_OVERRIDABLE = ("daily_spend_usd", "degrade_at_pct", "block_at_pct")


@dataclass(frozen=True)
class BudgetConfig:
    interval_seconds: float = 30.0
    soft_alert_pct: tuple[Decimal, ...] = (Decimal(50), Decimal(80))
    min_projection_hours: float = 24.0
    degrade_at_pct: Decimal | None = Decimal(100)
    block_at_pct: Decimal | None = None
    daily_spend_usd: Decimal | None = None
    workspace_daily_spend_usd: Decimal | None = None
    max_attempts_per_task: int | None = None
    max_cost_per_task_usd: Decimal | None = None
    webhook_url: str | None = None
    webhook_timeout_seconds: float = 5.0
    customers: dict[str, BudgetConfig] = field(default_factory=dict)

    def for_customer(self, customer_id: str) -> BudgetConfig:
        return self.customers.get(customer_id, self)


def _decimal(value: Any, where: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value))
    except Exception as exc:
        raise ConfigError(f"budgets: {where}: {value!r} is not a number") from exc
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"budgets: {where}: {value!r} must be a non-negative number")
    return amount


# Percentages that name an alert's threshold are stored in llm_alerts.threshold_pct,
# Decimal(9, 4): one the column cannot hold exactly would never match its stored key (the
# alert would fire again after every restart), or would fail the insert.
_PCT_MAX = Decimal(100000)
_PCT_PLACES = 4


def _pct(value: Any, where: str) -> Decimal | None:
    pct = _decimal(value, where)
    if pct is None:
        return None
    if pct >= _PCT_MAX:
        raise ConfigError(f"budgets: {where}: {value!r} must be below {_PCT_MAX}")
    if pct != pct.quantize(Decimal(1).scaleb(-_PCT_PLACES)):
        raise ConfigError(f"budgets: {where}: {value!r} has more than {_PCT_PLACES} decimal places")
    return pct


def parse_budgets(section: Any, environ: dict[str, str] | None = None) -> BudgetConfig:
    environ = os.environ if environ is None else environ
    section = section or {}
    if not isinstance(section, dict):
        raise ConfigError("budgets: must be a mapping")
    known = {f.name for f in fields(BudgetConfig)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"budgets: unknown keys {unknown}; known: {sorted(known)}")
    values: dict[str, Any] = {}
    for name in ("interval_seconds", "min_projection_hours", "webhook_timeout_seconds"):
        if name in section:
            number = _decimal(section[name], name)
            if number is None or number <= 0:
                raise ConfigError(f"budgets: {name} must be a positive number")
            values[name] = float(number)
    if "soft_alert_pct" in section:
        raw = section["soft_alert_pct"]
        if not isinstance(raw, list) or not raw or None in raw:
            raise ConfigError("budgets: soft_alert_pct must be a list such as [50, 80]")
        values["soft_alert_pct"] = tuple(sorted(_pct(v, "soft_alert_pct") for v in raw))
    for name in ("degrade_at_pct", "block_at_pct"):
        if name in section:
            values[name] = _pct(section[name], name)
    for name in (
        "daily_spend_usd",
        "workspace_daily_spend_usd",
        "max_cost_per_task_usd",
    ):
        if name in section:
            values[name] = _decimal(section[name], name)
    if section.get("max_attempts_per_task") is not None:
        attempts = section["max_attempts_per_task"]
        if not isinstance(attempts, int) or attempts < 2:
            raise ConfigError("budgets: max_attempts_per_task must be an integer >= 2")
        values["max_attempts_per_task"] = attempts
    url = section.get("webhook_url") or environ.get(WEBHOOK_ENV) or None
    if url is not None and not str(url).startswith(("http://", "https://")):
        raise ConfigError(f"budgets: webhook_url must be an http(s) URL, got {url!r}")
    values["webhook_url"] = url
    config = BudgetConfig(**values)
    overrides: dict[str, BudgetConfig] = {}
    for customer_id, spec in (section.get("customers") or {}).items():
        if not isinstance(spec, dict) or set(spec) - set(_OVERRIDABLE):
            raise ConfigError(
                f"budgets: customers.{customer_id} may set only {', '.join(_OVERRIDABLE)}"
            )
        overrides[str(customer_id)] = replace(
            config,
            **{
                k: (_pct if k.endswith("_pct") else _decimal)(v, f"customers.{customer_id}.{k}")
                for k, v in spec.items()
            },
        )
    return replace(config, customers=overrides)


def load_budget_config(billing_file: str | None) -> BudgetConfig:
    """The ``budgets:`` section of the billing file; defaults when absent."""
    if not billing_file:
        return parse_budgets({})
    try:
        with open(billing_file, encoding="utf-8") as handle:
            document = yaml.safe_load(handle) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read budgets from {billing_file}: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{billing_file} must be a mapping")
    return parse_budgets(document.get("budgets"))
