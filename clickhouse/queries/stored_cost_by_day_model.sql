-- Stored cost by UTC day, provider and model over [since, until), with the facts that explain
-- a difference from the provider's own cost export (reconcile).
-- Parameters: since DateTime64(6), until DateTime64(6).
WITH
    -- FINAL reads only the period's partitions (schema/038_llm_call_partitions.sql); none
    -- listed (a Distributed table on a cluster): every partition.
    (
        SELECT partitions
        FROM llm_call_partitions(since = {since:DateTime64(6)}, until = {until:DateTime64(6)})
    ) AS call_partitions
SELECT
    toDate(ts) AS day,
    provider,
    if(response_model != '', response_model, request_model) AS model,
    count() AS calls,
    countIf(NOT priced) AS unpriced_calls,
    sumIf(input_tokens + output_tokens, NOT priced) AS unpriced_tokens,
    countIf(status != 'ok') AS failed_calls,
    countIf(status != 'ok' AND input_tokens + output_tokens = 0) AS failed_calls_without_usage,
    countIf(customer_id = '(unattributed)') AS unattributed_calls,
    sumIf(cost_usd, customer_id = '(unattributed)') AS unattributed_cost_usd,
    sum(input_tokens) AS total_input_tokens,
    sum(output_tokens) AS total_output_tokens,
    sum(cost_usd) AS stored_cost_usd
FROM llm_calls FINAL
WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
  AND (empty(call_partitions) OR _partition_id IN call_partitions)
GROUP BY day, provider, model
ORDER BY day ASC, provider ASC, model ASC
