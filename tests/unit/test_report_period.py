"""--since/--until: what each form means, and the default start of a period given only its end.

`until` is exclusive, so the default month is the one the period's last instant falls in:
`--until 2026-12-01` alone is November (it used to be the empty period [Dec 1, Dec 1), refused),
and `report weekly --until D` covers the 7 days before D, not the 7 days before now."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from llm_margin.processor.commands import _common
from llm_margin.processor.reports.period import resolve_period

UTC = timezone.utc
NOW = datetime(2026, 12, 1, 4, 20, 9, 551925, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        # date only: midnight UTC
        ("2026-11-01", "2026-12-01", (datetime(2026, 11, 1), datetime(2026, 12, 1))),
        # a UTC offset is honoured: local midnight at +02:00 is 22:00 UTC the day before
        (
            "2026-11-01T00:00:00+02:00",
            "2026-11-01T02:00:00+02:00",
            (datetime(2026, 10, 31, 22), datetime(2026, 11, 1)),
        ),
        ("2026-11-01T08:00Z", None, (datetime(2026, 11, 1, 8), NOW.replace(tzinfo=None))),
        # naive means UTC; microseconds are kept
        (
            "2026-10-31T23:59:59.999999",
            "2026-11-01T00:00:00.000001",
            (datetime(2026, 10, 31, 23, 59, 59, 999999), datetime(2026, 11, 1, 0, 0, 0, 1)),
        ),
        # relative: before now
        ("7d", None, ((NOW - timedelta(days=7)).replace(tzinfo=None), NOW.replace(tzinfo=None))),
        (
            "24h",
            "1h",
            (datetime(2026, 11, 30, 4, 20, 9, 551925), datetime(2026, 12, 1, 3, 20, 9, 551925)),
        ),
    ],
)
def test_forms(since, until, expected):
    start, end = resolve_period(since, until, NOW)
    assert (start.tzinfo, end.tzinfo) == (UTC, UTC)
    assert (start.replace(tzinfo=None), end.replace(tzinfo=None)) == expected


@pytest.mark.parametrize(
    ("until", "expected_since"),
    [
        ("2026-12-01", datetime(2026, 11, 1, tzinfo=UTC)),  # the month that just ended
        ("2026-12-01T00:00:00.000001", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-11-15T12:00", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2027-01-01", datetime(2026, 12, 1, tzinfo=UTC)),  # across a year
        ("2026-11-01T02:00:00+02:00", datetime(2026, 10, 1, tzinfo=UTC)),  # 00:00Z Nov 1
    ],
)
def test_default_since_is_the_month_of_the_last_instant(until, expected_since):
    assert resolve_period(None, until, NOW)[0] == expected_since


def test_default_since_is_the_current_month_to_now():
    assert resolve_period(None, None, NOW) == (datetime(2026, 12, 1, tzinfo=UTC), NOW)


def test_default_span_ends_at_until():
    until = datetime(2026, 11, 8, tzinfo=UTC)
    week = timedelta(days=7)
    assert resolve_period(None, "2026-11-08", NOW, week) == (until - week, until)
    assert resolve_period(None, None, NOW, week) == (NOW - week, NOW)
    # --since wins over the default span
    assert resolve_period("2026-11-01", "2026-11-08", NOW, week)[0] == datetime(
        2026, 11, 1, tzinfo=UTC
    )


def test_commands_read_the_period_with_that_default():
    class Args:
        since, until = None, "2026-12-01"

    assert _common.period(Args()) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("0001-01-01", None),  # the previous period of `runaway` overflowed: a traceback
        ("0001-01-01T00:00+01:00", None),  # before year 1 in UTC
        ("1000000000d", None),  # past timedelta's range: a traceback
        ("2026-11-01", "9999-12-31"),  # ClickHouse clamps it silently
    ],
)
def test_times_outside_the_stores_range_are_refused(since, until):
    with pytest.raises(ValueError, match="out of range: use a time from 1900 to 2299"):
        resolve_period(since, until, now=NOW)
