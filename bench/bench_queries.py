"""Benchmark: the customer-margin and weekly-report queries over generated calls in the
embedded store (chDB). Prints p50/p90 latency per query and for the whole weekly report (what
`llm-margin report weekly` waits for: all of its queries, one after the other), the ratio to the
100 ms target, and the process CPU time per run (steadier than wall time on a busy machine).

    python bench/bench_queries.py                 # 10 million calls over 30 days
    python bench/bench_queries.py --calls 1000000 --runs 5
    python bench/bench_queries.py --customer acme  # one customer's drill-down (plans: all)

Data are generated inside chDB with INSERT ... SELECT FROM numbers() (fast), then the hourly
roll-up is refreshed once, as the running processor does in the background. The week queried
is the last 7 days: ~2.3 million of the calls.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone

from llm_margin.clickhouse import read_sql
from llm_margin.processor.billing import load_billing_file, store_billing
from llm_margin.processor.reports.rollup import refresh_usage_rollup
from llm_margin.processor.reports.views import bind
from llm_margin.processor.reports.weekly import build_weekly
from llm_margin.processor.storage import Store

TARGET_MS = 100.0
BILLING = os.path.join(os.path.dirname(__file__), "..", "demo", "billing.yaml")

# Synthetic calls: 3 calls per task, 8 customers (one unattributed), 40 workspaces, 4
# features, 2 routes, 1 in 17 failed, 1 in 50 unpriced, evenly over the last 30 days and
# inserted in time order, as a processor receives them.
GENERATE_CALLS = """
INSERT INTO llm_calls (ts, trace_id, span_id, task_id, customer_id, workspace_id, plan, feature,
    provider, route, request_model, status, input_tokens, output_tokens, attempt, attempt_kind,
    cost_usd, priced, version)
SELECT
    {now:DateTime64(6)}
        - toIntervalMicrosecond(({total:UInt64} - number) * intDiv(2592000000000, {total:UInt64}))
        AS ts,
    hex(intHash64(intDiv(number, 3))), hex(number), concat('task', toString(intDiv(number, 3))),
    ['acme', 'globex', 'initech', 'hooli', 'umbrella', 'stark', 'wayne', '(unattributed)']
        [intDiv(number, 3) % 8 + 1],
    concat('ws_', toString(intDiv(number, 3) % 40)),
    ['pro', 'enterprise', 'starter'][intDiv(number, 3) % 3 + 1],
    ['chat', 'summarize', 'extract', 'answer'][intDiv(number, 3) % 4 + 1],
    'openai', ['openai/gpt-4o', 'openai/gpt-4o-mini'][number % 2 + 1], 'gpt-4o',
    if(number % 17 = 0, 'error', 'ok'), 1000 + number % 500, 200, number % 3 + 1,
    ['first', 'retry', 'fallback'][number % 3 + 1],
    toDecimal128(number % 1000, 18) / 100000, number % 50 != 0, 1
FROM numbers({start:UInt64}, {count:UInt64})
"""
GENERATE_TASKS = """
INSERT INTO llm_tasks
SELECT task_id, any(customer_id), any(workspace_id), any(plan), any(feature),
       if(countIf(status != 'ok') > 0, 'failure', 'success'), toUInt32(count()),
       toUInt32(countIf(attempt_kind = 'retry')), toUInt32(countIf(attempt_kind = 'fallback')),
       0, sum(cost_usd), sumIf(cost_usd, status != 'ok'), argMin(route, ts), argMax(route, ts),
       min(ts), max(ts), 1, '', toDate(max(ts), 'UTC')
FROM llm_calls
GROUP BY task_id
"""

WEEKLY = (
    "customer_margin",
    "feature_cost",
    "route_fallbacks",
    "plan_margin",
    "budget_usage",
    "runaway_workspaces",
    "unpriced_spend",
    "daily_trend",
)


def load(store: Store, calls: int, now: datetime) -> None:
    chunk = 500_000
    for start in range(0, calls, chunk):
        store.command(
            GENERATE_CALLS,
            {
                "now": now.replace(tzinfo=None),
                "start": start,
                "count": min(chunk, calls - start),
                "total": calls,
            },
        )
    store.command(GENERATE_TASKS)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_runs(run, runs: int) -> tuple[list[float], list[float]]:
    """Wall and process-CPU milliseconds of each of `runs` calls, after one warm-up call."""
    run()
    wall, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        run()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((_cpu_seconds() - cpu_started) * 1000)
    return wall, cpu


def time_query(store: Store, name: str, parameters: dict, runs: int) -> tuple[list, list]:
    sql = read_sql(f"queries/{name}.sql")
    bound = bind(sql, parameters)
    return time_runs(lambda: store.query(sql, bound), runs)


def report_line(name: str, wall: list[float], cpu: list[float]) -> float:
    wall = sorted(wall)
    p50 = statistics.median(wall)
    p90 = wall[min(len(wall) - 1, int(len(wall) * 0.9))]
    print(
        f"{name:<22} {p50:8.1f} {p90:8.1f} {p50 / TARGET_MS:10.2f}x {statistics.median(cpu):8.1f}"
    )
    return p50


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", help="keep the generated store in this directory")
    parser.add_argument(
        "--customer", default="", help="time one customer's reports (`report --customer`)"
    )
    args = parser.parse_args()

    data_dir = args.keep or tempfile.mkdtemp(prefix="llm-margin-bench-")
    store = Store.open(data_dir=data_dir)
    try:
        store_billing(store, *load_billing_file(BILLING))
        now = datetime.now(timezone.utc)
        started = time.perf_counter()
        load(store, args.calls, now)
        print(f"generated {args.calls:,} calls in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        hours = refresh_usage_rollup(store)
        print(f"hourly roll-up: {hours} hours in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        again = refresh_usage_rollup(store)
        print(
            f"roll-up refresh with nothing new: {again} hours in "
            f"{(time.perf_counter() - started) * 1000:.0f} ms"
        )

        parameters = {
            "since": now - timedelta(days=7),
            "until": now,
            "limit": 5,
            "loop_attempts": 5,
            "customer": args.customer,
        }
        customer = args.customer or None
        print(
            f"\n{'query (last 7 days)':<22} {'p50 ms':>8} {'p90 ms':>8} {'p50/target':>11}"
            f" {'cpu ms':>8}"
        )
        worst = 0.0
        for name in WEEKLY:
            worst = max(worst, report_line(name, *time_query(store, name, parameters, args.runs)))
        weekly = report_line(
            "weekly report (all)",
            *time_runs(lambda: build_weekly(store, parameters["since"], now, customer), args.runs),
        )
        print(
            f"\nslowest query p50 {worst:.1f} ms = {worst / TARGET_MS:.2f}x the {TARGET_MS:.0f} ms "
            f"target; whole weekly report p50 {weekly:.1f} ms = {weekly / TARGET_MS:.2f}x"
        )
    finally:
        store.close()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
