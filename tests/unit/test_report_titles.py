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
