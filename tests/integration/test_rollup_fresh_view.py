"""llm_rollup_fresh (schema/039) on hand-made signatures: which hours count as current, where
the first run of them ends, and which refresh each hour of the run names. The roll-up tests
check that answers never change; this one pins the view's own output, so a rewrite of it for
speed cannot shift the run by an hour or pair an hour with another hour's refresh."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from llm_margin.processor.records import CallRecord
from llm_margin.processor.reports.views import bind
from llm_margin.processor.storage import Store

pytestmark = pytest.mark.integration

H0 = datetime(2026, 11, 2, 10)
FRESH = (
    "SELECT fresh_from, fresh_to, fresh_refreshes FROM llm_rollup_fresh("
    "since = {since:DateTime64(6)}, until = {until:DateTime64(6)})"
)
# Each hour's signature as a refresh records it: the rows and newest modification of the
# llm_calls parts overlapping the hour.
RECORD = """
INSERT INTO llm_rollup_hours (hour, source_rows, source_modified, refreshed_at, rollup_format)
SELECT {hour:DateTime}, sum(rows) + {rows_off:Int64}, max(modification_time),
       {refreshed_at:DateTime64(6)}, {fmt:UInt32}
FROM system.parts
WHERE database = currentDatabase() AND table = 'llm_calls' AND active
  AND max_time >= {hour:DateTime} AND min_time < {hour:DateTime} + INTERVAL 1 HOUR
"""


def call(hour: int, n: int) -> CallRecord:
    return CallRecord(
        ts=H0 + timedelta(hours=hour, minutes=5 + n),
        trace_id=f"{hour:016x}{n:016x}",
        span_id=f"{hour:08x}{n:08x}",
        customer_id="acme",
        cost_usd=Decimal("0.01"),
        priced=True,
        version=1,
    )


def record(store: Store, hour: int, refreshed_at: datetime, rows_off: int = 0, fmt: int = 1):
    store.command(
        RECORD,
        bind(
            RECORD,
            {
                "hour": H0 + timedelta(hours=hour),
                "rows_off": rows_off,
                "refreshed_at": refreshed_at,
                "fmt": fmt,
            },
        ),
    )


def fresh(store: Store, since: datetime, until: datetime):
    return store.query(FRESH, bind(FRESH, {"since": since, "until": until})).rows[0]


def test_the_first_run_of_current_hours_and_each_hours_refresh(tmp_path):
    store = Store.open(data_dir=str(tmp_path / "data"))
    try:
        store.command("SYSTEM STOP MERGES llm_calls")  # one part per hour, as inserted
        for hour in range(7):
            store.insert_calls([call(hour, 0), call(hour, 1)])
        t = datetime(2026, 11, 3)
        r = [t + timedelta(seconds=s) for s in range(10)]
        record(store, 0, r[0])
        record(store, 1, r[0], rows_off=1)  # stale: its parts changed since
        record(store, 2, r[1])
        record(store, 3, r[0])
        record(store, 3, r[2])  # a later refresh of the hour: its entry counts
        record(store, 4, r[3])
        store.command(  # hour 4's newer claim (modification time 0): its rows not yet written
            "INSERT INTO llm_rollup_hours (hour, source_rows, source_modified, refreshed_at,"
            " rollup_format) VALUES ({hour:DateTime}, 0, 0, {at:DateTime64(6)}, 1)",
            {"hour": H0 + timedelta(hours=4), "at": r[4]},
        )
        record(store, 5, r[5], fmt=0)  # an older release's roll-up logic
        record(store, 6, r[6])
        since, until = H0 - timedelta(minutes=20), H0 + timedelta(hours=7, minutes=3)

        # Hours 0, 2, 3 and 6 are current; the first run is hour 0 alone.
        assert fresh(store, since, until) == (H0, H0 + timedelta(hours=1), [r[0]])
        # From hour 1 on: the run is hours 2-3, each with its latest refresh, in hour order.
        since1 = H0 + timedelta(hours=1)
        assert fresh(store, since1, until) == (
            H0 + timedelta(hours=2),
            H0 + timedelta(hours=4),
            [r[1], r[2]],
        )
        # A period ending inside hour 3: only whole hours count.
        assert fresh(store, since1, H0 + timedelta(hours=3, minutes=59)) == (
            H0 + timedelta(hours=2),
            H0 + timedelta(hours=3),
            [r[1]],
        )
        # Nothing current inside the period: an empty run at `until`.
        end = H0 + timedelta(hours=5, minutes=30)
        assert fresh(store, H0 + timedelta(hours=4), end) == (end, end, [])
    finally:
        store.close()
