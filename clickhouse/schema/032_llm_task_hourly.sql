-- Per-task roll-up, aggregated: llm_task_fragments of one refresh counted per UTC hour and per
-- every per-task attribute the reports group or filter by (customer, workspace, first and last
-- route, attempts, whether it retried, whether it fell back). A few hundred rows per hour
-- instead of one per task; `tasks` counts fragments, which queries correct for the tasks that
-- span hours (see llm_task_fragments). Refreshed with llm_usage_hourly, same freshness rule.
CREATE TABLE IF NOT EXISTS llm_task_hourly
(
    hour              DateTime('UTC'),
    customer_id       LowCardinality(String),
    workspace_id      String,
    first_route       String,
    last_route        String,
    calls             UInt64,
    retried           Bool,
    fell_back         Bool,
    tasks             UInt64,
    cost_usd          Decimal(38, 18),
    fallback_cost_usd Decimal(38, 18),
    failed_cost_usd   Decimal(38, 18),
    refreshed_at      DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(refreshed_at)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, customer_id, workspace_id, first_route, last_route, calls, retried, fell_back)
