-- Stored calls of [since, until) with what `reprice` needs to price them again, one page at a
-- time in key order: the page_rows calls after (after_customer, after_span) (first = 1: from
-- the start). A period of millions of calls is never one answer in memory (the processor
-- refuses answers past its max_result_rows / max_result_bytes), and the key condition lets
-- each page start where the last one ended without reading what came before.
-- Parameters: since DateTime64(6), until DateTime64(6), first UInt8, after_customer String,
-- after_span String, page_rows UInt64.
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
    service_tier, speed, sub_usage, inference_geo, traffic_type, cost_usd, price_version
FROM llm_calls FINAL
WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
  AND (empty(call_partitions) OR _partition_id IN call_partitions)
  AND (
      {first:UInt8} = 1
      OR customer_id > {after_customer:String}
      OR (customer_id = {after_customer:String} AND span_id > {after_span:String})
  )
ORDER BY customer_id, span_id
LIMIT {page_rows:UInt64}
