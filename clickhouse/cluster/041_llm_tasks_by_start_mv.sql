-- Cluster variant of schema/041_llm_tasks_by_start_mv.sql: on every shard, copies each block
-- inserted into llm_tasks_local into llm_tasks_by_start_local.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`.
CREATE MATERIALIZED VIEW IF NOT EXISTS llm_tasks_by_start_mv ON CLUSTER '__CLUSTER__'
TO llm_tasks_by_start_local AS
SELECT
    task_id, customer_id, workspace_id, plan, feature, outcome, calls, retries, fallbacks,
    sdk_retries, cost_usd, wasted_cost_usd, original_route, final_route, started_at, ended_at,
    version, outcome_detail, start_bucket
FROM llm_tasks_local
