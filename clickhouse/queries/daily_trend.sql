-- Daily spend by feature over [since, until) (UTC days). Usage: the hourly roll-up where
-- current, llm_calls elsewhere (see customer_margin.sql).
-- Parameters: since DateTime64(6), until DateTime64(6).
WITH
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
            WHERE hour >= {since:DateTime64(6)}
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
                WHERE hour >= {since:DateTime64(6)}
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
    1 AS unused
SELECT
    toDate(hour) AS day,
    if(feature_name != '', feature_name, '(none)') AS feature,
    sum(n_calls) AS calls,
    uniqExactMerge(tasks_state) AS tasks,
    uniqExactIf(customer_id, n_calls > 0) AS active_customers,
    sum(cost) AS cost_usd
FROM
(
    SELECT hour, feature AS feature_name, customer_id, calls AS n_calls, tasks_state,
           cost_usd AS cost
    FROM llm_usage_hourly
    WHERE hour >= fresh_from AND hour < fresh_to AND calls > 0
      AND refreshed_at = fresh_refreshes[dateDiff('hour', fresh_from, hour) + 1]
    UNION ALL
    SELECT toStartOfHour(ts), feature, customer_id, count(), uniqExactState(sipHash64(task_id)),
           sum(cost_usd)
    FROM
    (
        SELECT ts, feature, customer_id, task_id, cost_usd
        FROM llm_calls
        WHERE (ts >= {since:DateTime64(6)} AND ts < fresh_from)
           OR (ts >= fresh_to AND ts < {until:DateTime64(6)})
        ORDER BY version DESC
        LIMIT 1 BY customer_id, span_id
    )
    GROUP BY toStartOfHour(ts), feature, customer_id
)
GROUP BY day, feature
ORDER BY day ASC, feature ASC
