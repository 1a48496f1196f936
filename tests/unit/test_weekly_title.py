"""The report page names its period: `report weekly` (and the demo's 30-day page) take any
--since/--until, so a 30-day page must not say "Weekly"."""

from datetime import datetime, timedelta, timezone

import pytest
from llm_margin.processor.reports.weekly import page_title

START = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("span", "title"),
    [
        (timedelta(days=7), "Weekly AI margin"),
        (timedelta(days=1), "Daily AI margin"),
        (timedelta(days=30), "AI margin over 30 days"),
        (timedelta(days=2), "AI margin over 2 days"),
        (timedelta(hours=36), "AI margin"),
        (timedelta(hours=5), "AI margin"),
        (timedelta(days=30, seconds=1), "AI margin over 30 days"),
        (timedelta(days=7, minutes=2), "AI margin"),
    ],
)
def test_page_title_names_the_period(span: timedelta, title: str) -> None:
    assert page_title(START, START + span) == title


def test_one_customers_page_names_the_customer() -> None:
    assert (
        page_title(START, START + timedelta(days=7), "acme") == "Weekly AI margin for customer acme"
    )
    assert page_title(START, START + timedelta(hours=5), "(unattributed)") == (
        "AI margin for customer (unattributed)"
    )
