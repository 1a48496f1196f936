-- AI allowance used in the calendar month containing {until}, month-to-date and projected to
-- month end (linear), per customer, per workspace and per plan. A customer's allowance is its
-- plan's included AI cost, scaled by its custom price when it has one (the same share of
-- revenue); a workspace is measured against its customer's allowance; a plan against the sum
-- of its customers' allowances. Spend: the hourly roll-up where current, llm_calls elsewhere
-- (see customer_margin.sql).
-- Parameters: until DateTime64(6).
WITH
    toStartOfMonth({until:DateTime64(6)}) AS month_start,
    toDateTime64(month_start, 6, 'UTC') AS month_start_ts,
    dateDiff('second', month_start_ts, toDateTime64(month_start + toIntervalMonth(1), 6, 'UTC'))
        AS month_seconds,
    greatest(dateDiff('second', month_start_ts, {until:DateTime64(6)}), 1) AS elapsed_seconds,
    -- Roll-up freshness (shared by the roll-up queries; keep identical): an hour of
    -- llm_usage_hourly is used only if the llm_calls parts overlapping it are exactly those
    -- (row count, newest modification) its last refresh saw; the first contiguous run of such
    -- whole hours [fresh_from, fresh_to) is read from the roll-up, the rest from llm_calls.
    (
        SELECT arraySort(groupArray((m.hour, m.latest_refresh)))
        FROM
        (
            SELECT hour, max(refreshed_at) AS latest_refresh,
                   argMax(source_rows, refreshed_at) AS rolled_rows,
                   argMax(source_inserted_at, refreshed_at) AS rolled_modified
            FROM llm_usage_hourly
            WHERE hour >= month_start_ts
              AND hour + toIntervalHour(1) <= {until:DateTime64(6)}
            GROUP BY hour
        ) AS m
        INNER JOIN
        (
            SELECT h.hour AS hour, sum(p.rows) AS part_rows,
                   max(p.modification_time) AS part_modified
            FROM
            (
                SELECT DISTINCT hour FROM llm_usage_hourly
                WHERE hour >= month_start_ts
                  AND hour + toIntervalHour(1) <= {until:DateTime64(6)}
            ) AS h
            CROSS JOIN
            (
                SELECT rows, modification_time, min_time, max_time
                FROM system.parts
                WHERE database = currentDatabase() AND table = 'llm_calls' AND active
            ) AS p
            WHERE p.max_time >= h.hour AND p.min_time < h.hour + toIntervalHour(1)
            GROUP BY h.hour
        ) AS c ON c.hour = m.hour
        WHERE c.part_rows = m.rolled_rows AND c.part_modified = m.rolled_modified
    ) AS fresh_pairs,
    arrayMap(x -> x.1, fresh_pairs) AS fresh_hours,
    arrayMap(x -> x.2, fresh_pairs) AS fresh_refreshes,
    -- DateTime64 like llm_calls.ts: the raw ranges below must compare in ts's own type.
    if(empty(fresh_hours), {until:DateTime64(6)}, toDateTime64(fresh_hours[1], 6, 'UTC'))
        AS fresh_from,
    arrayFirstIndex((h, i) -> h != fresh_from + toIntervalHour(i - 1), fresh_hours,
                    arrayEnumerate(fresh_hours)) AS first_gap,
    fresh_from + toIntervalHour(if(first_gap = 0, length(fresh_hours), first_gap - 1))
        AS fresh_to,
    allowances AS
    (
        SELECT
            c.customer_id AS customer_id,
            c.plan AS plan,
            if(p.monthly_price_usd > 0 AND c.custom_price_usd IS NOT NULL,
               toDecimal128(p.included_ai_usd * assumeNotNull(c.custom_price_usd)
                            / p.monthly_price_usd, 6),
               toDecimal128(p.included_ai_usd, 6)) AS allowance_usd
        FROM (SELECT * FROM customers FINAL) AS c
        INNER JOIN (SELECT * FROM plans FINAL) AS p ON p.plan = c.plan
    ),
    spend AS
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
                WHERE (ts >= month_start_ts AND ts < fresh_from)
                   OR (ts >= fresh_to AND ts < {until:DateTime64(6)})
                ORDER BY version DESC
                LIMIT 1 BY customer_id, span_id
            )
        )
        GROUP BY customer_id, workspace_id
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
    round(spent_usd * toDecimal128(month_seconds, 0) / toDecimal128(elapsed_seconds, 0), 6)
        AS projected_usd,
    if(allowance_usd > 0,
       round(spent_usd * toDecimal128(month_seconds, 0) / toDecimal128(elapsed_seconds, 0)
             * 100 / allowance_usd, 2), NULL) AS projected_pct,
    month_start_ts AS month_starts_at
FROM scoped
ORDER BY used_pct DESC NULLS LAST, projected_pct DESC NULLS LAST, scope ASC, scope_id ASC
SETTINGS join_use_nulls = 0
