-- Gross margin by plan over [since, until): revenue of the plan's customers (custom price, else
-- the plan's price, pro-rated with a 30-day month), their AI cost, and cost per active
-- customer (customers with at least one call). Calls from customers missing from the billing
-- file count under the plan their spans carried. Usage: the hourly roll-up where current,
-- llm_calls elsewhere (see customer_margin.sql).
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
    usage AS
    (
        SELECT
            customer_id,
            -- the plan of its newest call that carried one (as customer_margin.sql)
            argMaxIf(plan, last_ts, plan != '') AS seen_plan,
            sum(n_calls) AS calls,
            uniqExactMerge(tasks_state) AS tasks,
            sum(n_input) AS input_tokens,
            sum(n_output) AS output_tokens,
            sum(cost) AS total_cost_usd,
            sum(n_unpriced) AS unpriced_calls
        FROM
        (
            SELECT customer_id, plan, last_ts, calls AS n_calls, tasks_state,
                   input_tokens AS n_input, output_tokens AS n_output, cost_usd AS cost,
                   if(priced, 0, calls) AS n_unpriced
            FROM llm_usage_hourly
            WHERE hour >= fresh_from AND hour < fresh_to AND calls > 0
              AND refreshed_at = fresh_refreshes[dateDiff('hour', fresh_from, hour) + 1]
            UNION ALL
            SELECT customer_id, plan, max(ts), count(), uniqExactState(sipHash64(task_id)),
                   sum(input_tokens), sum(output_tokens), sum(cost_usd), countIf(NOT priced)
            FROM
            (
                SELECT customer_id, plan, ts, task_id, input_tokens, output_tokens, cost_usd,
                       priced
                FROM llm_calls
                WHERE NOT raw_is_long
                  AND ((ts >= {since:DateTime64(6)} AND ts < fresh_from)
                       OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
                ORDER BY version DESC
                LIMIT 1 BY customer_id, span_id
                UNION ALL
                SELECT customer_id, plan, ts, task_id, input_tokens, output_tokens, cost_usd,
                       priced
                FROM llm_calls FINAL
                WHERE raw_is_long AND _partition_id IN raw_partitions
                  AND ((ts >= {since:DateTime64(6)} AND ts < fresh_from)
                       OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
            )
            GROUP BY customer_id, plan
        )
        GROUP BY customer_id
    ),
    billing AS
    (
        SELECT c.customer_id AS customer_id, c.plan AS plan,
               ifNull(c.custom_price_usd, p.monthly_price_usd) AS monthly_price_usd
        FROM (SELECT * FROM customers FINAL) AS c
        LEFT JOIN (SELECT * FROM plans FINAL) AS p ON p.plan = c.plan
    ),
    per_customer AS
    (
        SELECT
            if(u.customer_id != '', u.customer_id, b.customer_id) AS customer_id,
            if(b.plan != '', b.plan, if(u.seen_plan != '', u.seen_plan, '(no plan)')) AS plan,
            u.calls AS calls,
            u.tasks AS tasks,
            u.total_cost_usd AS cost_usd,
            round(toDecimal128(b.monthly_price_usd, 6)
                  * toDecimal128(dateDiff('second', {since:DateTime64(6)}, {until:DateTime64(6)}), 0)
                  / toDecimal128(2592000, 0), 2) AS revenue_usd
        FROM usage AS u
        FULL OUTER JOIN billing AS b ON u.customer_id = b.customer_id
        SETTINGS join_use_nulls = 0
    )
SELECT
    m.plan AS plan,
    m.customers AS customers,
    m.active_customers AS active_customers,
    m.plan_calls AS calls,
    m.plan_tasks AS tasks,
    m.plan_cost_usd AS cost_usd,
    m.plan_revenue_usd AS revenue_usd,
    m.plan_revenue_usd - m.plan_cost_usd AS margin_usd,
    if(m.plan_revenue_usd > 0,
       round((m.plan_revenue_usd - m.plan_cost_usd) * 100 / m.plan_revenue_usd, 2), NULL)
        AS margin_pct,
    if(p.plan != '', p.target_gross_margin_pct, NULL) AS target_margin_pct,
    if(m.active_customers > 0, m.plan_cost_usd / toDecimal128(m.active_customers, 0), NULL)
        AS cost_per_active_customer_usd
FROM
(
    SELECT plan, count() AS customers, countIf(calls > 0) AS active_customers,
           sum(calls) AS plan_calls, sum(tasks) AS plan_tasks,
           sum(cost_usd) AS plan_cost_usd, sum(revenue_usd) AS plan_revenue_usd
    FROM per_customer
    GROUP BY plan
) AS m
LEFT JOIN (SELECT * FROM plans FINAL) AS p ON p.plan = m.plan
ORDER BY cost_usd DESC, plan ASC
SETTINGS join_use_nulls = 0
