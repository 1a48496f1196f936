-- Recompute llm_task_fragments for the given hours from llm_calls, each stored call once (the
-- newest version of each (customer_id, span_id), as FINAL would keep it): one row per hour,
-- task and customer. multi_hour marks tasks with more than one fragment in this batch (calls in
-- several hours, or under several customers) or with a fragment stored for another hour. Run before rollup_record_hours.sql, with the same
-- refreshed_at. Parameters: hours Array(DateTime), refreshed_at DateTime64(6),
-- since DateTime64(6), until DateTime64(6) (the hours' overall range, for part pruning).
INSERT INTO llm_task_fragments
WITH
    fragments AS
    (
        SELECT
            toStartOfHour(ts) AS hour,
            sipHash64(task_id) AS task_key,
            customer_id,
            any(workspace_id) AS workspace_id,
            -- (ts, span_id) is unique within a fragment, so the smallest (ts, span_id, route)
            -- is the first attempt with its route: one aggregate instead of min + argMin
            -- (tuple-keyed aggregates are most of this statement's time).
            min((ts, span_id, route)) AS first_attempt,
            max((ts, span_id, route)) AS last_attempt,
            count() AS n_calls,
            countIf(attempt_kind = 'retry') AS n_retries,
            countIf(attempt_kind = 'fallback') AS n_fallbacks,
            sum(cost_usd) AS cost,
            sumIf(cost_usd, attempt_kind = 'fallback') AS fallback_cost,
            sumIf(cost_usd, status != 'ok') AS failed_cost
        FROM
        (
            SELECT ts, span_id, task_id, customer_id, workspace_id, route, attempt_kind, status,
                   cost_usd
            FROM llm_calls
            WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
              AND toStartOfHour(ts) IN {hours:Array(DateTime)}
            ORDER BY version DESC
            LIMIT 1 BY customer_id, span_id
        )
        GROUP BY hour, task_key, customer_id
    )
SELECT
    hour, task_key, customer_id, workspace_id,
    -- More than one fragment: calls in several hours, or under several customers in one hour
    -- (a process without the customer's baggage): either way not one task per fragment.
    count() OVER (PARTITION BY task_key) > 1
        OR task_key IN
        (
            SELECT task_key FROM llm_task_fragments
            WHERE hour NOT IN {hours:Array(DateTime)}
              AND task_key IN (SELECT task_key FROM fragments)
        ) AS multi_hour,
    first_attempt.1, first_attempt.2, first_attempt.3, last_attempt.1, last_attempt.2,
    last_attempt.3,
    n_calls, n_retries, n_fallbacks, cost, fallback_cost, failed_cost,
    {refreshed_at:DateTime64(6)}
FROM fragments
