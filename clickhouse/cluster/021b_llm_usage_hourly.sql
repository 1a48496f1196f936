-- Cluster variant of schema/021_llm_usage_hourly.sql: `llm_usage_hourly` as a Distributed table over `llm_usage_hourly_local`;
-- readers and writers use this name, as in the single-server schema. Sharding key: cityHash64(hour):
-- an hour's refreshed rows (and its marker row) replace each other on one shard.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/021_llm_usage_hourly.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_usage_hourly ON CLUSTER '__CLUSTER__'
AS llm_usage_hourly_local
ENGINE = Distributed('__CLUSTER__', '__DATABASE__', 'llm_usage_hourly_local', cityHash64(hour))
