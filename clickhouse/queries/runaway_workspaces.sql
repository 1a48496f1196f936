-- Top runaway workspaces over [since, until): spend growth against the previous period of the
-- same length, attempts per task, and loop tasks (tasks with at least {loop_attempts} calls).
-- Parameters: since DateTime64(6), until DateTime64(6), loop_attempts UInt32, limit UInt32.
WITH
    dateDiff('second', {since:DateTime64(6)}, {until:DateTime64(6)}) AS period_seconds,
    {since:DateTime64(6)} - toIntervalSecond(period_seconds) AS previous_since
SELECT
    customer AS customer_id,
    if(workspace != '', workspace, '(none)') AS workspace_id,
    cur_cost AS cost_usd,
    prev_cost AS previous_cost_usd,
    if(prev_cost > 0, round((cur_cost - prev_cost) * 100 / prev_cost, 2), NULL)
        AS spend_growth_pct,
    n_tasks AS tasks,
    n_calls AS calls,
    round(n_calls / n_tasks, 2) AS attempts_per_task,
    top_calls AS max_attempts,
    n_loops AS loop_tasks,
    cur_failed_cost AS failed_cost_usd
FROM
(
    SELECT
        customer,
        workspace,
        sumIf(task_cost, is_current) AS cur_cost,
        sumIf(task_cost, NOT is_current) AS prev_cost,
        countIf(is_current) AS n_tasks,
        sumIf(task_calls, is_current) AS n_calls,
        maxIf(task_calls, is_current) AS top_calls,
        countIf(is_current AND task_calls >= {loop_attempts:UInt32}) AS n_loops,
        sumIf(task_failed_cost, is_current) AS cur_failed_cost
    FROM
    (
        SELECT
            task_id,
            any(customer_id) AS customer,
            any(workspace_id) AS workspace,
            ts >= {since:DateTime64(6)} AS is_current,
            count() AS task_calls,
            sum(cost_usd) AS task_cost,
            sumIf(cost_usd, status != 'ok') AS task_failed_cost
        FROM llm_calls FINAL
        WHERE ts >= previous_since AND ts < {until:DateTime64(6)}
        GROUP BY task_id, is_current
    )
    GROUP BY customer, workspace
    HAVING n_tasks > 0
)
ORDER BY loop_tasks DESC, attempts_per_task DESC, spend_growth_pct DESC NULLS LAST,
         cost_usd DESC, customer_id ASC, workspace_id ASC
LIMIT {limit:UInt32}
