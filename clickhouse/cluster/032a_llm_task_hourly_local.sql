-- Cluster variant of schema/032_llm_task_hourly.sql: the shard-local, replicated table behind the Distributed `llm_task_hourly`.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/032_llm_task_hourly.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_task_hourly_local ON CLUSTER '__CLUSTER__'
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', refreshed_at)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, customer_id, workspace_id, first_route, last_route, calls, retried, fell_back)
