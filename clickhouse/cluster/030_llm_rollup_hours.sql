-- Cluster variant of schema/030_llm_rollup_hours.sql: small (one row per refreshed hour), so one
-- full copy on EVERY node (one replication path for the whole cluster, no {shard}).
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/030_llm_rollup_hours.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_rollup_hours ON CLUSTER '__CLUSTER__'
(
    hour            DateTime('UTC'),
    source_rows     UInt64,
    source_modified DateTime('UTC'),
    refreshed_at    DateTime64(6, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}', refreshed_at)
ORDER BY hour
