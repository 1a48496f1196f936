-- Stored cost by UTC day, provider and model over [since, until), with the facts that explain
-- a difference from the provider's own cost export (reconcile). Besides the as-charged cost,
-- the restated one (`llm-margin reprice`; as charged where no current restatement exists, the
-- rule of queries/calls_restated.sql), so a model priced after the fact reconciles.
-- Parameters: since DateTime64(6), until DateTime64(6).
WITH
    -- FINAL reads only the period's partitions (schema/038_llm_call_partitions.sql); none
    -- listed (a Distributed table on a cluster): every partition.
    (
        SELECT partitions
        FROM llm_call_partitions(since = {since:DateTime64(6)}, until = {until:DateTime64(6)})
    ) AS call_partitions
SELECT
    toDate(c.ts) AS day,
    c.provider AS provider,
    if(c.response_model != '', c.response_model, c.request_model) AS model,
    count() AS calls,
    countIf(NOT c.priced) AS unpriced_calls,
    sumIf(c.input_tokens + c.output_tokens, NOT c.priced) AS unpriced_tokens,
    countIf(c.status != 'ok') AS failed_calls,
    countIf(c.status != 'ok' AND c.input_tokens + c.output_tokens = 0)
        AS failed_calls_without_usage,
    countIf(c.customer_id = '(unattributed)') AS unattributed_calls,
    sumIf(c.cost_usd, c.customer_id = '(unattributed)') AS unattributed_cost_usd,
    sum(c.input_tokens) AS total_input_tokens,
    sum(c.output_tokens) AS total_output_tokens,
    sum(c.cost_usd) AS stored_cost_usd,
    sum(if(r.span_id != '', r.restated_cost_usd, c.cost_usd)) AS restated_cost_usd,
    countIf(NOT if(r.span_id != '', r.restated_priced, c.priced)) AS restated_unpriced_calls
FROM
(
    SELECT ts, customer_id, span_id, version, provider, request_model, response_model, priced,
           status, input_tokens, output_tokens, cost_usd
    FROM llm_calls FINAL
    WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
      AND (empty(call_partitions) OR _partition_id IN call_partitions)
) AS c
LEFT JOIN
(
    SELECT customer_id, span_id, call_version, restated_cost_usd, restated_priced
    FROM llm_call_restatements FINAL
    WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
) AS r ON r.customer_id = c.customer_id AND r.span_id = c.span_id
    -- a restatement applies while its call row keeps the rank it restated (calls_restated.sql)
    AND bitShiftRight(r.call_version, 52) = bitShiftRight(c.version, 52)
GROUP BY day, provider, model
ORDER BY day ASC, provider ASC, model ASC
SETTINGS join_use_nulls = 0
