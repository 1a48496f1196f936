-- Cluster variant of schema/020_llm_alerts.sql: small, so one full copy on EVERY node (one replication
-- path for the whole cluster, no {shard}): queries join it locally on each shard.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/020_llm_alerts.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_alerts ON CLUSTER '__CLUSTER__'
(
    fired_at       DateTime64(6, 'UTC'),
    period         String,
    rule           LowCardinality(String),
    severity       LowCardinality(String),
    scope          LowCardinality(String),
    scope_id       String,
    customer_id    String,
    threshold_pct  Decimal(9, 4),
    spent_usd      Decimal(38, 18),
    limit_usd      Decimal(38, 18),
    observed       String,
    message        String,
    version        UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}', version)
ORDER BY (period, rule, scope, scope_id, threshold_pct)
