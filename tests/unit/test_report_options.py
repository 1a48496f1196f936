"""`report` options that belong to one view: refused elsewhere (they were silently ignored),
and bad values are one line before any store is opened (they were ClickHouse's parameter error,
or a traceback for --min-pct nan)."""

from __future__ import annotations

import pytest
from llm_margin.processor import cli


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["customers", "--limit", "3"], "--limit goes with `report runaway`"),
        (["plans", "--loop-attempts", "3"], "--loop-attempts goes with `report runaway`"),
        (["runaway", "--min-pct", "50"], "--min-pct goes with `report budgets`"),
        (["runaway", "--limit", "-1"], "--limit must be a positive integer, got -1"),
        (["runaway", "--loop-attempts", "0"], "--loop-attempts must be a positive integer, got 0"),
        (["budgets", "--min-pct", "nan"], "--min-pct must be a number, got nan"),
        (
            ["plans", "--customer", "acme"],
            "--customer does not go with `report plans`: a plan's margin is many customers' "
            "(see `report customers --customer ID` for one customer's)",
        ),
        # The queries read '' as every customer: an empty id must not quietly mean everyone.
        (["customers", "--customer", ""], "--customer needs a customer id"),
        (["customers", "--customer", " \t"], "--customer needs a customer id"),
    ],
)
def test_view_options_are_checked(tmp_path, capsys, argv, message):
    assert cli.main(["report", *argv, "--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"llm-margin report: {message}"]
