-- Cost per successful task by feature over [since, until) (tasks by start time). The unit cost
-- divides ALL the feature's cost, failures and retries included, by the tasks that succeeded:
-- what one delivered result really costs.
-- customer: that customer's tasks only (llm_tasks.customer_id: the task's customer); '' for
-- every customer. Applied after FINAL, like the period: a task's newest version decides.
-- Tasks are read from llm_tasks_by_start (schema/040), whose start_bucket is on or after the
-- day of a task's newest started_at: FINAL reads the days from since's on, not every task
-- ever stored (a task's versions share their bucket, so FINAL still keeps its newest).
-- Parameters: since DateTime64(6), until DateTime64(6), customer String.
SELECT
    feature_name AS feature,
    n_tasks AS tasks,
    n_success AS successful_tasks,
    round(n_success * 100 / n_tasks, 2) AS success_rate_pct,
    n_calls AS calls,
    total_cost AS cost_usd,
    total_wasted AS wasted_cost_usd,
    if(n_success > 0, total_cost / toDecimal128(n_success, 0), NULL)
        AS cost_per_successful_task_usd,
    n_customers AS active_customers
FROM
(
    SELECT
        if(feature != '', feature, '(none)') AS feature_name,
        count() AS n_tasks,
        countIf(outcome = 'success') AS n_success,
        sum(calls) AS n_calls,
        sum(cost_usd) AS total_cost,
        sum(wasted_cost_usd) AS total_wasted,
        uniqExact(customer_id) AS n_customers
    FROM llm_tasks_by_start FINAL
    WHERE start_bucket >= toDate({since:DateTime64(6)}, 'UTC')
      AND started_at >= {since:DateTime64(6)} AND started_at < {until:DateTime64(6)}
      AND ({customer:String} = '' OR customer_id = {customer:String})
    GROUP BY feature_name
)
ORDER BY cost_usd DESC, feature ASC
