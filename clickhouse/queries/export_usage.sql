-- Billable usage per customer and model over [since, until) (the export's invoice lines).
-- Every stored call appears exactly once, so the lines sum to the stored cost of the period.
-- plan: the customer's plan in the billing file, else the newest plan its calls of the period
-- carried (as in customer_margin.sql), the same on every line of the customer.
-- billing_markup_pct: the customer's markup_pct in the billing file, else that plan's; NULL when
-- neither sets one (export.py applies --markup-pct then).
-- Parameters: since DateTime64(6), until DateTime64(6).
WITH
    -- FINAL reads only the period's partitions (schema/038_llm_call_partitions.sql); none
    -- listed (a Distributed table on a cluster): every partition.
    (
        SELECT partitions
        FROM llm_call_partitions(since = {since:DateTime64(6)}, until = {until:DateTime64(6)})
    ) AS call_partitions
SELECT
    e.customer_id AS customer_id,
    e.plan AS plan,
    e.provider AS provider,
    e.model AS model,
    e.calls AS calls,
    e.input_tokens AS input_tokens,
    e.output_tokens AS output_tokens,
    e.cache_read_tokens AS cache_read_tokens,
    e.cache_write_tokens AS cache_write_tokens,
    e.unpriced_calls AS unpriced_calls,
    e.cost_usd AS cost_usd,
    -- A left join that finds no row gives NULL here (Nullable columns), so "not set" stays NULL.
    if(e.customer_markup_pct IS NOT NULL, e.customer_markup_pct, p.markup_pct)
        AS billing_markup_pct
FROM
(
    SELECT
        l.customer_id AS customer_id,
        if(b.plan != '', b.plan,
           argMax(l.line_plan, l.line_plan_ts) OVER (PARTITION BY l.customer_id)) AS plan,
        l.provider AS provider,
        l.model AS model,
        l.calls AS calls,
        l.input_tokens AS input_tokens,
        l.output_tokens AS output_tokens,
        l.cache_read_tokens AS cache_read_tokens,
        l.cache_write_tokens AS cache_write_tokens,
        l.unpriced_calls AS unpriced_calls,
        l.cost_usd AS cost_usd,
        b.markup_pct AS customer_markup_pct
    FROM
    (
        SELECT
            customer_id,
            argMaxIf(plan, ts, plan != '') AS line_plan,
            maxIf(ts, plan != '') AS line_plan_ts,
            provider,
            if(response_model != '', response_model, request_model) AS model,
            count() AS calls,
            sum(input_tokens) AS input_tokens,
            sum(output_tokens) AS output_tokens,
            sum(cache_read_tokens) AS cache_read_tokens,
            sum(cache_write_tokens) AS cache_write_tokens,
            countIf(NOT priced) AS unpriced_calls,
            sum(cost_usd) AS cost_usd
        FROM llm_calls FINAL
        WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
          AND (empty(call_partitions) OR _partition_id IN call_partitions)
        GROUP BY customer_id, provider, model
    ) AS l
    LEFT JOIN (SELECT customer_id, plan, markup_pct FROM customers FINAL) AS b
        ON b.customer_id = l.customer_id
) AS e
-- The plan the line shows, whichever way it was found: a plan the billing file does not list
-- (only named by calls) has no markup.
LEFT JOIN (SELECT plan, markup_pct FROM plans FINAL) AS p ON p.plan = e.plan
ORDER BY customer_id ASC, provider ASC, model ASC
SETTINGS join_use_nulls = 0
