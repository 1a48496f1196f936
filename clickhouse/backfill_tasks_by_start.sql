-- Once, when llm_tasks_by_start (schema/040) is new on a store that already holds tasks: copies
-- each task's newest row in (afterwards the materialized view of 041 copies every version).
-- Run after the view exists, so a task written meanwhile is copied twice at most: same key,
-- same version, one row under FINAL. Newest rows only: a row written before start_bucket
-- existed reads its own ended_at's day, and later versions carry the newest row's.
INSERT INTO llm_tasks_by_start (task_id, customer_id, workspace_id, plan, feature, outcome,
    calls, retries, fallbacks, sdk_retries, cost_usd, wasted_cost_usd, original_route,
    final_route, started_at, ended_at, version, outcome_detail, start_bucket)
SELECT
    task_id, customer_id, workspace_id, plan, feature, outcome, calls, retries, fallbacks,
    sdk_retries, cost_usd, wasted_cost_usd, original_route, final_route, started_at, ended_at,
    version, outcome_detail, start_bucket
FROM llm_tasks FINAL
-- A partition per week of history: a store kept over 100 weeks passes the default limit.
SETTINGS max_partitions_per_insert_block = 0
