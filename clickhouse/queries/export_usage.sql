-- Billable usage per customer and model over [since, until) (the export's invoice lines).
-- Every stored call appears exactly once, so the lines sum to the stored cost of the period.
-- Parameters: since DateTime64(6), until DateTime64(6).
WITH
    -- FINAL reads only the period's partitions (schema/038_llm_call_partitions.sql); none
    -- listed (a Distributed table on a cluster): every partition.
    (
        SELECT partitions
        FROM llm_call_partitions(since = {since:DateTime64(6)}, until = {until:DateTime64(6)})
    ) AS call_partitions
SELECT
    customer_id,
    argMax(plan, ts) AS plan,
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
ORDER BY customer_id ASC, provider ASC, model ASC
