-- Recompute the llm_tasks rows of the given tasks from all their stored calls and root spans.
-- wasted_cost_usd: cost of attempts that did not produce the result (every failed or invalid
-- attempt; the whole task when it failed).
-- A task whose root span has not arrived is written only once its newest call has been stored
-- for {finalize_ms} milliseconds (the finalisation window, `task_finalize_seconds`; 0: at
-- once), with outcome 'unknown'; the root arriving later rewrites it with the real outcome.
-- Tasks held back are finalised by the processor's sweep (clickhouse/link_open_tasks.sql);
-- once a task has a row, every later call or root rewrites it at once.
-- outcome is success | failure | unknown: 'success' as reported; any other word the app set
-- ('rejected', 'cancelled', ...) did not deliver a result, so it counts as a failure (its
-- whole cost wasted), and the word itself is kept in outcome_detail.
-- start_bucket (the task's day in llm_tasks_by_start, schema/040) is carried from the task's
-- newest row; a task's first row takes the later of today and its ended_at's day (UTC), so two
-- processors writing a task's first row at once agree on it except across midnight.
INSERT INTO llm_tasks (task_id, customer_id, workspace_id, plan, feature, outcome, calls, retries,
    fallbacks, sdk_retries, cost_usd, wasted_cost_usd, original_route, final_route, started_at,
    ended_at, version, outcome_detail, start_bucket)
SELECT
    c.task_id,
    if(t.customer_id != '', t.customer_id, c.call_customer_id) AS customer_id,
    if(t.workspace_id != '', t.workspace_id, c.call_workspace_id) AS workspace_id,
    if(t.plan != '', t.plan, c.call_plan) AS plan,
    if(t.feature != '', t.feature, c.call_feature) AS feature,
    multiIf(lower(t.outcome) IN ('', 'unknown'), 'unknown', lower(t.outcome) = 'success', 'success',
            'failure') AS outcome,
    c.calls, c.retries, c.fallbacks, c.total_sdk_retries AS sdk_retries,
    c.total_cost_usd AS cost_usd,
    if(outcome = 'failure', c.total_cost_usd, c.failed_cost_usd) AS wasted_cost_usd,
    c.original_route, c.final_route,
    if(t.task_id != '', least(t.started_at, c.first_ts), c.first_ts) AS started_at,
    if(t.task_id != '', greatest(t.ended_at, c.last_ts), c.last_ts) AS ended_at,
    {version:UInt64} AS version,
    t.outcome AS outcome_detail,
    if(e.task_id != '', e.start_bucket,
       greatest(toDate(ended_at, 'UTC'), toDate(now(), 'UTC'))) AS start_bucket
FROM
(
    SELECT
        task_id,
        -- Without a root: the first call that carries each (a process that lost the
        -- customer's baggage stores its calls unattributed; that must not make the task so).
        argMin(customer_id, (customer_id = '(unattributed)', ts)) AS call_customer_id,
        argMin(workspace_id, (customer_id = '(unattributed)', ts)) AS call_workspace_id,
        argMin(plan, (plan = '', ts)) AS call_plan,
        argMin(feature, (feature = '', ts)) AS call_feature,
        toUInt32(count()) AS calls,
        toUInt32(countIf(attempt_kind = 'retry')) AS retries,
        toUInt32(countIf(attempt_kind = 'fallback')) AS fallbacks,
        toUInt32(sum(sdk_retries)) AS total_sdk_retries,
        sum(cost_usd) AS total_cost_usd,
        sumIf(cost_usd, status != 'ok') AS failed_cost_usd,
        argMin(route, (ts, span_id)) AS original_route,
        argMax(route, (ts, span_id)) AS final_route,
        min(ts) AS first_ts,
        -- latency_ms is fractional: the end to the microsecond, as ts (whole ms cut up to 1 ms)
        max(ts + toIntervalMicrosecond(toInt64(round(latency_ms * 1000)))) AS last_ts,
        max(inserted_at) AS last_inserted_at
    FROM llm_calls_by_task FINAL
    WHERE task_id IN {task_ids:Array(String)}
    GROUP BY task_id
) AS c
LEFT JOIN
(
    SELECT
        task_id,
        argMax(outcome, version) AS outcome,
        argMax(customer_id, version) AS customer_id,
        argMax(workspace_id, version) AS workspace_id,
        argMax(plan, version) AS plan,
        argMax(feature, version) AS feature,
        min(started_at) AS started_at,
        max(ended_at) AS ended_at
    FROM llm_task_spans FINAL
    WHERE task_id IN {task_ids:Array(String)}
    GROUP BY task_id
) AS t ON c.task_id = t.task_id
LEFT JOIN
(
    -- The task's row as written so far (read by key): its start_bucket is kept.
    SELECT task_id, argMax(start_bucket, version) AS start_bucket
    FROM llm_tasks
    WHERE task_id IN {task_ids:Array(String)}
    GROUP BY task_id
) AS e ON c.task_id = e.task_id
WHERE t.task_id != ''
    OR c.last_inserted_at <= now64(3) - toIntervalMillisecond({finalize_ms:UInt64})
    -- Already written (finalised without its root): the window only delays the first write,
    -- and the sweep looks only for tasks without a row, so a late call is counted here.
    OR e.task_id != ''
SETTINGS join_use_nulls = 0
