-- Spend per customer and per (customer, workspace) in [since, until) (the budget evaluator's
-- daily hard cap: since = start of the UTC day). Spend: the hourly roll-up where current,
-- llm_calls elsewhere (see customer_margin.sql), so the evaluator's read every interval does
-- not grow with the day's calls.
-- Parameters: since DateTime64(6), until DateTime64(6).
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
    -- Each raw call once, at its newest version: sorting what is read (LIMIT BY) is cheapest
    -- for a short raw range; past 7 days of raw calls FINAL is, which merges whole partitions
    -- in key order. The branch not taken reads nothing. FINAL reads only the period's
    -- partitions (schema/038_llm_call_partitions.sql); none listed (a Distributed table on a
    -- cluster): LIMIT BY.
    (
        SELECT partitions
        FROM llm_call_partitions(since = {since:DateTime64(6)}, until = {until:DateTime64(6)})
    ) AS raw_partitions,
    notEmpty(raw_partitions)
        AND dateDiff('second', {since:DateTime64(6)}, fresh_from)
            + dateDiff('second', fresh_to, {until:DateTime64(6)}) > 604800 AS raw_is_long,
    -- Spend per customer and workspace, computed once (a scalar: ClickHouse would run a CTE
    -- again for each of the two scopes below).
    (
        SELECT groupArray((customer_id, workspace_id, spent_usd, calls))
        FROM
        (
            SELECT customer_id, workspace_id, sum(cost) AS spent_usd, sum(n_calls) AS calls
            FROM
            (
                SELECT customer_id, workspace_id, cost_usd AS cost, calls AS n_calls
                FROM llm_usage_hourly
                WHERE hour >= fresh_from AND hour < fresh_to AND calls > 0
                  AND refreshed_at = fresh_refreshes[dateDiff('hour', fresh_from, hour) + 1]
                UNION ALL
                SELECT customer_id, workspace_id, cost_usd, 1
                FROM
                (
                    SELECT customer_id, workspace_id, cost_usd
                    FROM llm_calls
                    WHERE NOT raw_is_long
                      AND ((ts >= {since:DateTime64(6)} AND ts < fresh_from)
                           OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
                    ORDER BY version DESC
                    LIMIT 1 BY customer_id, span_id
                )
                UNION ALL
                SELECT customer_id, workspace_id, cost_usd, 1
                FROM llm_calls FINAL
                WHERE raw_is_long AND _partition_id IN raw_partitions
                  AND ((ts >= {since:DateTime64(6)} AND ts < fresh_from)
                       OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
            )
            GROUP BY customer_id, workspace_id
        )
    ) AS spend_rows,
    spend AS
    (
        SELECT row.1 AS customer_id, row.2 AS workspace_id, row.3 AS spent_usd, row.4 AS calls
        FROM system.one
        ARRAY JOIN spend_rows AS row
    )
SELECT 'customer' AS scope, customer_id AS scope_id, customer_id,
       sum(spent_usd) AS spent_usd, sum(calls) AS calls
FROM spend
GROUP BY customer_id
UNION ALL
-- A workspace is its customer's: apps name workspaces "default" or "main" for every customer.
SELECT 'workspace', workspace_id, customer_id, spent_usd, calls
FROM spend
WHERE workspace_id != ''
