-- Top runaway workspaces over [since, until): spend growth against the previous period of the
-- same length, attempts per task, and loop tasks (tasks with at least {loop_attempts} calls).
-- A task's calls count in the period they fall in. Tasks come from the per-task roll-up
-- (llm_task_hourly) for the hours where it is current and from llm_calls (each call once: its
-- newest version) elsewhere; tasks whose calls span hours are merged from their fragments, so
-- the answer is what grouping llm_calls FINAL by task would say.
-- customer: that customer's workspaces only ('' for every customer), its top `limit` ones.
-- The roll-up and the previous period's calls are read by key (llm_task_hourly is sorted by
-- hour, customer; llm_calls by customer); merged tasks are filtered by their customer once
-- merged (a fragment by its own customer, as it was counted).
-- Parameters: since DateTime64(6), until DateTime64(6), loop_attempts UInt32, limit UInt32,
-- customer String.
WITH
    dateDiff('second', {since:DateTime64(6)}, {until:DateTime64(6)}) AS period_seconds,
    {since:DateTime64(6)} - toIntervalSecond(period_seconds) AS previous_since,
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
    -- The same for the previous period (only its cost per workspace is needed).
    (
        SELECT (fresh_from, fresh_to, fresh_refreshes)
        FROM llm_rollup_fresh(since = previous_since, until = {since:DateTime64(6)})
    ) AS previous_fresh,
    previous_fresh.1 AS previous_from,
    previous_fresh.2 AS previous_to,
    previous_fresh.3 AS previous_refreshes,
    -- Per (customer, workspace, attempts): the roll-up's fragments, minus the fragments of
    -- merged tasks, plus the merged tasks (their fragments and raw calls together).
    task_groups AS
    (
        SELECT customer, workspace, calls, sum(n) AS group_tasks, sum(cost) AS group_cost,
               sum(failed_cost) AS group_failed_cost
        FROM
        (
            SELECT customer_id AS customer, workspace_id AS workspace, calls,
                   toInt64(tasks) AS n, cost_usd AS cost, failed_cost_usd AS failed_cost
            FROM llm_task_hourly
            WHERE hour >= fresh_from AND hour < fresh_to
              AND ({customer:String} = '' OR customer_id = {customer:String})
              AND refreshed_at = fresh_refreshes[dateDiff('hour', fresh_from, hour) + 1]
            UNION ALL
            -- Merged tasks: per task, its fragments in the run and its raw calls together; each
            -- yields +1 for the whole task and -1 for each of its fragments (counted above).
            SELECT g.1, g.2, g.3, g.4, g.5, g.6
            FROM
            (
                -- The task's customer, as in llm_tasks: its first call carrying one (a
                -- process that lost the baggage stores its calls (unattributed)).
                SELECT argMin(customer_id, (customer_id = '(unattributed)', at)) AS task_customer,
                       argMin(workspace_id, (customer_id = '(unattributed)', at))
                           AS task_workspace,
                       sum(calls) AS task_calls, sum(cost_usd) AS task_cost,
                       sum(failed_cost_usd) AS task_failed_cost,
                       -- The task's fragments as the roll-up counted them, to take back out.
                       groupArrayIf((customer_id, workspace_id, calls, toInt64(-1), -cost_usd,
                                     -failed_cost_usd), is_fragment) AS fragments
                FROM
                (
                    SELECT task_key, customer_id, workspace_id, first_ts AS at, calls,
                           cost_usd, failed_cost_usd, true AS is_fragment
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
                    SELECT sipHash64(task_id), customer_id, workspace_id, ts, 1, cost_usd,
                           if(status != 'ok', cost_usd, 0), false
                    FROM
                    (
                        SELECT task_id, customer_id, workspace_id, ts, status, cost_usd
                        FROM llm_calls
                        WHERE NOT raw_is_long
                          AND ((ts >= {since:DateTime64(6)} AND ts < fresh_from)
                               OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
                        ORDER BY version DESC
                        LIMIT 1 BY customer_id, span_id
                        UNION ALL
                        SELECT task_id, customer_id, workspace_id, ts, status, cost_usd
                        FROM llm_calls FINAL
                        WHERE raw_is_long AND _partition_id IN raw_partitions
                          AND ((ts >= {since:DateTime64(6)} AND ts < fresh_from)
                               OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
                    )
                )
                GROUP BY task_key
            )
            ARRAY JOIN arrayPushFront(fragments,
                (task_customer, task_workspace, task_calls, toInt64(1), task_cost,
                 task_failed_cost)) AS g
            WHERE {customer:String} = '' OR g.1 = {customer:String}
        )
        GROUP BY customer, workspace, calls
        HAVING group_tasks != 0
    ),
    -- Previous period: cost per workspace (the roll-up where current, llm_calls elsewhere).
    previous AS
    (
        SELECT customer, workspace, sum(cost) AS previous_cost
        FROM
        (
            SELECT customer_id AS customer, workspace_id AS workspace, cost_usd AS cost
            FROM llm_task_hourly
            WHERE hour >= previous_from AND hour < previous_to
              AND ({customer:String} = '' OR customer_id = {customer:String})
              AND refreshed_at = previous_refreshes[dateDiff('hour', previous_from, hour) + 1]
            UNION ALL
            SELECT customer_id, workspace_id, cost_usd
            FROM
            (
                SELECT customer_id, workspace_id, cost_usd
                FROM llm_calls
                WHERE ({customer:String} = '' OR customer_id = {customer:String})
                  AND ((ts >= previous_since AND ts < previous_from)
                       OR (ts >= previous_to AND ts < {since:DateTime64(6)}))
                ORDER BY version DESC
                LIMIT 1 BY customer_id, span_id
            )
        )
        GROUP BY customer, workspace
    )
SELECT
    c.customer AS customer_id,
    if(c.workspace != '', c.workspace, '(none)') AS workspace_id,
    c.cur_cost AS cost_usd,
    p.previous_cost AS previous_cost_usd,
    -- In Decimal256: a Decimal(38, 18) divided by one scales the dividend by 10^18 and
    -- silently wraps around past 1.7e38, i.e. once the change passes 1.70 USD.
    if(p.previous_cost > 0,
       toDecimal128(round(toDecimal256(c.cur_cost - p.previous_cost, 18) * 100 / p.previous_cost,
                          2), 18),
       NULL) AS spend_growth_pct,
    c.n_tasks AS tasks,
    c.n_calls AS calls,
    round(c.n_calls / c.n_tasks, 2) AS attempts_per_task,
    c.top_calls AS max_attempts,
    c.n_loops AS loop_tasks,
    c.cur_failed_cost AS failed_cost_usd
FROM
(
    SELECT
        customer,
        workspace,
        sum(group_cost) AS cur_cost,
        sum(group_tasks) AS n_tasks,
        sum(group_tasks * calls) AS n_calls,
        max(calls) AS top_calls,
        sumIf(group_tasks, calls >= {loop_attempts:UInt32}) AS n_loops,
        sum(group_failed_cost) AS cur_failed_cost
    FROM task_groups
    GROUP BY customer, workspace
) AS c
LEFT JOIN previous AS p ON p.customer = c.customer AND p.workspace = c.workspace
ORDER BY loop_tasks DESC, attempts_per_task DESC, spend_growth_pct DESC NULLS LAST,
         cost_usd DESC, customer_id ASC, workspace_id ASC
LIMIT {limit:UInt32}
SETTINGS join_use_nulls = 0
