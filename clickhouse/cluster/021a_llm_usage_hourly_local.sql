-- Cluster variant of schema/021_llm_usage_hourly.sql: the shard-local, replicated table behind the Distributed `llm_usage_hourly`.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/021_llm_usage_hourly.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_usage_hourly_local ON CLUSTER '__CLUSTER__'
(
    hour               DateTime('UTC'),
    customer_id        LowCardinality(String),
    workspace_id       String,
    plan               LowCardinality(String),
    feature            LowCardinality(String),
    provider           LowCardinality(String),
    model              String,
    priced             Bool,
    calls              UInt64,
    failed_calls       UInt64,
    input_tokens       UInt64,
    output_tokens      UInt64,
    cost_usd           Decimal(38, 18),
    -- Distinct tasks as 64-bit SipHash of task_id (uniqExact itself hashes strings).
    tasks_state        AggregateFunction(uniqExact, UInt64),
    first_ts           DateTime64(6, 'UTC'),
    last_ts            DateTime64(6, 'UTC'),
    source_rows        UInt64,
    source_inserted_at DateTime64(3, 'UTC'),
    refreshed_at       DateTime64(6, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', refreshed_at)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, customer_id, workspace_id, plan, feature, provider, model, priced)
