"""Budget rules as pure functions, table by table."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest
from llm_margin.budget import BudgetSettings
from llm_margin.processor.budgets import thresholds as T
from llm_margin.processor.budgets.config import BudgetConfig, parse_budgets
from llm_margin.processor.config import ConfigError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def usage(scope="customer", scope_id="acme", spent="0", allowance="20", projected=None):
    spent_d, allowance_d = D(spent), D(allowance)
    projected_d = D(projected) if projected is not None else spent_d
    return {
        "scope": scope,
        "scope_id": scope_id,
        "customer_id": "acme" if scope != "plan" else "",
        "plan": "pro",
        "allowance_usd": allowance_d,
        "spent_usd": spent_d,
        "projected_usd": projected_d,
        "used_pct": (spent_d * 100 / allowance_d).quantize(D("0.01")) if allowance_d else None,
        "projected_pct": (projected_d * 100 / allowance_d).quantize(D("0.01"))
        if allowance_d
        else None,
        "calls": 1,
    }


@pytest.mark.parametrize(
    "spent, projected, hours, used_fired, projected_fired",
    [
        ("0", "0", 500, [], []),
        ("9.99", "9.99", 500, [], []),
        ("10", "10", 500, [D(50)], [D(50)]),
        ("10", "17", 500, [D(50)], [D(50), D(80)]),
        ("16", "16", 500, [D(50), D(80)], [D(50), D(80)]),
        ("5", "30", 10, [], []),  # too early in the month to project
        ("5", "30", 30, [], [D(50), D(80)]),
    ],
)
def test_allowance_alerts(spent, projected, hours, used_fired, projected_fired):
    alerts = T.allowance_alerts(
        [usage(spent=spent, projected=projected)], BudgetConfig(), NOW, hours
    )
    assert [a.threshold_pct for a in alerts if a.rule == "allowance_used"] == used_fired
    assert [a.threshold_pct for a in alerts if a.rule == "allowance_projected"] == projected_fired
    assert all(a.period == "2026-11" for a in alerts)


def test_no_allowance_no_alert():
    assert T.allowance_alerts([usage(spent="100", allowance="0")], BudgetConfig(), NOW, 500) == []


def test_block_cap_and_overrides():
    config = parse_budgets(
        {"block_at_pct": 100, "customers": {"acme": {"block_at_pct": 150, "daily_spend_usd": 1}}}
    )
    rows = [usage(spent="25")]
    assert not [a for a in T.allowance_alerts(rows, config, NOW, 500) if a.rule == "allowance_cap"]
    rows = [usage(spent="30")]
    caps = [a for a in T.allowance_alerts(rows, config, NOW, 500) if a.rule == "allowance_cap"]
    assert len(caps) == 1 and caps[0].severity == "critical"
    decisions = T.decisions(rows, [], config)
    assert T.lookup(decisions, "acme").action == T.BLOCK


@pytest.mark.parametrize(
    "spent, cap, fired",
    [("4.99", "5", False), ("5", "5", True), ("50", None, False)],
)
def test_daily_cap(spent, cap, fired):
    config = BudgetConfig(daily_spend_usd=D(cap) if cap else None)
    rows = [
        {
            "scope": "customer",
            "scope_id": "acme",
            "customer_id": "acme",
            "spent_usd": D(spent),
            "calls": 3,
        }
    ]
    alerts = T.daily_cap_alerts(rows, config, NOW)
    assert bool(alerts) is fired
    if fired:
        assert alerts[0].period == "2026-11-22" and alerts[0].rule == "daily_spend"
    assert (T.lookup(T.decisions([], rows, config), "acme").action == T.BLOCK) is fired


@pytest.mark.parametrize(
    "calls, cost, max_attempts, max_cost, observed, limit",
    [
        (3, "0.1", 8, None, None, None),
        (8, "0.1", 8, None, "8 attempts (cap 8 attempts)", "0"),
        (2, "5", None, "2", "2 attempts (cap 2 USD)", "2"),
        (2, "1", None, "2", None, None),
        (9, "2.5", 8, "2", "9 attempts (cap 8 attempts / 2 USD)", "2"),
        (1, "3", None, "2", "1 attempt (cap 2 USD)", "2"),
    ],
)
def test_runaway(calls, cost, max_attempts, max_cost, observed, limit):
    config = BudgetConfig(
        max_attempts_per_task=max_attempts, max_cost_per_task_usd=D(max_cost) if max_cost else None
    )
    row = {
        "task_id": "t",
        "customer_id": "acme",
        "workspace_id": "w",
        "feature": "f",
        "calls": calls,
        "cost_usd": D(cost),
        "first_call_day": "2026-11-21",
    }
    alerts = T.runaway_alerts([row], config, NOW)
    if observed is None:
        assert alerts == []
        return
    (alert,) = alerts
    assert alert.observed == observed
    assert alert.period == "2026-11-21"  # the day the task's calls in the window began
    assert alert.as_dict()["limit_usd"] == limit
    # the message names the cap that tripped, not a 0 USD limit
    assert "over its cap of" in alert.message and "0 USD" not in alert.message


@pytest.mark.parametrize(
    "spent, expected",
    [("10", T.ALLOW), ("19.99", T.ALLOW), ("20", T.DEGRADE), ("40", T.DEGRADE)],
)
def test_decisions_degrade(spent, expected):
    decisions = T.decisions([usage(spent=spent)], [], BudgetConfig())
    assert T.lookup(decisions, "acme").action == expected
    assert T.lookup(decisions, "unknown").action == T.ALLOW


def test_workspace_decision_is_the_stricter():
    rows = [
        {
            "scope": "workspace",
            "scope_id": "ws",
            "customer_id": "acme",
            "spent_usd": D(9),
            "calls": 1,
        }
    ]
    table = T.decisions([usage(spent="1")], rows, BudgetConfig(workspace_daily_spend_usd=D(5)))
    assert T.lookup(table, "acme").action == T.ALLOW
    assert T.lookup(table, "acme", "ws").action == T.BLOCK


def test_same_workspace_id_of_two_customers_is_two_workspaces():
    rows = [
        {"scope": "workspace", "scope_id": "default", "customer_id": c, "spent_usd": D(s),
         "calls": 1}
        for c, s in (("acme", "9"), ("globex", "1"))
    ]  # fmt: skip
    config = BudgetConfig(workspace_daily_spend_usd=D(5))
    (cap,) = T.daily_cap_alerts(rows, config, NOW)
    assert (cap.customer_id, cap.scope_id) == ("acme", "acme/default")
    assert cap.message.startswith("workspace default (customer acme) spent 9 USD today")
    table = T.decisions([], rows, config)
    assert T.lookup(table, "acme", "default").action == T.BLOCK
    assert T.lookup(table, "globex", "default").action == T.ALLOW


@pytest.mark.parametrize(
    ("customer", "workspace"),
    [("acme", "default"), ("a/b", "c"), ("a", "b/c"), ("50%", "x"), ("a%2Fb", "c"), ("", "w")],
)
def test_workspace_scope_id_is_one_to_one(customer, workspace):
    # it splits back into the pair it was made of: no two pairs make the same id
    scope_id = T.workspace_scope_id(customer, workspace)
    assert T.split_workspace_scope_id(scope_id) == (customer, workspace)


def test_alert_recorded_before_workspaces_had_a_customer_counts_for_its_customer():
    # an older release stored the workspace id alone; the customer is in customer_id
    assert T.fired_scope_ids("workspace", "default", "acme") == ("acme/default",)
    # a row of this release (also read the old way: a workspace named "acme/default")
    assert T.fired_scope_ids("workspace", "acme/default", "acme") == (
        "acme/default",
        "acme/acme/default",
    )
    assert T.fired_scope_ids("customer", "acme", "acme") == ("acme",)
    assert T.fired_scope_ids("task", "t1", "acme") == ("t1",)


def test_alert_key_ignores_decimal_scale():
    a = T.Alert("r", "warning", "customer", "x", "x", "2026-11", D("50"), D(1), D(2), "", "")
    b = T.Alert("r", "warning", "customer", "x", "x", "2026-11", D("50.0000"), D(1), D(2), "", "")
    assert a.key in {b.key}


@pytest.mark.parametrize(
    "section, message",
    [
        ({"nope": 1}, "unknown keys"),
        ({"soft_alert_pct": "50"}, "soft_alert_pct"),
        ({"daily_spend_usd": "-1"}, "non-negative"),
        ({"max_attempts_per_task": 1}, "max_attempts_per_task"),
        ({"webhook_url": "ftp://x"}, "webhook_url"),
        ({"customers": {"acme": {"webhook_url": "x"}}}, "may set only"),
        ({"interval_seconds": 0}, "interval_seconds"),
        # llm_alerts.threshold_pct is Decimal(9, 4): 33.33333 was stored as 33.3333, the
        # stored key never matched the alert's, and the alert fired again at every restart
        ({"soft_alert_pct": [33.33333]}, "4 decimal places"),
        ({"soft_alert_pct": [50, None]}, "soft_alert_pct"),
        ({"block_at_pct": 100000}, "below 100000"),
        ({"customers": {"acme": {"block_at_pct": "150.00001"}}}, "4 decimal places"),
    ],
)
def test_budget_config_errors(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_budgets(section, environ={})


def test_budget_config_defaults_and_env():
    config = parse_budgets(None, environ={"LLM_MARGIN_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/h"})
    assert config.soft_alert_pct == (D(50), D(80)) and config.webhook_url.endswith("/h")
    assert parse_budgets({"soft_alert_pct": [80, 50.5]}, {}).soft_alert_pct == (D("50.5"), D(80))
    assert parse_budgets({"soft_alert_pct": ["33.3333"]}, {}).soft_alert_pct == (D("33.3333"),)


def test_app_side_settings_from_env():
    assert BudgetSettings.from_env({}) is None
    settings = BudgetSettings.from_env(
        {
            "LLM_MARGIN_BUDGET_URL": "http://127.0.0.1:4318/",
            "LLM_MARGIN_BUDGET_DEGRADE_MODELS": "gpt-4o=gpt-4o-mini, a = b",
            "LLM_MARGIN_BUDGET_FAIL_OPEN": "false",
            "LLM_MARGIN_AUTH_TOKEN": "secret-token",
        }
    )
    assert settings.url == "http://127.0.0.1:4318" and not settings.fail_open
    assert settings.degrade_models == {"gpt-4o": "gpt-4o-mini", "a": "b"}
    assert settings.token == "secret-token"
    with pytest.raises(ValueError):
        BudgetSettings.from_env({"LLM_MARGIN_BUDGET_URL": "x"}, strict=True)
    with pytest.raises(ValueError):
        BudgetSettings.from_env(
            {"LLM_MARGIN_BUDGET_URL": "http://h", "LLM_MARGIN_BUDGET_DEGRADE_MODELS": "nope"},
            strict=True,
        )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LLM_MARGIN_BUDGET_URL": "x"}, None),  # a bad URL: enforcement off
        ({"LLM_MARGIN_BUDGET_FAIL_OPEN": "maybe"}, {"fail_open": True}),
        ({"LLM_MARGIN_BUDGET_TTL": "abc"}, {"ttl_seconds": 5.0}),
        ({"LLM_MARGIN_BUDGET_TTL": "-3"}, {"ttl_seconds": 5.0}),
        ({"LLM_MARGIN_BUDGET_TIMEOUT": "nan"}, {"timeout_seconds": 0.5}),
        ({"LLM_MARGIN_BUDGET_TIMEOUT": "2"}, {"timeout_seconds": 2.0}),
        ({"LLM_MARGIN_BUDGET_DEGRADE_MODELS": "nope,a=b"}, {"degrade_models": {"a": "b"}}),
    ],
)
def test_app_side_bad_settings_keep_their_default(env, expected, caplog):
    """A bad value never stops the app: logged, and that setting keeps its default."""
    settings = BudgetSettings.from_env({"LLM_MARGIN_BUDGET_URL": "http://h:1", **env})
    if expected is None:
        assert settings is None
    else:
        assert {k: getattr(settings, k) for k in expected} == expected
    if env != {"LLM_MARGIN_BUDGET_TIMEOUT": "2"}:
        assert "llm-margin:" in caplog.text


def test_alert_text_and_decisions_read_like_the_docs():
    """Percentages as people write them (80.81%, not 80.810000000000000000%), money exact and
    trimmed, and a reason shared by a customer and its workspace said once."""
    row = usage(spent="16.162", allowance="20")
    row["used_pct"] = D("80.810000000000000000")  # as the SQL returns it: Decimal(38, 18)
    alerts = T.allowance_alerts([row], BudgetConfig(), NOW, 1)
    used = [a for a in alerts if a.rule == "allowance_used"]
    assert [a.observed for a in used] == ["80.81% used", "80.81% used"]
    assert "has used 80.81% of its monthly AI allowance (16.162 of 20 USD; threshold 50%)" in (
        used[0].message
    )
    rules = parse_budgets({"degrade_at_pct": 80}, {})
    workspace = {**row, "scope": "workspace", "scope_id": "ws_a"}
    table = T.decisions([row, workspace], [], rules)
    decision = T.lookup(table, "acme", "ws_a").as_dict()
    assert decision["action"] == "degrade"
    assert decision["used_pct"] == "80.81" and decision["spent_usd"] == "16.162"
    assert decision["reasons"] == ["allowance used 80.81% >= 80%"]
    zero = T.Decision("acme", "allow", (), D("0E-18"), D("20.000000000000000000"), D("0E-18"))
    assert zero.as_dict()["spent_usd"] == "0" and zero.as_dict()["allowance_usd"] == "20"
    assert zero.as_dict()["used_pct"] == "0"


@pytest.mark.parametrize(("n", "text"), [(0, "0 calls"), (1, "1 call"), (2, "2 calls")])
def test_counted(n, text):
    assert T.counted(n, "call") == text


def test_no_projection_yet_raises_no_projected_alert():
    """budget_usage.sql gives no projection in the month's first day (projected_usd None),
    even with min_projection_hours set lower than that."""
    row = {**usage(spent="12", allowance="20"), "projected_usd": None, "projected_pct": None}
    config = BudgetConfig(min_projection_hours=1)
    alerts = T.allowance_alerts([row], config, NOW, 2)
    assert [(a.rule, a.threshold_pct) for a in alerts] == [("allowance_used", D(50))]
