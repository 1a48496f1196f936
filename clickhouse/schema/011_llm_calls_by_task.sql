-- The columns of llm_calls that task linking reads, keyed by task: linking a batch's tasks
-- (clickhouse/link_attempts.sql, link_tasks.sql) reads their calls by primary key here
-- instead of scanning llm_calls, whose key is (customer_id, span_id), so its cost follows
-- the batch, not the store. Filled only by the materialized view of 012 (every insert into
-- llm_calls, rewrites included); rows replace each other as in llm_calls (same key columns,
-- same version), so readers use FINAL.
CREATE TABLE IF NOT EXISTS llm_calls_by_task
(
    task_id      String,
    customer_id  LowCardinality(String),
    span_id      String,
    ts           DateTime64(6, 'UTC'),
    workspace_id String,
    plan         LowCardinality(String),
    feature      LowCardinality(String),
    route        String,
    status       LowCardinality(String),
    latency_ms   Float64,
    attempt      UInt32,
    attempt_kind LowCardinality(String),
    sdk_retries  UInt32,
    cost_usd     Decimal(38, 18),
    inserted_at  DateTime64(3, 'UTC'),
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (task_id, customer_id, span_id)
