"""The store reads every period and hour in UTC whatever the machine's timezone: chDB takes its
timezone from the process when it is loaded, and Store.open loads it in UTC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

# Runs in a fresh process: chDB takes the timezone once, when it is loaded.
REPORTS = textwrap.dedent(
    """
    import json, sys, time
    from datetime import datetime, timedelta, timezone
    from decimal import Decimal

    from llm_margin.processor.records import CallRecord
    from llm_margin.processor.reports.customers import customer_rows
    from llm_margin.processor.reports.rollup import refresh_usage_rollup
    from llm_margin.processor.storage import Store

    store = Store.open(data_dir=sys.argv[1])
    edge = datetime(2026, 12, 1, tzinfo=timezone.utc)
    store.insert_calls(
        [
            CallRecord(
                ts=edge + timedelta(minutes=minutes), trace_id=f"{i:032x}", span_id=f"{i:016x}",
                task_id=f"t{i}", customer_id="acme", cost_usd=Decimal(cost), priced=True,
                version=1,
            )
            for i, (minutes, cost) in enumerate(
                [(-1, "100"), (0, "1"), (45, "2"), (95, "4"), (185, "8")]
            )
        ]
    )
    since, until = edge, edge + timedelta(hours=3)

    def cost():
        return str(sum(r["cost_usd"] for r in customer_rows(store, since, until)))

    raw = cost()
    refresh_usage_rollup(store)
    hours = [h.strftime("%H:%M") for (h,) in store.query(
        "SELECT DISTINCT hour FROM llm_rollup_hours ORDER BY hour").rows]
    fresh = store.query(
        "SELECT fresh_to - fresh_from FROM llm_rollup_fresh("
        "since = {s:DateTime64(6)}, until = {u:DateTime64(6)})", {"s": since, "u": until}
    ).rows[0][0]
    print(json.dumps({"raw": raw, "rolled": cost(), "hours": hours, "fresh_seconds": int(fresh),
                      "local": time.strftime("%Z")}))
    store.close()
    """
)


def run(script: str, tz: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**os.environ, "TZ": tz},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("tz", ["Asia/Tokyo", "Asia/Kolkata", "America/New_York"])
def test_periods_and_rollup_hours_are_utc_whatever_the_machine_timezone(tmp_path, tz):
    done = run(REPORTS, tz, str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    # [Dec 1 00:00Z, 03:00Z): 1 + 2 + 4; the call a minute before and the one at 03:05 are out.
    assert answer["raw"] == answer["rolled"] == "7.000000000000000000"
    # Whole UTC hours, 02:00 as an empty marker (in India, hours taken in local time would
    # fall on the half hour).
    assert answer["hours"] == ["23:00", "00:00", "01:00", "02:00", "03:00"]
    assert answer["fresh_seconds"] == 3 * 3600  # the roll-up is used for the whole period
    assert answer["local"] != "UTC"  # the process keeps its own timezone


LOADED_FIRST = (
    "import sys, chdb\n"
    "from llm_margin.processor.storage import Store, StoreTimezoneError\n"
    "try:\n"
    "    Store.open(data_dir=sys.argv[1]).close()\n"
    "    print('opened')\n"
    "except StoreTimezoneError as exc:\n"
    "    print(exc)\n"
)


@pytest.mark.parametrize(
    ("tz", "answer"),
    [
        ("Asia/Tokyo", "loaded in timezone Asia/Tokyo"),
        ("Europe/London", "loaded in timezone Europe/London"),  # UTC in winter only
        ("Etc/UTC", "opened"),  # UTC under another name (a Debian machine's default)
        ("Zulu", "opened"),
    ],
)
def test_a_chdb_loaded_first_opens_only_in_utc(tmp_path, tz, answer):
    done = run(LOADED_FIRST, tz, str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    assert answer in done.stdout
