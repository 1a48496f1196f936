-- Keeps llm_calls_by_task (011) in step with llm_calls: every block inserted into llm_calls
-- is copied, inside the same INSERT, with the columns linking needs. A store created before
-- this view existed is back-filled once by the processor (Store.create_schema).
CREATE MATERIALIZED VIEW IF NOT EXISTS llm_calls_by_task_mv TO llm_calls_by_task AS
SELECT
    task_id, customer_id, span_id, ts, workspace_id, plan, feature, route, status,
    latency_ms, attempt, attempt_kind, sdk_retries, cost_usd, inserted_at, version
FROM llm_calls
