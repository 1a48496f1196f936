-- Cluster variant of schema/002_llm_task_spans.sql: the shard-local, replicated table behind the Distributed `llm_task_spans`.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/002_llm_task_spans.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_task_spans_local ON CLUSTER '__CLUSTER__'
(
    task_id      String,
    trace_id     String,
    span_id      String,
    name         String,
    outcome      LowCardinality(String),
    customer_id  LowCardinality(String),
    workspace_id String,
    plan         LowCardinality(String),
    feature      LowCardinality(String),
    started_at   DateTime64(6, 'UTC'),
    ended_at     DateTime64(6, 'UTC'),
    version      UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version)
ORDER BY (task_id, span_id)
