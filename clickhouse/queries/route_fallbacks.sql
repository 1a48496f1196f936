-- Fallback rate and fallback cost by original route over [since, until): for each task, its
-- first attempt's route is the original route; a task "fell back" when a later attempt went
-- to a different route. Fallback cost is the cost of the fallback attempts; failed cost is
-- the cost of the attempts that failed. Only the task's calls inside the period count.
-- Tasks come from the per-task roll-up (llm_task_hourly) for the hours where it is current
-- and from llm_calls (each call once: its newest version) elsewhere; tasks whose calls span
-- hours are merged from their fragments, so the answer is what grouping llm_calls FINAL by
-- task would say.
-- customer: that customer's tasks only ('' for every customer). A task counts under its
-- customer as in runaway_workspaces.sql: its first call carrying one, also when some of its
-- calls are '(unattributed)'; so the customers' tasks and costs add up to the whole. The
-- roll-up is read by key (llm_task_hourly is sorted by hour, customer); merged tasks are
-- filtered by their customer once merged (a fragment by its own customer, as it was counted).
-- Parameters: since DateTime64(6), until DateTime64(6), customer String.
WITH
    -- Roll-up freshness (schema/039_llm_rollup_fresh.sql): the first contiguous run of whole
    -- hours [fresh_from, fresh_to) whose roll-up is current is read from the roll-up (rows of
    -- the refresh fresh_refreshes[i] for its i-th hour), the rest from llm_calls.
    (
        SELECT (fresh_from, fresh_to, fresh_refreshes)
        FROM llm_rollup_fresh(since = {since:DateTime64(6)}, until = {until:DateTime64(6)})
    ) AS fresh,
    fresh.1 AS fresh_from,
    fresh.2 AS fresh_to,
    fresh.3 AS fresh_refreshes,
    -- Deduplicating the calls read from llm_calls: ORDER BY version LIMIT BY sorts what it
    -- reads, FINAL merges whole partitions in key order; both keep each call's newest version.
    -- Past 7 days of raw calls (a long period, or a stale roll-up) FINAL is much faster, below
    -- it LIMIT BY is. The branch not taken reads nothing.
    -- FINAL reads only the period's partitions (schema/038_llm_call_partitions.sql); none
    -- listed (a Distributed table on a cluster): LIMIT BY.
    (
        SELECT partitions
        FROM llm_call_partitions(since = {since:DateTime64(6)}, until = {until:DateTime64(6)})
    ) AS raw_partitions,
    notEmpty(raw_partitions)
        AND dateDiff('second', {since:DateTime64(6)}, fresh_from)
            + dateDiff('second', fresh_to, {until:DateTime64(6)}) > 604800 AS raw_is_long,
    -- Tasks per (first route, last route, attempts, retried, fell back): the roll-up's
    -- fragments, minus the fragments of merged tasks, plus the merged tasks.
    task_groups AS
    (
        SELECT first_route, last_route, calls, retried, fell_back, sum(n) AS group_tasks,
               sum(cost) AS group_cost, sum(fallback_cost) AS group_fallback_cost,
               sum(failed_cost) AS group_failed_cost
        FROM
        (
            SELECT first_route, last_route, calls, retried, fell_back, toInt64(tasks) AS n,
                   cost_usd AS cost, fallback_cost_usd AS fallback_cost,
                   failed_cost_usd AS failed_cost
            FROM llm_task_hourly
            WHERE hour >= fresh_from AND hour < fresh_to
              AND ({customer:String} = '' OR customer_id = {customer:String})
              AND refreshed_at = fresh_refreshes[dateDiff('hour', fresh_from, hour) + 1]
            UNION ALL
            -- Merged tasks: per task, its fragments in the run and its raw calls together; each
            -- yields +1 for the whole task and -1 for each of its fragments (counted above).
            SELECT g.1, g.2, g.3, g.4, g.5, g.6, g.7, g.8, g.9
            FROM
            (
                SELECT
                    -- The task's customer, as in llm_tasks: its first call carrying one.
                    argMin(customer_id, (customer_id = '(unattributed)', first_ts))
                        AS task_customer,
                    argMin(first_route, (first_ts, first_span)) AS task_first_route,
                    argMax(last_route, (last_ts, last_span)) AS task_last_route,
                    sum(calls) AS task_calls,
                    sum(retries) AS task_retries,
                    sum(fallbacks) AS task_fallbacks,
                    sum(cost_usd) AS task_cost,
                    sum(fallback_cost_usd) AS task_fallback_cost,
                    sum(failed_cost_usd) AS task_failed_cost,
                    -- The task's fragments as the roll-up counted them, to take back out.
                    groupArrayIf((first_route, last_route, calls, retries > 0, fallbacks > 0,
                                  toInt64(-1), -cost_usd, -fallback_cost_usd, -failed_cost_usd,
                                  customer_id),
                                 is_fragment) AS fragments
                FROM
                (
                    SELECT task_key, customer_id, first_ts, first_span, first_route, last_ts,
                           last_span, last_route, calls, retries, fallbacks, cost_usd,
                           fallback_cost_usd, failed_cost_usd, true AS is_fragment
                    FROM llm_task_fragments
                    -- Tasks to merge: tasks with calls outside the run (read from llm_calls) and
                    -- tasks whose calls span hours (one fragment per hour; a refresh flags at
                    -- least one of them multi_hour). Flags from any refresh of the period's
                    -- hours may be taken: merging a task that did not need it changes nothing.
                    -- Only task_key and hour are read for the filter (PREWHERE); the refresh
                    -- check runs on the few rows left.
                    PREWHERE task_key IN
                      (
                          SELECT task_key
                          FROM llm_task_fragments
                          WHERE hour >= toStartOfHour({since:DateTime64(6)})
                            AND hour < {until:DateTime64(6)} AND multi_hour
                          UNION ALL
                          SELECT sipHash64(task_id)
                          FROM llm_calls
                          WHERE (ts >= {since:DateTime64(6)} AND ts < fresh_from)
                             OR (ts >= fresh_to AND ts < {until:DateTime64(6)})
                      )
                      AND hour >= fresh_from AND hour < fresh_to
                    WHERE refreshed_at = fresh_refreshes[dateDiff('hour', fresh_from, hour) + 1]
                    UNION ALL
                    -- Raw calls outside the run, each once (its newest version).
                    SELECT sipHash64(task_id), customer_id, ts, span_id, route, ts, span_id,
                           route, 1, attempt_kind = 'retry', attempt_kind = 'fallback', cost_usd,
                           if(attempt_kind = 'fallback', cost_usd, 0),
                           if(status != 'ok', cost_usd, 0), false
                    FROM
                    (
                        SELECT ts, span_id, task_id, customer_id, route, attempt_kind, status,
                               cost_usd
                        FROM llm_calls
                        WHERE NOT raw_is_long
                          AND ((ts >= {since:DateTime64(6)} AND ts < fresh_from)
                               OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
                        ORDER BY version DESC
                        LIMIT 1 BY customer_id, span_id
                        UNION ALL
                        SELECT ts, span_id, task_id, customer_id, route, attempt_kind, status,
                               cost_usd
                        FROM llm_calls FINAL
                        WHERE raw_is_long AND _partition_id IN raw_partitions
                          AND ((ts >= {since:DateTime64(6)} AND ts < fresh_from)
                               OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
                    )
                )
                GROUP BY task_key
            )
            ARRAY JOIN arrayPushFront(fragments,
                (task_first_route, task_last_route, task_calls, task_retries > 0,
                 task_fallbacks > 0, toInt64(1), task_cost, task_fallback_cost,
                 task_failed_cost, task_customer)) AS g
            WHERE {customer:String} = '' OR g.10 = {customer:String}
        )
        GROUP BY first_route, last_route, calls, retried, fell_back
        HAVING group_tasks != 0
    )
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
        sum(group_tasks) AS n_tasks,
        sumIf(group_tasks, fell_back) AS n_fallback,
        sumIf(group_tasks, retried) AS n_retry,
        sum(group_tasks * calls) AS n_calls,
        sum(group_cost) AS total_cost,
        sum(group_fallback_cost) AS total_fallback_cost,
        sum(group_failed_cost) AS total_failed_cost,
        -- where the tasks that fell back ended (a route change after a success is no fallback)
        groupUniqArrayIf(last_route, fell_back AND last_route != first_route) AS to_routes
    FROM task_groups
    GROUP BY first_route
)
ORDER BY fallback_rate_pct DESC, cost_usd DESC, original_route ASC
