-- Cluster variant of schema/040_llm_tasks_by_start.sql: `llm_tasks_by_start` as a Distributed table over `llm_tasks_by_start_local`;
-- reports read this name, as in the single-server schema. Sharding key: cityHash64(task_id), as
-- llm_tasks: the view writes each row on its task's shard, where its later versions land too.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/040_llm_tasks_by_start.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_tasks_by_start ON CLUSTER '__CLUSTER__'
AS llm_tasks_by_start_local
ENGINE = Distributed('__CLUSTER__', '__DATABASE__', 'llm_tasks_by_start_local', cityHash64(task_id))
