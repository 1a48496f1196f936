-- Aggregate the llm_task_fragments rows of one refresh (refreshed_at) into llm_task_hourly.
-- Run after rollup_refresh_task_fragments.sql and before rollup_record_hours.sql.
-- Parameters: hours Array(DateTime), refreshed_at DateTime64(6).
INSERT INTO llm_task_hourly
SELECT
    hour, customer_id, workspace_id, first_route, last_route, calls, retries > 0 AS retried,
    fallbacks > 0 AS fell_back, count(), sum(cost_usd), sum(fallback_cost_usd),
    sum(failed_cost_usd), {refreshed_at:DateTime64(6)}
FROM llm_task_fragments
WHERE hour IN {hours:Array(DateTime)} AND refreshed_at = {refreshed_at:DateTime64(6)}
GROUP BY hour, customer_id, workspace_id, first_route, last_route, calls, retried, fell_back
