-- Cluster variant of schema/031_llm_task_fragments.sql: `llm_task_fragments` as a Distributed table over `llm_task_fragments_local`;
-- readers and writers use this name, as in the single-server schema. Sharding key: cityHash64(hour):
-- an hour's refreshed rows replace each other on one shard, like llm_usage_hourly's.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/031_llm_task_fragments.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_task_fragments ON CLUSTER '__CLUSTER__'
AS llm_task_fragments_local
ENGINE = Distributed('__CLUSTER__', '__DATABASE__', 'llm_task_fragments_local', cityHash64(hour))
