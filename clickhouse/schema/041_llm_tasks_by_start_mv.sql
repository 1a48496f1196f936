-- Keeps llm_tasks_by_start (040) in step with llm_tasks: every block inserted into llm_tasks
-- (every version of every task) is copied, inside the same INSERT. A store created before
-- this view existed is back-filled once by the processor (Store.create_schema).
CREATE MATERIALIZED VIEW IF NOT EXISTS llm_tasks_by_start_mv TO llm_tasks_by_start AS
SELECT
    task_id, customer_id, workspace_id, plan, feature, outcome, calls, retries, fallbacks,
    sdk_retries, cost_usd, wasted_cost_usd, original_route, final_route, started_at, ended_at,
    version, outcome_detail, start_bucket
FROM llm_tasks
