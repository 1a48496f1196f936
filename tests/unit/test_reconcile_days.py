"""Which UTC days `reconcile --since/--until` compares: every day overlapping the period."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from llm_margin.processor.reports.reconcile import day_overlaps

UTC = timezone.utc
DAY = date(2026, 11, 10)


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (None, None, True),
        (datetime(2026, 11, 10, tzinfo=UTC), None, True),
        (datetime(2026, 11, 10, 23, 59, tzinfo=UTC), None, True),  # overlaps its last minute
        (datetime(2026, 11, 11, tzinfo=UTC), None, False),
        (None, datetime(2026, 11, 10, tzinfo=UTC), False),  # until is exclusive
        (None, datetime(2026, 11, 10, 0, 1, tzinfo=UTC), True),
        (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), True),
        (datetime(2026, 11, 11, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), False),
    ],
)
def test_day_overlaps(since, until, expected):
    assert day_overlaps(since, until, DAY) is expected
