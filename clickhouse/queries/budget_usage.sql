-- AI allowance used in the calendar month of the last instant before {until} (until is
-- exclusive, so an until at a month's start means the month that ended, as in every other
-- report), month-to-date and projected to month end (linear), per customer, per workspace and
-- per plan. A customer's allowance is its plan's included AI cost, scaled by its custom price
-- when it has one (the same share of revenue); on a plan without a list price (price 0, every
-- customer negotiated) a custom price leaves custom x (100 - target margin)% for AI, as there
-- is nothing to scale. A workspace is measured against its customer's allowance; a plan
-- against the sum of its customers' allowances. Spend: the hourly roll-up where current,
-- llm_calls elsewhere (see customer_margin.sql). The projection is NULL for the month's first 24 hours: a straight
-- line through an hour or two of spend says nothing about the month (1 hour in, any spend
-- projects to 720 times itself).
-- customer: that customer's rows only, its own and its workspaces' ('' for every customer); no
-- plan rows then (a plan's allowance is many customers'). Read by key, as in
-- customer_margin.sql.
-- Parameters: until DateTime64(6), customer String.
WITH
    toStartOfMonth({until:DateTime64(6)} - toIntervalMicrosecond(1)) AS month_start,
    toDateTime64(month_start, 6, 'UTC') AS month_start_ts,
    dateDiff('second', month_start_ts, toDateTime64(month_start + toIntervalMonth(1), 6, 'UTC'))
        AS month_seconds,
    greatest(dateDiff('second', month_start_ts, {until:DateTime64(6)}), 1) AS elapsed_seconds,
    -- Roll-up freshness (schema/039_llm_rollup_fresh.sql): the first contiguous run of whole
    -- hours [fresh_from, fresh_to) whose roll-up is current is read from the roll-up (rows of
    -- the refresh fresh_refreshes[i] for its i-th hour), the rest from llm_calls.
    (
        SELECT (fresh_from, fresh_to, fresh_refreshes)
        FROM llm_rollup_fresh(since = month_start_ts, until = {until:DateTime64(6)})
    ) AS fresh,
    fresh.1 AS fresh_from,
    fresh.2 AS fresh_to,
    fresh.3 AS fresh_refreshes,
    -- Deduplicating calls read from llm_calls: ORDER BY version LIMIT 1 BY sorts what it reads,
    -- FINAL merges whole partitions in key order. Either keeps each call's newest version;
    -- past 7 days of raw calls (a month-to-date read whose roll-up is stale) FINAL is several
    -- times faster, below it LIMIT BY is. The branch not taken reads nothing.
    -- FINAL reads only the period's partitions (schema/038_llm_call_partitions.sql); none
    -- listed (a Distributed table on a cluster): LIMIT BY.
    (
        SELECT partitions
        FROM llm_call_partitions(since = month_start_ts, until = {until:DateTime64(6)})
    ) AS raw_partitions,
    notEmpty(raw_partitions)
        AND dateDiff('second', month_start_ts, fresh_from)
            + dateDiff('second', fresh_to, {until:DateTime64(6)}) > 604800 AS raw_is_long,
    allowances AS
    (
        SELECT
            c.customer_id AS customer_id,
            c.plan AS plan,
            multiIf(c.custom_price_usd IS NULL,
                    toDecimal128(p.included_ai_usd, 6),
                    p.monthly_price_usd > 0,
                    toDecimal128(p.included_ai_usd * assumeNotNull(c.custom_price_usd)
                                 / p.monthly_price_usd, 6),
                    toDecimal128(assumeNotNull(c.custom_price_usd)
                                 * (100 - p.target_gross_margin_pct) / 100, 6)) AS allowance_usd
        FROM
        (
            SELECT * FROM customers FINAL
            WHERE {customer:String} = '' OR customer_id = {customer:String}
        ) AS c
        INNER JOIN (SELECT * FROM plans FINAL) AS p ON p.plan = c.plan
    ),
    -- Spend per customer and workspace, computed once (a scalar: ClickHouse would run a CTE
    -- again for each of the three scopes below, and with stale roll-up hours that means
    -- reading the month's calls three times).
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
                  AND ({customer:String} = '' OR customer_id = {customer:String})
                  AND refreshed_at = fresh_refreshes[dateDiff('hour', fresh_from, hour) + 1]
                UNION ALL
                SELECT customer_id, workspace_id, cost_usd, 1
                FROM
                (
                    SELECT customer_id, workspace_id, cost_usd
                    FROM llm_calls
                    WHERE NOT raw_is_long
                      AND ({customer:String} = '' OR customer_id = {customer:String})
                      AND ((ts >= month_start_ts AND ts < fresh_from)
                           OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
                    ORDER BY version DESC
                    LIMIT 1 BY customer_id, span_id
                )
                UNION ALL
                SELECT customer_id, workspace_id, cost_usd, 1
                FROM llm_calls FINAL
                WHERE raw_is_long AND _partition_id IN raw_partitions
                  AND ({customer:String} = '' OR customer_id = {customer:String})
                  AND ((ts >= month_start_ts AND ts < fresh_from)
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
    ),
    scoped AS
    (
        SELECT 'customer' AS scope, a.customer_id AS scope_id, a.customer_id AS customer_id,
               a.plan AS plan, a.allowance_usd AS allowance_usd,
               sum(s.spent_usd) AS spent_usd, sum(s.calls) AS calls
        FROM allowances AS a LEFT JOIN spend AS s ON s.customer_id = a.customer_id
        GROUP BY a.customer_id, a.plan, a.allowance_usd
        UNION ALL
        SELECT 'workspace', s.workspace_id, a.customer_id, a.plan, a.allowance_usd,
               s.spent_usd, s.calls
        FROM spend AS s INNER JOIN allowances AS a ON s.customer_id = a.customer_id
        WHERE s.workspace_id != ''
        UNION ALL
        SELECT 'plan', a.plan, '', a.plan, sum(a.allowance_usd), sum(s.spent_usd), sum(s.calls)
        FROM allowances AS a
        LEFT JOIN
        (
            SELECT customer_id, sum(spent_usd) AS spent_usd, sum(calls) AS calls
            FROM spend GROUP BY customer_id
        ) AS s ON s.customer_id = a.customer_id
        WHERE {customer:String} = ''
        GROUP BY a.plan
    )
SELECT
    scope,
    scope_id,
    customer_id,
    plan,
    toDecimal128(allowance_usd, 6) AS allowance_usd,
    spent_usd,
    calls,
    if(allowance_usd > 0, round(spent_usd * 100 / allowance_usd, 2), NULL) AS used_pct,
    if(elapsed_seconds >= 86400,
       round(spent_usd * toDecimal128(month_seconds, 0) / toDecimal128(elapsed_seconds, 0), 6),
       NULL) AS projected_usd,
    if(allowance_usd > 0 AND elapsed_seconds >= 86400,
       round(spent_usd * toDecimal128(month_seconds, 0) / toDecimal128(elapsed_seconds, 0)
             * 100 / allowance_usd, 2), NULL) AS projected_pct,
    month_start_ts AS month_starts_at
FROM scoped
ORDER BY used_pct DESC NULLS LAST, projected_pct DESC NULLS LAST, scope ASC, scope_id ASC
SETTINGS join_use_nulls = 0
