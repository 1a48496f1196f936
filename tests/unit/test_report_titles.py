"""A report's title names the window its numbers cover."""

from datetime import datetime, timezone

import pytest
from llm_margin.processor.commands.report import _title_since

SINCE = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
UNTIL = datetime(2026, 11, 30, 9, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("view", "start"),
    [
        ("customers", SINCE),
        ("routes", SINCE),
        # budgets are month to date at --until, whatever --since says
        ("budgets", datetime(2026, 11, 1, tzinfo=timezone.utc)),
    ],
)
def test_title_starts_where_the_numbers_do(view, start):
    assert _title_since(view, SINCE, UNTIL) == start


def test_budgets_title_at_a_month_start_names_the_month_that_ended():
    # until is exclusive: --until 2026-12-01 is November's budgets (budget_usage.sql), and the
    # title said "2026-12-01 00:00 .. 2026-12-01 00:00", an empty period.
    until = datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert _title_since("budgets", SINCE, until) == datetime(2026, 11, 1, tzinfo=timezone.utc)
