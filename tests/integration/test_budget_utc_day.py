"""The budget periods are UTC (the month, the day of the daily caps) whatever the timezone of
the machine running the processor: chDB reads a DateTime64 parameter in its session timezone,
which is the process's local one unless the store sets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.integration.test_html import BILLING

pytestmark = pytest.mark.integration

# Runs in a fresh process: chDB takes the local timezone once, when it starts.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from datetime import datetime, timezone
    from decimal import Decimal

    from llm_margin.processor.billing import load_billing_file, store_billing
    from llm_margin.processor.budgets.config import BudgetConfig
    from llm_margin.processor.budgets.evaluator import BudgetEvaluator
    from llm_margin.processor.records import CallRecord
    from llm_margin.processor.storage import Store

    data_dir, billing = sys.argv[1:3]
    store = Store.open(data_dir=data_dir)
    store_billing(store, *load_billing_file(billing))
    store.insert_calls(
        [
            CallRecord(
                ts=ts, trace_id=f"{i:032x}", span_id=f"{i:016x}", task_id=f"t{i}",
                customer_id="acme", workspace_id="ws_acme_legal", plan="pro",
                cost_usd=Decimal(cost), priced=True, version=1,
            )
            for i, (ts, cost) in enumerate(
                [
                    (datetime(2026, 11, 30, 20, tzinfo=timezone.utc), "18"),  # yesterday
                    (datetime(2026, 12, 1, 0, 0, 10, tzinfo=timezone.utc), "0.5"),
                    (datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc), "0.25"),
                ]
            )
        ]
    )
    evaluator = BudgetEvaluator(store, BudgetConfig(daily_spend_usd=Decimal("0.6")), sinks=[])
    alerts = evaluator.evaluate(datetime(2026, 12, 1, 10, tzinfo=timezone.utc))
    decision = evaluator.decision("acme", "ws_acme_legal")
    store.close()
    spent = [(a.rule, a.period, format(a.spent_usd.normalize(), "f")) for a in alerts]
    print(json.dumps({"alerts": spent, "decision": decision}))
    """
)


@pytest.mark.parametrize("tz", ["Asia/Tokyo", "America/New_York"])
def test_month_and_day_are_utc_on_a_machine_in_another_timezone(tmp_path, tz):
    env = {**os.environ, "TZ": tz}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "data"), BILLING],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    # December 1st (UTC) so far: 0.75 USD, over the 0.6 USD daily cap; November's 18 USD is
    # another day and another month. (Read in the local timezone, the day started 9 hours
    # early in Tokyo, 5 hours late in New York.)
    assert answer["alerts"] == [["daily_spend", "2026-12-01", "0.75"]]
    assert answer["decision"]["action"] == "block"
    assert answer["decision"]["spent_usd"] == "0.75"
