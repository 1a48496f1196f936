-- Per-customer AI cost, revenue and gross margin over [since, until).
-- Revenue: the customer's custom price, else its plan's monthly price, pro-rated over the
-- period with a 30-day month (2,592,000 s). Customers with no calls still appear (full
-- margin); calls with no customer appear as '(unattributed)'.
-- Usage comes from the hourly roll-up where it is current, and from llm_calls (each call once:
-- its newest version) for the rest, so the answer is the same as reading llm_calls FINAL,
-- only faster.
-- customer: one customer's row only ('' for every customer). Its filter sits on every read of a
-- table sorted by customer (llm_calls, customers; llm_usage_hourly after the hour), so one
-- customer's rows are read by key; with '' ClickHouse folds it away (the same plan as without).
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
    usage AS
    (
        SELECT
            customer_id,
            -- the plan of its newest call that carried one
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
              AND ({customer:String} = '' OR customer_id = {customer:String})
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
                  AND ({customer:String} = '' OR customer_id = {customer:String})
                  AND ((ts >= {since:DateTime64(6)} AND ts < fresh_from)
                       OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
                ORDER BY version DESC
                LIMIT 1 BY customer_id, span_id
                UNION ALL
                SELECT customer_id, plan, ts, task_id, input_tokens, output_tokens, cost_usd,
                       priced
                FROM llm_calls FINAL
                WHERE raw_is_long AND _partition_id IN raw_partitions
                  AND ({customer:String} = '' OR customer_id = {customer:String})
                  AND ((ts >= {since:DateTime64(6)} AND ts < fresh_from)
                       OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
            )
            GROUP BY customer_id, plan
        )
        GROUP BY customer_id
    ),
    billing AS
    (
        SELECT
            c.customer_id AS customer_id,
            c.plan AS plan,
            ifNull(c.custom_price_usd, p.monthly_price_usd) AS monthly_price_usd,
            p.target_gross_margin_pct AS target_margin_pct
        FROM
        (
            SELECT * FROM customers FINAL
            WHERE {customer:String} = '' OR customer_id = {customer:String}
        ) AS c
        LEFT JOIN (SELECT * FROM plans FINAL) AS p ON p.plan = c.plan
    ),
    joined AS
    (
        SELECT
            if(u.customer_id != '', u.customer_id, b.customer_id) AS customer_id,
            if(b.plan != '', b.plan, u.seen_plan) AS plan,
            u.calls AS calls,
            u.tasks AS tasks,
            u.input_tokens AS input_tokens,
            u.output_tokens AS output_tokens,
            u.total_cost_usd AS cost_usd,
            u.unpriced_calls AS unpriced_calls,
            b.target_margin_pct AS target_margin_pct,
            round(
                toDecimal128(b.monthly_price_usd, 6)
                * toDecimal128(dateDiff('second', {since:DateTime64(6)}, {until:DateTime64(6)}), 0)
                / toDecimal128(2592000, 0),
                2) AS revenue_usd
        FROM usage AS u
        FULL OUTER JOIN billing AS b ON u.customer_id = b.customer_id
        SETTINGS join_use_nulls = 0
    )
SELECT
    customer_id,
    plan,
    calls,
    tasks,
    input_tokens,
    output_tokens,
    cost_usd,
    revenue_usd,
    revenue_usd - cost_usd AS margin_usd,
    if(revenue_usd > 0, round((revenue_usd - cost_usd) * 100 / revenue_usd, 2), NULL) AS margin_pct,
    unpriced_calls,
    -- The plan's target gross margin: below it the customer is 'thin', below 0 'underwater'.
    if(plan != '' AND customer_id != '(unattributed)', target_margin_pct, NULL) AS target_margin_pct
FROM joined
ORDER BY cost_usd DESC, customer_id ASC
