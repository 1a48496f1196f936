-- Cluster variant of schema/040_llm_tasks_by_start.sql: the shard-local, replicated table behind the Distributed `llm_tasks_by_start`.
-- Filled by the materialized view on llm_tasks_local (041), so a task's rows sit on its llm_tasks shard.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/040_llm_tasks_by_start.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_tasks_by_start_local ON CLUSTER '__CLUSTER__'
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version)
PARTITION BY toMonday(start_bucket)
ORDER BY (start_bucket, task_id)
