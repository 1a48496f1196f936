-- Cluster variant of schema/004_plans.sql: small, so one full copy on EVERY node (one replication
-- path for the whole cluster, no {shard}): queries join it locally on each shard.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/004_plans.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS plans ON CLUSTER '__CLUSTER__'
(
    plan                    String,
    monthly_price_usd       Decimal(38, 6),
    included_ai_usd         Decimal(38, 6),
    target_gross_margin_pct Decimal(9, 4),
    version                 UInt64,
    -- Markup on AI cost in the billing export, in percent, for customers on the plan; NULL:
    -- not set. After version: an older store gets it appended (schema_upgrade.py), in this order.
    markup_pct              Nullable(Decimal(38, 18))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}', version)
ORDER BY plan
