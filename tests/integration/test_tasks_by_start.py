"""llm_tasks_by_start (schema 040/041): the copy of llm_tasks that `report features` reads from
the period's first day on, instead of every task ever stored.

A task's versions must share one start_bucket (else FINAL keeps one row per bucket and the task
counts twice), the bucket must never be before the newest started_at's day (else the report
misses the task), and a store from before the table answers the same once upgraded. Every
answer is checked against the query over all of llm_tasks FINAL, as it was before the table.

Timestamps are in 2099: a task's first bucket is the later of its ended_at's day and the day it
is written, so days after today make the data's own days decide, as they would at midnight.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from llm_margin.clickhouse import read_sql
from llm_margin.processor.records import CallRecord, TaskSpanRecord
from llm_margin.processor.reports.views import bind
from llm_margin.processor.storage import Store

pytestmark = pytest.mark.integration

# A UTC midnight that is also a month's first: the buckets on each side are different partitions.
MIDNIGHT = datetime(2099, 7, 1)
DAY = timedelta(days=1)
MIN = timedelta(minutes=1)

FEATURES = read_sql("queries/feature_cost.sql")
# The query as it was before llm_tasks_by_start: every task of llm_tasks, with FINAL.
ALL_TASKS = FEATURES.replace("FROM llm_tasks_by_start FINAL", "FROM llm_tasks FINAL").replace(
    "start_bucket >= toDate({since:DateTime64(6)}, 'UTC')\n      AND ", ""
)
assert "llm_tasks_by_start FINAL" not in ALL_TASKS and "start_bucket >=" not in ALL_TASKS


def call(n: int, task: str, ts: datetime, cost: str = "1.5", **fields) -> CallRecord:
    return CallRecord(
        ts=ts,
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        task_id=task,
        customer_id="acme",
        feature="chat",
        cost_usd=Decimal(cost),
        priced=True,
        latency_ms=1000.0,
        version=1,
        route="openai/gpt-4o",
        provider="openai",
        request_model="gpt-4o",
        **fields,
    )


def root(task: str, started: datetime, ended: datetime) -> TaskSpanRecord:
    return TaskSpanRecord(
        task_id=task,
        trace_id="f" * 32,
        span_id=f"root-{task}",
        outcome="success",
        customer_id="acme",
        feature="chat",
        started_at=started,
        ended_at=ended,
        version=1,
    )


def features(store: Store, since: datetime, until: datetime, sql: str = FEATURES) -> list:
    parameters = bind(sql, {"since": since, "until": until, "customer": ""})
    return store.query(sql, parameters).rows


def tasks_counted(store: Store, since: datetime, until: datetime) -> int:
    """Tasks the features report counts over [since, until), after checking that it answers
    exactly as the query over all of llm_tasks."""
    rows = features(store, since, until)
    assert rows == features(store, since, until, ALL_TASKS), (since, until)
    return sum(row[1] for row in rows)


@pytest.fixture
def store(tmp_path):
    store = Store.open(data_dir=str(tmp_path / "store"))
    try:
        yield store
    finally:
        store.close()


def store_and_link(store: Store, calls=(), roots=()) -> None:
    store.insert_calls(list(calls))
    store.insert_task_spans(list(roots))
    store.link_tasks({c.task_id for c in calls} | {r.task_id for r in roots})


def test_a_task_moving_earlier_across_midnight_counts_once_on_its_first_day(store):
    # Calls stored after midnight; then the root span, which started before it, arrives.
    calls = [call(1, "t", MIDNIGHT + 5 * MIN), call(2, "t", MIDNIGHT + 10 * MIN)]
    store_and_link(store, calls)
    assert tasks_counted(store, MIDNIGHT, MIDNIGHT + DAY) == 1
    # The root ran past the next midnight too: ended_at moves a day later as well.
    late_root = root("t", MIDNIGHT - 5 * MIN, MIDNIGHT + DAY + MIN)
    store_and_link(store, roots=[late_root])
    # Re-deliveries of everything, linked again: still one task.
    store_and_link(store, calls, [late_root])
    assert tasks_counted(store, MIDNIGHT - DAY, MIDNIGHT) == 1
    assert tasks_counted(store, MIDNIGHT, MIDNIGHT + DAY) == 0
    assert tasks_counted(store, MIDNIGHT - DAY, MIDNIGHT + 3 * DAY) == 1
    assert features(store, MIDNIGHT - DAY, MIDNIGHT)[0][4] == 2  # calls
    # Every version of the task kept the bucket of its first.
    assert store.query("SELECT DISTINCT start_bucket FROM llm_tasks_by_start").rows == [
        (MIDNIGHT.date(),)
    ]


def test_a_task_moving_from_after_until_into_the_period(store):
    since, until = MIDNIGHT - DAY, MIDNIGHT
    store_and_link(store, [call(1, "t", until + 10 * 60 * MIN)])
    assert tasks_counted(store, since, until) == 0
    assert tasks_counted(store, until, until + DAY) == 1
    store_and_link(store, roots=[root("t", since + 12 * 60 * MIN, since + 13 * 60 * MIN)])
    store_and_link(store, [call(1, "t", until + 10 * 60 * MIN)])  # a re-delivery
    assert tasks_counted(store, since, until) == 1
    assert tasks_counted(store, until, until + DAY) == 0


def test_a_task_moving_from_the_period_to_before_since(store):
    since, until = MIDNIGHT, MIDNIGHT + DAY
    store_and_link(store, [call(1, "t", since + 60 * MIN)])
    assert tasks_counted(store, since, until) == 1
    store_and_link(store, roots=[root("t", since - 60 * MIN, since + 2 * 60 * MIN)])
    assert tasks_counted(store, since, until) == 0
    assert tasks_counted(store, since - DAY, since) == 1


def test_the_report_reads_from_the_periods_first_day_not_every_task(store):
    """30,000 tasks that started months before the period are not read at all (the query over
    all of llm_tasks reads each of them: over the limit)."""
    store.command(
        "INSERT INTO llm_tasks (task_id, customer_id, feature, outcome, calls, cost_usd, "
        "started_at, ended_at, version, start_bucket) "
        "SELECT concat('old', toString(number)), 'acme', 'chat', 'success', 1, 1, "
        "{at:DateTime64(6)}, {at:DateTime64(6)}, 1, toDate({at:DateTime64(6)}) "
        "FROM numbers(30000)",
        {"at": MIDNIGHT - 90 * DAY},
    )
    store_and_link(store, [call(1, "t", MIDNIGHT + MIN), call(2, "u", MIDNIGHT + 2 * MIN)])
    limited = " SETTINGS max_rows_to_read = 10000, read_overflow_mode = 'throw'"
    rows = features(store, MIDNIGHT, MIDNIGHT + DAY, FEATURES + limited)
    assert [(r[0], r[1]) for r in rows] == [("chat", 2)]
    with pytest.raises(Exception, match="(?i)limit for rows"):
        features(store, MIDNIGHT, MIDNIGHT + DAY, ALL_TASKS + limited)
    assert tasks_counted(store, MIDNIGHT - 91 * DAY, MIDNIGHT + DAY) == 30002


def _old_release_store(path: str) -> list:
    """A store as the release before llm_tasks_by_start left it, with tasks (two versions of
    one), and the features report it answered."""
    store = Store.open(data_dir=path)
    try:
        store.command("DROP VIEW llm_tasks_by_start_mv")
        store.command("DROP TABLE llm_tasks_by_start")
        store.command("ALTER TABLE llm_tasks DROP COLUMN start_bucket")
        # a's calls and root as stored (its rows below are what linking them wrote)
        store.insert_calls([call(1, "a", MIDNIGHT + MIN), call(2, "a", MIDNIGHT + 5 * MIN)])
        store.insert_task_spans([root("a", MIDNIGHT - MIN, MIDNIGHT + 9 * MIN)])
        columns = (
            "task_id, customer_id, feature, outcome, calls, cost_usd, started_at, ended_at, version"
        )
        rows = [
            ("a", "acme", "chat", "success", 2, Decimal("3"), MIDNIGHT + MIN, MIDNIGHT + 9 * MIN, 1),
            # a's newer version: its root started before midnight
            ("a", "acme", "chat", "success", 2, Decimal("3"), MIDNIGHT - MIN, MIDNIGHT + 9 * MIN, 2),
            ("b", "acme", "chat", "failure", 1, Decimal("2"), MIDNIGHT + MIN, MIDNIGHT + 2 * MIN, 1),
            ("c", "globex", "search", "success", 1, Decimal("5"), MIDNIGHT - 3 * DAY,
             MIDNIGHT - 3 * DAY + MIN, 1),
        ]  # fmt: skip
        for row in rows:  # one part per row, as separate linking passes leave them
            store.insert_rows("llm_tasks", [row], columns.split(", "))
        return features(store, MIDNIGHT - 7 * DAY, MIDNIGHT + DAY, ALL_TASKS)
    finally:
        store.close()


def test_a_store_from_before_the_table_answers_the_same_once_upgraded(tmp_path):
    path = str(tmp_path / "old")
    before = _old_release_store(path)
    assert sum(r[1] for r in before) == 3
    store = Store.open(data_dir=path)
    try:
        assert features(store, MIDNIGHT - 7 * DAY, MIDNIGHT + DAY) == before
        for since in (MIDNIGHT - 3 * DAY, MIDNIGHT - DAY, MIDNIGHT):
            tasks_counted(store, since, since + DAY)
        # A later call of an upgraded task: linked under the bucket its newest row had.
        store_and_link(store, [call(7, "a", MIDNIGHT + 30 * MIN), call(8, "a", MIDNIGHT + DAY)])
        assert tasks_counted(store, MIDNIGHT - DAY, MIDNIGHT) == 1
        assert tasks_counted(store, MIDNIGHT - 7 * DAY, MIDNIGHT + 3 * DAY) == 3
    finally:
        store.close()


def test_an_interrupted_back_fill_is_done_again_on_the_next_start(tmp_path):
    path = str(tmp_path / "old")
    before = _old_release_store(path)
    store = Store.open(data_dir=path)
    try:
        # A start that stopped after creating the table and the view, mid back-fill: the
        # table is there, partly filled, not marked filled.
        store.command("ALTER TABLE llm_tasks_by_start MODIFY COMMENT ''")
        store.command("ALTER TABLE llm_tasks_by_start DELETE WHERE task_id != 'a' "
                      "SETTINGS mutations_sync = 1")  # fmt: skip
        assert features(store, MIDNIGHT - 7 * DAY, MIDNIGHT + DAY) != before
    finally:
        store.close()
    store = Store.open(data_dir=path)
    try:
        assert features(store, MIDNIGHT - 7 * DAY, MIDNIGHT + DAY) == before
    finally:
        store.close()
    # Once marked filled it is not copied again (a full read of llm_tasks on every start).
    store = Store.open(data_dir=path)
    try:
        store.command("TRUNCATE TABLE llm_tasks_by_start")
    finally:
        store.close()
    store = Store.open(data_dir=path)
    try:
        assert features(store, MIDNIGHT - 7 * DAY, MIDNIGHT + DAY) == []
    finally:
        store.close()


def test_a_hand_applied_schema_without_the_back_fill_is_warned_about_at_start(tmp_path, caplog):
    """With create_schema off the processor runs no back-fill; if the DBA skipped it, `report
    features` silently leaves out the older tasks, so the start says what to run."""
    import logging

    from llm_margin.processor.config import ServeConfig
    from llm_margin.processor.server import Processor

    from tests.conftest import free_port

    path = str(tmp_path / "old")
    _old_release_store(path)
    store = Store.open(data_dir=path)  # upgraded and back-filled; then "never back-filled":
    store.command("ALTER TABLE llm_tasks_by_start MODIFY COMMENT ''")
    store.command("TRUNCATE TABLE llm_tasks_by_start")
    store.close()

    def start() -> None:
        config = ServeConfig(
            data_dir=path,
            create_schema=False,
            otlp_grpc_port=free_port(),
            otlp_http_port=free_port(),
            spool_dir=str(tmp_path / "spool"),
        ).validate()
        front = Processor(config)
        front.start()
        front.stop()

    with caplog.at_level(logging.WARNING, logger="llm_margin"):
        start()
    assert "backfill_tasks_by_start.sql" in caplog.text
    caplog.clear()
    store = Store.open(data_dir=path, create_schema=False)
    store.command(read_sql("backfill_tasks_by_start.sql"))
    store.command(f"ALTER TABLE llm_tasks_by_start MODIFY COMMENT '{Store.TASKS_BY_START_FILLED}'")
    store.close()
    with caplog.at_level(logging.WARNING, logger="llm_margin"):
        start()
    assert "backfill_tasks_by_start.sql" not in caplog.text
