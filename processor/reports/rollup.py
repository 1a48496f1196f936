"""Keep the hourly roll-ups current: recompute the hours whose calls changed.

Per stale hour, each refresh rewrites the usage roll-up (llm_usage_hourly), the per-task
fragments (llm_task_fragments) and their aggregates (llm_task_hourly) from deduplicated calls,
then records the hour and the llm_calls parts signature it saw in llm_rollup_hours; readers
find current hours through the view llm_rollup_fresh.

Queries stay correct without it (they read llm_calls for any hour whose roll-up is stale), so
this is purely for speed: the processor runs it in its budget thread, `report` runs it before
reading when it owns the store, and the benchmark runs it after loading.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from llm_margin.clickhouse import read_sql
from llm_margin.processor.reports.period import naive_utc

HOURS_PER_INSERT = 48
# Each refresh writes these in order: its claim on the hours first (so no reader trusts an
# earlier refresh whose rows this one's may replace when the roll-up tables merge), the
# roll-ups, then the record in llm_rollup_hours, so an hour is announced only once all of its
# rows are stored.
REFRESH_SQL = (
    "queries/rollup_claim_hours.sql",
    "queries/rollup_refresh_usage_hourly.sql",
    "queries/rollup_refresh_task_fragments.sql",
    "queries/rollup_refresh_task_hourly.sql",
    "queries/rollup_record_hours.sql",
)
# Run before the record: hours to leave unrecorded (a concurrent refresh of a task's other hour).
UNFLAGGED_SQL = "queries/rollup_unflagged_hours.sql"


def refresh_usage_rollup(
    store: Any,
    max_hours: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    settled_seconds: int = 0,
) -> int:
    """Recompute stale hours (oldest first); returns how many hours were refreshed.

    ``since``/``until``: only the hours overlapping that window; ``max_hours``: at most that
    many, the newest. ``settled_seconds``: skip hours whose ``llm_calls`` parts changed less
    than that long ago. Under live ingest the current hour changes with every insert, so its
    roll-up would be stale again before any report could use it, and recomputing it reads the
    whole hour each time (seconds per round at a few million calls an hour)."""
    # On the store's background client where it has one: a refresh of a busy hour takes
    # seconds, and the writer must not wait for it (the signature rule keeps it correct when
    # calls arrive meanwhile: the hour is simply stale again).
    query = getattr(store, "background_query", store.query)
    command = getattr(store, "background_command", store.command)
    stale = query(
        read_sql("queries/rollup_stale_hours.sql"), {"settled_seconds": settled_seconds}
    ).rows
    if since is not None:
        floor = _utc(since).replace(minute=0, second=0, microsecond=0)
        stale = [row for row in stale if _naive(row[0]) >= floor]
    if until is not None:
        end = _utc(until)
        stale = [row for row in stale if _naive(row[0]) < end]
    if max_hours is not None:
        stale = stale[-max_hours:]  # the newest hours matter most to live reports
    statements = [read_sql(name) for name in REFRESH_SQL]
    for start in range(0, len(stale), HOURS_PER_INSERT):
        batch = stale[start : start + HOURS_PER_INSERT]
        hours = [_naive(row[0]) for row in batch]
        parameters = {
            "hours": hours,
            "source_rows": [int(row[1]) for row in batch],
            "source_modified": [_naive(row[2]) for row in batch],
            "refreshed_at": _naive_now(),
            "since": min(hours),
            "until": max(hours) + timedelta(hours=1),
        }
        *writes, record = statements
        for sql in writes:
            command(sql, _for(sql, parameters))
        check = read_sql(UNFLAGGED_SQL)
        unflagged = {_naive(row[0]) for row in query(check, _for(check, parameters)).rows}
        keep = [i for i, hour in enumerate(hours) if hour not in unflagged]
        if keep:
            for name in ("hours", "source_rows", "source_modified"):
                parameters[name] = [parameters[name][i] for i in keep]
            command(record, _for(record, parameters))
    return len(stale)


def _for(sql: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """The parameters the statement names."""
    return {k: v for k, v in parameters.items() if "{" + k + ":" in sql}


def _naive(value: Any) -> Any:
    return value.replace(tzinfo=None) if getattr(value, "tzinfo", None) else value


def _utc(value: datetime) -> datetime:
    """A window bound as the naive UTC the stale hours are compared in."""
    return naive_utc(value) if value.tzinfo else value


def _naive_now() -> Any:
    return datetime.now(timezone.utc).replace(tzinfo=None)
