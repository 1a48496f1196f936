-- Cluster variant of schema/002_llm_task_spans.sql: `llm_task_spans` as a Distributed table over `llm_task_spans_local`;
-- readers and writers use this name, as in the single-server schema. Sharding key: cityHash64(task_id):
-- a task's root spans share a shard.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/002_llm_task_spans.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_task_spans ON CLUSTER '__CLUSTER__'
AS llm_task_spans_local
ENGINE = Distributed('__CLUSTER__', '__DATABASE__', 'llm_task_spans_local', cityHash64(task_id))
