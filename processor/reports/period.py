"""Report periods: --since/--until as dates, datetimes or relative spans (7d, 24h)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_RELATIVE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def is_relative(text: str | None) -> bool:
    """Whether ``text`` is a span before now (7d, 24h): an instant that moves run to run."""
    return bool(text and _RELATIVE.match(text.strip()))


def parse_instant(text: str, now: datetime) -> datetime:
    """UTC datetime from ISO 8601 (date or datetime; naive means UTC) or a span before now."""
    text = text.strip()
    match = _RELATIVE.match(text)
    if match:
        try:
            value = now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        except OverflowError:  # before year 1
            value = datetime.min.replace(tzinfo=timezone.utc)
        return _in_range(text, value)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"cannot read time {text!r}: use 2026-11-01, 2026-11-01T12:00:00 or 7d / 24h"
        ) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        return _in_range(text, value.astimezone(timezone.utc))
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        return _in_range(text, datetime.min.replace(tzinfo=timezone.utc))


# ClickHouse's DateTime64 range. Outside it ClickHouse clamps values silently, and the
# reports' own arithmetic (the previous period of `runaway`) overflowed with a traceback.
FIRST_YEAR, LAST_YEAR = 1900, 2299


def _in_range(text: str, value: datetime) -> datetime:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(
            f"time {text!r} is out of range: use a time from {FIRST_YEAR} to {LAST_YEAR}"
        )
    return value


def resolve_period(
    since: str | None,
    until: str | None,
    now: datetime | None = None,
    default_span: timedelta | None = None,
) -> tuple[datetime, datetime]:
    """[since, until) in UTC. Default: from the start of the current month until now.

    Without --since the period ends at ``until`` (or now) and starts ``default_span`` before
    it, else at the start of the month the period ends in. ``until`` is exclusive, so that is
    the month of its last instant: ``--until 2026-12-01`` alone means November (the month of
    ``until`` itself would be an empty period), and ``report weekly --until D`` the 7 days
    before D (not the 7 days before now, which may end before D or start after it)."""
    now = now or datetime.now(timezone.utc)
    end = parse_instant(until, now) if until else now
    if since:
        start = parse_instant(since, now)
    elif default_span is not None:
        start = end - default_span
    else:
        start = month_start_before(end)
    if start >= end:
        raise ValueError(
            f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})"
        )
    return start, end


def month_start_before(until: datetime) -> datetime:
    """Start of the month of the last instant before ``until`` (exclusive): an ``until`` at a
    month's start means the month that ended, as budget_usage.sql reads it."""
    last = until - timedelta(microseconds=1)
    return last.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def naive_utc(value: datetime) -> datetime:
    """ClickHouse parameters take naive datetimes, read as UTC by our DateTime64 columns."""
    return value.astimezone(timezone.utc).replace(tzinfo=None)
