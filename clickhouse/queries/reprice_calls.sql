-- Stored calls of [since, until) with what `reprice` needs to price them again.
-- Parameters: since DateTime64(6), until DateTime64(6).
WITH
    -- FINAL reads only the period's partitions (schema/038_llm_call_partitions.sql); none
    -- listed (a Distributed table on a cluster): every partition.
    (
        SELECT partitions
        FROM llm_call_partitions(since = {since:DateTime64(6)}, until = {until:DateTime64(6)})
    ) AS call_partitions
SELECT
    ts, customer_id, span_id, version, provider, request_model, response_model,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens,
    input_audio_tokens, output_audio_tokens, web_search_calls, file_search_calls,
    service_tier, speed, sub_usage, cost_usd, price_version
FROM llm_calls FINAL
WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
  AND (empty(call_partitions) OR _partition_id IN call_partitions)
ORDER BY ts, span_id
