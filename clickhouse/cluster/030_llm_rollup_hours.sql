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
    refreshed_at    DateTime64(6, 'UTC'),
    -- Version of the roll-up logic that wrote the hour (queries/rollup_record_hours.sql). A
    -- release that changes how roll-up rows are computed raises it, so hours refreshed by an
    -- older release count as stale and are recomputed (0: before this column existed).
    rollup_format   UInt32 DEFAULT 0
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}', refreshed_at)
ORDER BY hour
