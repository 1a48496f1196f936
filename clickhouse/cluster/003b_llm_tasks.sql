-- Cluster variant of schema/003_llm_tasks.sql: `llm_tasks` as a Distributed table over `llm_tasks_local`;
-- readers and writers use this name, as in the single-server schema. Sharding key: cityHash64(task_id):
-- each task's recomputed rows replace each other on one shard.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/003_llm_tasks.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_tasks ON CLUSTER '__CLUSTER__'
AS llm_tasks_local
ENGINE = Distributed('__CLUSTER__', '__DATABASE__', 'llm_tasks_local', cityHash64(task_id))
