"""The hourly roll-ups under concurrent activity: a stale roll-up costs speed, never
correctness. Each test interleaves a refresh with writes, or two refreshes of the same hours,
step by step (hooks between the refresh's statements, its clock pinned) on the real embedded
store, then compares every report that reads the roll-ups with the same report read from
llm_calls alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from llm_margin.processor.records import CallRecord
from llm_margin.processor.reports import rollup
from llm_margin.processor.storage import Store

from tests.integration.test_reports_rollup import answers, calls, fresh_hours

pytestmark = pytest.mark.integration

ROLLUP_TABLES = ("llm_usage_hourly", "llm_task_fragments", "llm_task_hourly")


def raw_answers(store: Store, since: datetime, until: datetime) -> dict:
    """The reports from llm_calls alone (no hour current), leaving the recorded refreshes as
    they were."""
    store.command("CREATE TABLE saved_rollup_hours AS llm_rollup_hours")
    try:
        store.command("INSERT INTO saved_rollup_hours SELECT * FROM llm_rollup_hours")
        store.command("TRUNCATE TABLE llm_rollup_hours")
        assert fresh_hours(store, since, until) == 0
        out = answers(store, since, until)
        store.command("INSERT INTO llm_rollup_hours SELECT * FROM saved_rollup_hours")
    finally:
        store.command("DROP TABLE saved_rollup_hours")
    return out


def final_totals(store: Store, since: datetime, until: datetime) -> tuple:
    return store.query(
        "SELECT count(), sum(cost_usd) FROM llm_calls FINAL "
        "WHERE ts >= {s:DateTime64(6)} AND ts < {u:DateTime64(6)}",
        {"s": since, "u": until},
    ).rows[0]


def assert_correct(store: Store, since: datetime, until: datetime) -> dict:
    got = answers(store, since, until)
    assert got == raw_answers(store, since, until)
    count, cost = final_totals(store, since, until)
    assert sum(r["calls"] or 0 for r in got["customers"]) == count
    assert sum((r["cost_usd"] or Decimal(0) for r in got["customers"]), Decimal(0)) == cost
    return got


def hooked(store: Store, monkeypatch, before: dict) -> None:
    """Run ``before[name]()`` just before the refresh statement ``name`` (a file of
    rollup.REFRESH_SQL, or "record" for the one that announces the hours)."""

    def command(sql, parameters=None):  # the store's own, whatever hook ran before
        return Store.background_command(store, sql, parameters)

    statements = {rollup.read_sql(name): name for name in rollup.REFRESH_SQL}

    def run(sql, parameters=None):
        name = statements.get(sql, "")
        action = before.get("record" if name.endswith("record_hours.sql") else name)
        if action is not None:
            action()
        return command(sql, parameters)

    monkeypatch.setattr(store, "background_command", run)


def pin_clock(monkeypatch, *instants: datetime) -> None:
    """The refreshes that follow take these refreshed_at values, in order."""
    pending = list(instants)
    monkeypatch.setattr(rollup, "_naive_now", lambda: pending.pop(0))


class Crash(RuntimeError):
    pass


def crash():
    raise Crash


def extra_call(ts: datetime, name: str, cost: str = "1") -> CallRecord:
    return CallRecord(
        ts=ts,
        trace_id=name,
        span_id=name,
        task_id=f"t{name}",
        customer_id="acme",
        workspace_id="ws_0",
        plan="pro",
        route="openai/gpt-4o",
        cost_usd=Decimal(cost),
        priced=True,
        version=1,
    )


@pytest.fixture()
def store(tmp_path):
    store = Store.open(data_dir=str(tmp_path / "data"))
    # llm_calls parts only as the test writes them; the roll-ups merge where a test says so.
    store.command("SYSTEM STOP MERGES llm_calls")
    try:
        yield store
    finally:
        store.close()


def window(now: datetime) -> tuple[datetime, datetime]:
    # Partial hours at both edges: the raw reads cover them.
    return now - timedelta(hours=30, minutes=17), now + timedelta(microseconds=1)


def whole_hours(since: datetime, until: datetime) -> int:
    first = since.replace(minute=0, second=0, microsecond=0)
    if first < since:
        first += timedelta(hours=1)
    return int((until - first).total_seconds() // 3600)


def test_insert_between_signature_and_read_leaves_the_hour_stale(store, monkeypatch):
    """The signature is taken (stale-hours query) before the refresh reads llm_calls: a call
    landing in between is in the roll-up but not in the recorded signature, so the hour is
    not current until the next refresh. Holds."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    since, until = window(now)
    store.insert_calls(calls(now, n=60))
    late = extra_call(now - timedelta(hours=5), "between")
    hooked(
        store,
        monkeypatch,
        {"queries/rollup_refresh_usage_hourly.sql": lambda: store.insert_calls([late])},
    )
    assert rollup.refresh_usage_rollup(store) > 0
    monkeypatch.undo()
    assert 0 < fresh_hours(store, since, until) < 30  # the run stops at the late call's hour
    assert_correct(store, since, until)
    assert rollup.refresh_usage_rollup(store) > 0
    assert fresh_hours(store, since, until) == whole_hours(since, until)
    assert_correct(store, since, until)


def test_insert_after_read_before_record_leaves_the_hour_stale(store, monkeypatch):
    """A call landing after the roll-up rows are written but before the hour is recorded:
    the recorded signature predates it. Holds."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    since, until = window(now)
    store.insert_calls(calls(now, n=60))
    # A duplicate with a newer version (a stream's final usage after its estimate) and a new
    # call of an existing task in another hour.
    newer = [
        replace(calls(now, n=60)[9], cost_usd=Decimal("7"), version=2),
        extra_call(now - timedelta(hours=2), "after"),
    ]
    hooked(store, monkeypatch, {"record": lambda: store.insert_calls(newer)})
    assert rollup.refresh_usage_rollup(store) > 0
    monkeypatch.undo()
    assert_correct(store, since, until)
    assert rollup.refresh_usage_rollup(store) > 0
    assert_correct(store, since, until)


def test_refreshes_completing_out_of_order(store, monkeypatch):
    """Two refreshes of the same hours (two processors on one store): the later one (greater
    refreshed_at) records first, the earlier one after it. Readers keep the later one's rows,
    which merges of the roll-up tables never remove. Holds."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    since, until = window(now)
    store.insert_calls(calls(now, n=60))
    t = now.replace(microsecond=0)
    # The outer refresh asks for its refreshed_at first (t), the inner one, run between the
    # outer one's stale-hours query and its first write, after it (t + 1 s) and records first.
    pin_clock(monkeypatch, t, t + timedelta(seconds=1))

    def later_refresh():
        hooked(store, monkeypatch, {})  # no recursion: plain statements for the inner one
        rollup.refresh_usage_rollup(store)

    hooked(store, monkeypatch, {"queries/rollup_refresh_usage_hourly.sql": later_refresh})
    assert rollup.refresh_usage_rollup(store) > 0
    monkeypatch.undo()
    for table in ROLLUP_TABLES + ("llm_rollup_hours",):
        store.command(f"OPTIMIZE TABLE {table} FINAL")
    assert fresh_hours(store, since, until) == whole_hours(since, until)
    assert_correct(store, since, until)


def test_a_later_refresh_in_progress_or_dead_does_not_void_an_earlier_one(store, monkeypatch):
    """Refresh B started after refresh A (greater refreshed_at) and wrote its roll-up rows,
    then died (or is still running) before recording its hours; A records its hours. A merge
    of the roll-up tables (ReplacingMergeTree by refreshed_at) then replaces A's rows by B's,
    so the rows of the refresh readers trust were gone: every report read zero for those
    hours. Readers must not use an hour that a later refresh has begun writing."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    since, until = window(now)
    store.insert_calls(calls(now, n=60))
    baseline = answers(store, since, until)
    t = now.replace(microsecond=0)
    # A asks for its refreshed_at first (t), B after (t + 1 s); B runs inside A, between A's
    # stale-hours query and its first write, and dies before recording.
    pin_clock(monkeypatch, t, t + timedelta(seconds=1))

    def refresh_b_dies():
        hooked(store, monkeypatch, {"record": crash})
        with pytest.raises(Crash):
            rollup.refresh_usage_rollup(store)
        hooked(store, monkeypatch, {})

    hooked(store, monkeypatch, {"queries/rollup_refresh_usage_hourly.sql": refresh_b_dies})
    assert rollup.refresh_usage_rollup(store) > 0
    monkeypatch.undo()
    for table in ROLLUP_TABLES + ("llm_rollup_hours",):
        store.command(f"OPTIMIZE TABLE {table} FINAL")
    assert answers(store, since, until) == baseline
    assert_correct(store, since, until)
    # The dead refresh's hours count as stale, so the next refresh makes them current again.
    assert rollup.refresh_usage_rollup(store) > 0
    assert fresh_hours(store, since, until) == whole_hours(since, until)
    assert answers(store, since, until) == baseline


def test_a_newer_releases_refresh_does_not_void_an_older_ones(store, monkeypatch):
    """During a rolling upgrade two releases refresh one store. The newer release's refresh
    (rollup_format 2, greater refreshed_at) replaces the older one's roll-up rows when the
    tables merge; the older release must then not read the hour from its own, older refresh."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    since, until = window(now)
    store.insert_calls(calls(now, n=60))
    baseline = answers(store, since, until)
    t = now.replace(microsecond=0)
    pin_clock(monkeypatch, t, t + timedelta(seconds=1))
    assert rollup.refresh_usage_rollup(store) > 0  # this release, at t
    # The newer release's refresh at t + 1 s: the same rows, recorded as rollup_format 2 (and
    # to it, format 1 hours are stale).
    own = rollup.read_sql

    def newer_release(name: str) -> str:
        sql = own(name)
        if name == "queries/rollup_record_hours.sql":
            return sql.replace("\n       1\n", "\n       2\n")
        return sql.replace("r.rolled_format != 1", "r.rolled_format != 2")

    monkeypatch.setattr(rollup, "read_sql", newer_release)
    assert rollup.refresh_usage_rollup(store) > 0
    monkeypatch.undo()
    recorded = "SELECT groupUniqArrayIf(rollup_format, source_rows > 0) FROM llm_rollup_hours"
    assert sorted(store.query(recorded).rows[0][0]) == [1, 2]
    for table in ROLLUP_TABLES:
        store.command(f"OPTIMIZE TABLE {table} FINAL")
    assert answers(store, since, until) == baseline
    assert_correct(store, since, until)


def test_concurrent_refreshes_of_a_tasks_two_hours(store, monkeypatch):
    """A task with calls in two hours, each hour refreshed by its own refresh at the same time
    (two processors, or the report's window and the budget thread): each refresh's fragments
    statement looks for the task in other hours before the other's fragments are stored, so
    neither fragment was flagged multi_hour and both hours were current: the per-task views
    counted one task as two. Simulated by hiding the first refresh's fragments part while the
    second runs. A refresh now checks again after writing and leaves such an hour stale."""
    base = datetime(2026, 6, 15, 10, 0)
    rows = [
        replace(extra_call(base + timedelta(minutes=20), "a"), task_id="split"),
        replace(
            extra_call(base + timedelta(hours=1, minutes=20), "b"),
            task_id="split",
            route="anthropic/claude",
            attempt_kind="fallback",
        ),
        extra_call(base + timedelta(minutes=40), "c"),
        extra_call(base + timedelta(hours=1, minutes=40), "d"),
    ]
    store.insert_calls(rows)
    since, until = base, base + timedelta(hours=2)
    baseline = answers(store, since, until)
    store.command("SYSTEM STOP MERGES llm_task_fragments")
    newest_part = (
        "SELECT name FROM system.parts WHERE database = currentDatabase() "
        "AND table = 'llm_task_fragments' AND active ORDER BY max_block_number DESC LIMIT 1"
    )

    def second_refresh_meanwhile():
        part = store.query(newest_part).rows[0][0]  # the first refresh's fragments
        store.command(f"ALTER TABLE llm_task_fragments DETACH PART '{part}'")
        hooked(store, monkeypatch, {})
        rollup.refresh_usage_rollup(store, since=until - timedelta(hours=1), until=until)
        store.command(f"ALTER TABLE llm_task_fragments ATTACH PART '{part}'")

    hooked(
        store,
        monkeypatch,
        {"queries/rollup_refresh_task_hourly.sql": second_refresh_meanwhile},
    )
    assert rollup.refresh_usage_rollup(store, since=since, until=since + timedelta(hours=1))
    monkeypatch.undo()
    assert answers(store, since, until) == baseline
    assert_correct(store, since, until)
    # The next refresh makes both hours current, the task flagged.
    rollup.refresh_usage_rollup(store)
    assert fresh_hours(store, since, until) == 2
    assert answers(store, since, until) == baseline
