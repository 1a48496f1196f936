-- Fallback rate and fallback cost by original route over [since, until): for each task, its
-- first attempt's route is the original route; a task "fell back" when a later attempt went
-- to a different route. Fallback cost is the cost of the fallback attempts; failed cost is
-- the cost of the attempts that failed.
-- Parameters: since DateTime64(6), until DateTime64(6).
SELECT
    first_route AS original_route,
    n_tasks AS tasks,
    n_fallback AS fallback_tasks,
    round(n_fallback * 100 / n_tasks, 2) AS fallback_rate_pct,
    n_retry AS retry_tasks,
    n_calls AS calls,
    total_cost AS cost_usd,
    total_fallback_cost AS fallback_cost_usd,
    total_failed_cost AS failed_cost_usd,
    arrayStringConcat(arraySort(to_routes), ' ') AS fallback_routes
FROM
(
    SELECT
        first_route,
        count() AS n_tasks,
        countIf(task_fallbacks > 0) AS n_fallback,
        countIf(task_retries > 0) AS n_retry,
        sum(task_calls) AS n_calls,
        sum(task_cost) AS total_cost,
        sum(task_fallback_cost) AS total_fallback_cost,
        sum(task_failed_cost) AS total_failed_cost,
        groupUniqArrayIf(last_route, last_route != first_route) AS to_routes
    FROM
    (
        SELECT
            task_id,
            argMin(route, (ts, span_id)) AS first_route,
            argMax(route, (ts, span_id)) AS last_route,
            count() AS task_calls,
            countIf(attempt_kind = 'fallback') AS task_fallbacks,
            countIf(attempt_kind = 'retry') AS task_retries,
            sum(cost_usd) AS task_cost,
            sumIf(cost_usd, attempt_kind = 'fallback') AS task_fallback_cost,
            sumIf(cost_usd, status != 'ok') AS task_failed_cost
        FROM llm_calls FINAL
        WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
        GROUP BY task_id
    )
    GROUP BY first_route
)
ORDER BY fallback_rate_pct DESC, cost_usd DESC, original_route ASC
