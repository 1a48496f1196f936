-- Cluster variant of schema/005_customers.sql: small, so one full copy on EVERY node (one replication
-- path for the whole cluster, no {shard}): queries join it locally on each shard.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/005_customers.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS customers ON CLUSTER '__CLUSTER__'
(
    customer_id       String,
    name              String,
    plan              String,
    -- NULL: the plan's price applies.
    custom_price_usd  Nullable(Decimal(38, 6)),
    workspaces        Array(String),
    version           UInt64,
    -- Markup on AI cost in the billing export, in percent; NULL: the plan markup applies.
    -- After version: an older store gets it appended (schema_upgrade.py), in this order.
    markup_pct        Nullable(Decimal(38, 18))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}', version)
ORDER BY customer_id
