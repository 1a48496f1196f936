-- Every version of every llm_tasks row, filed by the task's start_bucket: reports over a period
-- of task starts (clickhouse/queries/feature_cost.sql) read the days from the period's first
-- on with FINAL, instead of every task ever stored (llm_tasks is keyed by random task ids, so
-- no condition there skips anything). Filled only by the materialized view of 041 (and, once,
-- by the back-fill of a store from before it: Store.create_schema); readers use FINAL.
-- start_bucket is the same in all versions of a task (link_tasks.sql carries it), so they
-- replace each other here as in llm_tasks. It is on or after the day of the task's newest
-- started_at: the first version's bucket is at least the day its ended_at falls on, later
-- versions only add calls and roots, so their started_at is at most that (and in practice
-- the bucket is the first write's day). Hence a task that started on or after `since` has a
-- bucket on or after since's day; there is no upper bound (a root that started earlier can
-- move a task back into the period), so readers read from since's day to now.
-- Partitioned by week: FINAL merges parts only within a partition, and a past week's parts
-- merge down while new versions land in the current week (a 7-day report over 3.3 M tasks:
-- ~60 ms with weekly partitions, ~77 ms with monthly ones, as bench/bench_queries.py leaves
-- the parts).
CREATE TABLE IF NOT EXISTS llm_tasks_by_start
(
    task_id         String,
    customer_id     LowCardinality(String),
    workspace_id    String,
    plan            LowCardinality(String),
    feature         LowCardinality(String),
    outcome         LowCardinality(String),
    calls           UInt32,
    retries         UInt32,
    fallbacks       UInt32,
    sdk_retries     UInt32,
    cost_usd        Decimal(38, 18),
    wasted_cost_usd Decimal(38, 18),
    original_route  String,
    final_route     String,
    started_at      DateTime64(6, 'UTC'),
    ended_at        DateTime64(6, 'UTC'),
    version         UInt64,
    outcome_detail  LowCardinality(String) DEFAULT '',
    start_bucket    Date
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toMonday(start_bucket)
ORDER BY (start_bucket, task_id)
