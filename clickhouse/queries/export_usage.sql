-- Billable usage per customer and model over [since, until) (the export's invoice lines).
-- Every stored call appears exactly once, so the lines sum to the stored cost of the period.
-- plan: the customer's plan in the billing file, else the newest plan its calls of the period
-- carried (as in customer_margin.sql), the same on every line of the customer.
-- Parameters: since DateTime64(6), until DateTime64(6).
WITH
    -- FINAL reads only the period's partitions (schema/038_llm_call_partitions.sql); none
    -- listed (a Distributed table on a cluster): every partition.
    (
        SELECT partitions
        FROM llm_call_partitions(since = {since:DateTime64(6)}, until = {until:DateTime64(6)})
    ) AS call_partitions
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
    l.cost_usd AS cost_usd
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
LEFT JOIN (SELECT customer_id, plan FROM customers FINAL) AS b ON b.customer_id = l.customer_id
ORDER BY customer_id ASC, provider ASC, model ASC
SETTINGS join_use_nulls = 0
