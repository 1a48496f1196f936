-- Daily spend by feature over [since, until) (UTC days). Usage: the hourly roll-up where
-- current, llm_calls elsewhere (see customer_margin.sql).
-- customer: that customer's calls only ('' for every customer); read by key, as in
-- customer_margin.sql.
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
      AND ({customer:String} = '' OR customer_id = {customer:String})
      AND refreshed_at = fresh_refreshes[dateDiff('hour', fresh_from, hour) + 1]
    UNION ALL
    SELECT toStartOfHour(ts), feature, customer_id, count(), uniqExactState(sipHash64(task_id)),
           sum(cost_usd)
    FROM
    (
        SELECT ts, feature, customer_id, task_id, cost_usd
        FROM llm_calls
        WHERE NOT raw_is_long
          AND ({customer:String} = '' OR customer_id = {customer:String})
          AND ((ts >= {since:DateTime64(6)} AND ts < fresh_from)
               OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
        ORDER BY version DESC
        LIMIT 1 BY customer_id, span_id
        UNION ALL
        SELECT ts, feature, customer_id, task_id, cost_usd
        FROM llm_calls FINAL
        WHERE raw_is_long AND _partition_id IN raw_partitions
          AND ({customer:String} = '' OR customer_id = {customer:String})
          AND ((ts >= {since:DateTime64(6)} AND ts < fresh_from)
               OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
    )
    GROUP BY toStartOfHour(ts), feature, customer_id
)
GROUP BY day, feature
ORDER BY day ASC, feature ASC
