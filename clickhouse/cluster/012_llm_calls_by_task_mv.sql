-- Cluster variant of schema/012_llm_calls_by_task_mv.sql: on every shard, copies each block inserted
-- into llm_calls_local into llm_calls_by_task_local.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`.
CREATE MATERIALIZED VIEW IF NOT EXISTS llm_calls_by_task_mv ON CLUSTER '__CLUSTER__'
TO llm_calls_by_task_local AS
SELECT
    task_id, customer_id, span_id, ts, workspace_id, plan, feature, route, status,
    latency_ms, attempt, attempt_kind, sdk_retries, cost_usd, inserted_at, version
FROM llm_calls_local
