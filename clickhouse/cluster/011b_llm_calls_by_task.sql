-- Cluster variant of schema/011_llm_calls_by_task.sql: `llm_calls_by_task` as a Distributed table over `llm_calls_by_task_local`;
-- linking reads this name, as in the single-server schema. Sharding key: cityHash64(span_id), as
-- llm_calls: the view writes each row on its call's shard, where its replacements land too.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/011_llm_calls_by_task.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_calls_by_task ON CLUSTER '__CLUSTER__'
AS llm_calls_by_task_local
ENGINE = Distributed('__CLUSTER__', '__DATABASE__', 'llm_calls_by_task_local', cityHash64(span_id))
