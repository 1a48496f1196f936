-- Cluster variant of schema/031_llm_task_fragments.sql: the shard-local, replicated table behind the Distributed `llm_task_fragments`.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/031_llm_task_fragments.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_task_fragments_local ON CLUSTER '__CLUSTER__'
(
    hour              DateTime('UTC'),
    task_key          UInt64,
    customer_id       LowCardinality(String),
    workspace_id      String,
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', refreshed_at)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, task_key, customer_id)
