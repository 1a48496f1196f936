"""Pure functions: usage rows in, alerts and budget decisions out (no I/O, table-tested).

Rows are the dicts of clickhouse/queries/budget_usage.sql, daily_spend.sql and
runaway_tasks.sql with money as Decimal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from llm_margin.processor.budgets.config import BudgetConfig
from llm_margin.processor.reports.money import money_str

ALLOW, DEGRADE, BLOCK = "allow", "degrade", "block"
_RANK = {ALLOW: 0, DEGRADE: 1, BLOCK: 2}


@dataclass(frozen=True)
class Alert:
    rule: str  # allowance_used | allowance_projected | allowance_cap | daily_spend | runaway_task
    severity: str  # warning | critical
    scope: str  # customer | workspace | plan | task
    scope_id: str  # a workspace's: workspace_scope_id(customer, workspace)
    customer_id: str
    period: str  # 2026-11 for monthly rules, 2026-11-22 for daily ones
    threshold_pct: Decimal
    spent_usd: Decimal
    limit_usd: Decimal
    observed: str
    message: str

    @property
    def key(self) -> tuple[str, str, str, str, Decimal]:
        """An alert fires once per (period, rule, scope, threshold)."""
        return (self.period, self.rule, self.scope, self.scope_id, self.threshold_pct)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("threshold_pct", "spent_usd", "limit_usd"):
            out[name] = format(out[name].normalize(), "f")
        return out


@dataclass(frozen=True)
class Decision:
    customer_id: str
    action: str  # allow | degrade | block
    reasons: tuple[str, ...] = ()
    spent_usd: Decimal | None = None
    allowance_usd: Decimal | None = None
    used_pct: Decimal | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "action": self.action,
            "reasons": list(self.reasons),
            "spent_usd": None if self.spent_usd is None else money_str(self.spent_usd),
            "allowance_usd": None if self.allowance_usd is None else money_str(self.allowance_usd),
            "used_pct": None if self.used_pct is None else pct_str(self.used_pct),
        }


def pct_str(value: Any) -> str:
    """A percentage for people: two decimals at most, trailing zeros trimmed (80.81, 50)."""
    if value is None:
        return "-"
    return money_str(Decimal(value).quantize(Decimal("0.01")))


def counted(n: int, noun: str) -> str:
    """``1 call``, ``2 calls``: alert text is read by people."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def month_period(now: datetime) -> str:
    return f"{now:%Y-%m}"


def day_period(now: datetime) -> str:
    return f"{now:%Y-%m-%d}"


def workspace_scope_id(customer_id: str, workspace_id: str) -> str:
    """A workspace's identity in alert keys, ``llm_alerts.scope_id`` and the decision table:
    ``acme/default``. Apps name workspaces "default" or "main" for every customer, so the
    workspace id alone would let one customer's cap block, or its alert silence, another's.
    ``%`` and ``/`` in the customer id are escaped: the first ``/`` splits the two, so no two
    (customer, workspace) pairs share an id."""
    return f"{_escape(customer_id)}/{workspace_id}"


def split_workspace_scope_id(scope_id: str) -> tuple[str, str]:
    """(customer, workspace) of a ``workspace_scope_id``."""
    customer, _, workspace = scope_id.partition("/")
    return customer.replace("%2F", "/").replace("%25", "%"), workspace


def _escape(customer_id: str) -> str:
    return customer_id.replace("%", "%25").replace("/", "%2F")


def fired_scope_ids(scope: str, scope_id: str, customer_id: str) -> tuple[str, ...]:
    """The scope ids a recorded alert counts as fired for. A workspace alert recorded before
    workspaces were keyed by customer names the workspace alone (its customer in
    ``customer_id``): it still counts for that customer's workspace, so it does not fire again
    after the upgrade. Read both ways, a row can also match a workspace of the same customer
    named ``<customer>/<workspace>`` beside ``<workspace>``: that alert is then not sent again
    in the row's period, never sent twice."""
    if scope != "workspace":
        return (scope_id,)
    old = workspace_scope_id(customer_id, scope_id)
    if scope_id.startswith(_escape(customer_id) + "/"):
        return (scope_id, old)
    return (old,)


def _scope_id(row: dict[str, Any]) -> str:
    """The row's scope id in alerts and decisions (a workspace's includes its customer)."""
    if row["scope"] == "workspace":
        return workspace_scope_id(row["customer_id"], row["scope_id"])
    return row["scope_id"]


def _pct_of(limit: Decimal, pct: Decimal) -> Decimal:
    return limit * pct / Decimal(100)


def _who(row: dict[str, Any]) -> str:
    if row["scope"] == "customer":
        return f"customer {row['scope_id']}"
    if row["scope"] == "workspace":
        return f"workspace {row['scope_id']} (customer {row['customer_id']})"
    return f"plan {row['scope_id']}"


def allowance_alerts(
    rows: list[dict[str, Any]], config: BudgetConfig, now: datetime, month_hours: float
) -> list[Alert]:
    """Soft alerts at each threshold of the allowance, used to date and projected; a hard
    alert past ``block_at_pct``. ``month_hours``: how much of the month has passed."""
    alerts: list[Alert] = []
    period = month_period(now)
    for row in rows:
        allowance: Decimal = row["allowance_usd"]
        if allowance is None or allowance <= 0:
            continue
        spent: Decimal = row["spent_usd"]
        projected: Decimal | None = row["projected_usd"]  # None in the month's first day
        rules = config.for_customer(row["customer_id"]) if row["customer_id"] else config
        for pct in config.soft_alert_pct:
            limit = _pct_of(allowance, pct)
            if spent >= limit:
                alerts.append(
                    Alert(
                        "allowance_used",
                        "warning",
                        row["scope"],
                        _scope_id(row),
                        row["customer_id"],
                        period,
                        pct,
                        spent,
                        allowance,
                        f"{pct_str(row['used_pct'])}% used",
                        f"{_who(row)} has used {pct_str(row['used_pct'])}% of its monthly AI "
                        f"allowance ({spent.normalize():f} of {allowance.normalize():f} USD; "
                        f"threshold {pct}%)",
                    )
                )
            if (
                projected is not None
                and month_hours >= config.min_projection_hours
                and projected >= limit
            ):
                alerts.append(
                    Alert(
                        "allowance_projected",
                        "warning",
                        row["scope"],
                        _scope_id(row),
                        row["customer_id"],
                        period,
                        pct,
                        projected,
                        allowance,
                        f"{pct_str(row['projected_pct'])}% projected",
                        f"{_who(row)} is projected to use {pct_str(row['projected_pct'])}% of its "
                        f"monthly AI allowance by month end (threshold {pct_str(pct)}%)",
                    )
                )
        if rules.block_at_pct is not None and spent >= _pct_of(allowance, rules.block_at_pct):
            alerts.append(
                Alert(
                    "allowance_cap",
                    "critical",
                    row["scope"],
                    _scope_id(row),
                    row["customer_id"],
                    period,
                    rules.block_at_pct,
                    spent,
                    allowance,
                    f"{pct_str(row['used_pct'])}% used",
                    f"{_who(row)} is over its hard allowance cap "
                    f"({pct_str(rules.block_at_pct)}% of {allowance.normalize():f} USD)",
                )
            )
    return alerts


def daily_cap_alerts(
    rows: list[dict[str, Any]], config: BudgetConfig, now: datetime
) -> list[Alert]:
    """Hard cap: one customer's (or one customer's workspace's) spend in the current UTC day."""
    alerts = []
    for row in rows:
        if row["scope"] == "customer":
            cap = config.for_customer(row["customer_id"]).daily_spend_usd
        else:
            cap = config.workspace_daily_spend_usd
        if cap is None or row["spent_usd"] < cap:
            continue
        alerts.append(
            Alert(
                "daily_spend",
                "critical",
                row["scope"],
                _scope_id(row),
                row["customer_id"],
                day_period(now),
                Decimal(100),
                row["spent_usd"],
                cap,
                f"{counted(row['calls'], 'call')} today",
                f"{_who(row)} spent {row['spent_usd'].normalize():f} USD "
                f"today, over its daily cap of {cap.normalize():f} USD",
            )
        )
    return alerts


def runaway_alerts(rows: list[dict[str, Any]], config: BudgetConfig, now: datetime) -> list[Alert]:
    """Hard cap for loops: too many attempts, or too much cost, in one task (its calls of the
    last 24 hours). Keyed by the UTC day of the task's first call in that window: alerted once
    per loop, again only once those calls have slid out (the loop ran on, or looped anew)."""
    alerts = []
    for row in rows:
        too_many = (
            config.max_attempts_per_task is not None
            and row["calls"] >= config.max_attempts_per_task
        )
        too_dear = (
            config.max_cost_per_task_usd is not None
            and row["cost_usd"] >= config.max_cost_per_task_usd
        )
        if not (too_many or too_dear):
            continue
        # limit_usd is a money cap: 0 when only the attempts cap tripped (the message and
        # `observed` name the cap that did).
        limit = config.max_cost_per_task_usd if too_dear else Decimal(0)
        caps = []
        if too_many:
            caps.append(f"{config.max_attempts_per_task} attempts")
        if too_dear:
            caps.append(f"{config.max_cost_per_task_usd.normalize():f} USD")
        alerts.append(
            Alert(
                "runaway_task",
                "critical",
                "task",
                row["task_id"],
                row["customer_id"],
                # The day the task's calls in the window began, not today: a loop capped at
                # 23:50 is still over the cap after midnight, and is the same loop.
                row["first_call_day"],
                Decimal(100),
                row["cost_usd"],
                limit or Decimal(0),
                f"{counted(row['calls'], 'attempt')} (cap {' / '.join(caps)})",
                f"task {row['task_id']} of customer {row['customer_id']} (workspace "
                f"{row['workspace_id'] or '-'}, feature {row['feature'] or '-'}) made "
                f"{counted(row['calls'], 'call')} costing {row['cost_usd'].normalize():f} USD, over its "
                f"cap of {' and '.join(caps)} per task: a runaway loop?",
            )
        )
    return alerts


# How many runaway tasks a decision lists per customer (the newest evaluation's, bounded).
MAX_BLOCKED_TASKS = 1000


def blocked_tasks(alerts: list[Alert]) -> dict[str, dict[str, str]]:
    """Customer -> {task id: reason} of the runaway-task hard caps among ``alerts``: the app
    blocks further calls of those tasks (the decision lists them)."""
    out: dict[str, dict[str, str]] = {}
    for alert in alerts:
        if alert.rule != "runaway_task":
            continue
        tasks = out.setdefault(alert.customer_id, {})
        if len(tasks) < MAX_BLOCKED_TASKS:
            tasks[alert.scope_id] = f"runaway task {alert.scope_id}: {alert.message}"
    return out


def decisions(
    usage_rows: list[dict[str, Any]], daily_rows: list[dict[str, Any]], config: BudgetConfig
) -> dict[tuple[str, str], Decision]:
    """Decision per ("customer", id) and per ("workspace", workspace_scope_id(customer,
    workspace)): allow, degrade or block."""
    out: dict[tuple[str, str], Decision] = {}
    for row in usage_rows:
        if row["scope"] not in ("customer", "workspace"):
            continue
        rules = config.for_customer(row["customer_id"])
        allowance, spent = row["allowance_usd"], row["spent_usd"]
        action, reasons = ALLOW, []
        if allowance and allowance > 0:
            if rules.block_at_pct is not None and spent >= _pct_of(allowance, rules.block_at_pct):
                action = BLOCK
                reasons.append(
                    f"allowance used {pct_str(row['used_pct'])}% >= {pct_str(rules.block_at_pct)}%"
                )
            elif rules.degrade_at_pct is not None and spent >= _pct_of(
                allowance, rules.degrade_at_pct
            ):
                action = DEGRADE
                reasons.append(
                    f"allowance used {pct_str(row['used_pct'])}% >= {pct_str(rules.degrade_at_pct)}%"
                )
        out[(row["scope"], _scope_id(row))] = Decision(
            row["customer_id"], action, tuple(reasons), spent, allowance, row["used_pct"]
        )
    for alert in daily_cap_alerts(daily_rows, config, datetime.now()):
        key = (alert.scope, alert.scope_id)
        previous = out.get(key, Decision(alert.customer_id, ALLOW))
        out[key] = Decision(
            previous.customer_id,
            BLOCK,
            previous.reasons + (f"daily spend cap {alert.limit_usd.normalize():f} USD reached",),
            previous.spent_usd,
            previous.allowance_usd,
            previous.used_pct,
        )
    return out


def lookup(
    table: dict[tuple[str, str], Decision], customer_id: str, workspace_id: str = ""
) -> Decision:
    """The stricter of the customer's and the workspace's decisions (unknown: allow)."""
    found = [
        d
        for d in (
            table.get(("customer", customer_id)),
            table.get(("workspace", workspace_scope_id(customer_id, workspace_id)))
            if workspace_id
            else None,
        )
        if d
    ]
    if not found:
        return Decision(customer_id, ALLOW, ("no budget known for this customer",))
    worst = max(found, key=lambda d: _RANK[d.action])
    # the customer's and its workspace's reasons are often the same sentence: say it once
    reasons = tuple(dict.fromkeys(r for d in found for r in d.reasons))
    return Decision(
        customer_id,
        worst.action,
        reasons,
        found[0].spent_usd,
        found[0].allowance_usd,
        found[0].used_pct,
    )
