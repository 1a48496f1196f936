-- Cluster variant of schema/011_llm_calls_by_task.sql: the shard-local, replicated table behind the Distributed `llm_calls_by_task`.
-- Filled by the materialized view on llm_calls_local (012), so a call's row sits on its llm_calls shard.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/011_llm_calls_by_task.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_calls_by_task_local ON CLUSTER '__CLUSTER__'
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version)
ORDER BY (task_id, customer_id, span_id)
