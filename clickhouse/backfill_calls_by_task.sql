-- Once, when llm_calls_by_task is created on a store that already holds calls: copies them in
-- (afterwards the materialized view keeps it in step). Rows are deduplicated like llm_calls'.
INSERT INTO llm_calls_by_task
SELECT
    task_id, customer_id, span_id, ts, workspace_id, plan, feature, route, status,
    latency_ms, attempt, attempt_kind, sdk_retries, cost_usd, inserted_at, version
FROM llm_calls FINAL
