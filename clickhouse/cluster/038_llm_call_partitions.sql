-- Cluster variant of schema/038_llm_call_partitions.sql, the same parameterised view on every
-- node. Its query must stay identical to the base one (tests/unit/test_cluster_ddl.py). On a
-- cluster `llm_calls` is the Distributed table, which has no parts of its own: the view is
-- empty and readers read every partition (correct, only slower).
CREATE OR REPLACE VIEW llm_call_partitions ON CLUSTER '__CLUSTER__' AS
SELECT groupUniqArray(partition_id) AS partitions
FROM system.parts
WHERE database = currentDatabase() AND table = 'llm_calls' AND active
  AND max_time >= toStartOfSecond({since:DateTime64(6)})
  AND min_time < {until:DateTime64(6)}
