-- Per-task roll-up, finest level: one row per UTC hour, task and customer (a "fragment": the
-- task's deduplicated calls in that hour), with what the per-task views need: first and last
-- attempt (time, span id, route), attempts, retries, fallbacks, cost, fallback cost, failed
-- cost. Recomputed per hour together with llm_usage_hourly (same refresh, same freshness rule:
-- llm_rollup_hours / llm_rollup_fresh), never by a materialized view, so duplicate inserts do
-- not count twice. llm_task_hourly aggregates these rows; queries read the aggregates and come
-- back here only for tasks whose calls span more than one hour of the period (multi_hour,
-- or a task also present among the calls read from llm_calls), which they merge per task.
-- task_key is sipHash64(task_id), as the usage roll-up already counts tasks.
CREATE TABLE IF NOT EXISTS llm_task_fragments
(
    hour              DateTime('UTC'),
    task_key          UInt64,
    customer_id       LowCardinality(String),
    workspace_id      String,
    -- The task had calls in another hour when this hour was refreshed (either fragment of a
    -- task spanning two hours carries it: the later refresh sees the earlier one; of two at
    -- once, queries/rollup_unflagged_hours.sql keeps an unflagged hour from being recorded).
    multi_hour        Bool,
    first_ts          DateTime64(6, 'UTC'),
    first_span        String,
    first_route       String,
    last_ts           DateTime64(6, 'UTC'),
    last_span         String,
    last_route        String,
    calls             UInt64,
    retries           UInt64,
    fallbacks         UInt64,
    cost_usd          Decimal(38, 18),
    fallback_cost_usd Decimal(38, 18),
    failed_cost_usd   Decimal(38, 18),
    refreshed_at      DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(refreshed_at)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, task_key, customer_id)
