-- Cluster variant of schema/003_llm_tasks.sql: the shard-local, replicated table behind the Distributed `llm_tasks`.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/003_llm_tasks.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_tasks_local ON CLUSTER '__CLUSTER__'
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
    -- The outcome word the app reported on the task's root span, as given ('rejected', ...);
    -- outcome maps it to success | failure | unknown.
    outcome_detail  LowCardinality(String) DEFAULT '',
    -- The UTC day the task is filed under in llm_tasks_by_start (040); see schema/003.
    start_bucket    Date DEFAULT toDate(ended_at, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version)
ORDER BY task_id
