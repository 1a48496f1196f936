-- Models seen in stored calls over [since, until), with call counts, tokens and searches, for
-- `llm-margin prices check` (which asks the current price book about each: the searches too,
-- since a call whose searches have no price is stored unpriced, and the speed modes other than
-- standard its calls ran at, since a fast-mode call with no fast-mode price is too, their service
-- tiers other than the standard ones, since a priority call with no priority price is, the
-- models of their sub-inferences, the inference geographies other than global, since a
-- US-only call with no multiplier for it is unpriced too, and the traffic types other than on
-- demand, since a Provisioned Throughput call with no multiplier for it is as well).
-- Parameters: since DateTime64(6), until DateTime64(6).
WITH
    -- FINAL reads only the period's partitions (schema/038_llm_call_partitions.sql); none
    -- listed (a Distributed table on a cluster): every partition.
    (
        SELECT partitions
        FROM llm_call_partitions(since = {since:DateTime64(6)}, until = {until:DateTime64(6)})
    ) AS call_partitions
SELECT
    provider,
    request_model,
    response_model,
    count() AS calls,
    countIf(NOT priced) AS unpriced_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(web_search_calls) AS web_search_calls,
    sum(file_search_calls) AS file_search_calls,
    arraySort(groupUniqArrayIf(speed, speed NOT IN ('', 'standard'))) AS speeds,
    arraySort(groupUniqArrayIf(lower(service_tier),
                               lower(service_tier) NOT IN ('', 'default', 'auto', 'standard')))
        AS service_tiers,
    -- Models the calls' sub-inferences ran on (an advisor's), which the price book must know
    -- too: a call whose advisor has no price is stored unpriced.
    arraySort(groupUniqArrayArray(
        arrayFilter(m -> m != '', arrayMap(e -> tupleElement(e, 'model'), sub_usage))
    )) AS sub_usage_models,
    arraySort(groupUniqArrayIf(inference_geo, inference_geo NOT IN ('', 'global')))
        AS inference_geos,
    -- the traffic types not billed per token on demand (price_book.py ON_DEMAND_TRAFFIC):
    -- Vertex AI's Provisioned Throughput, unpriced without a traffic_types multiplier
    arraySort(groupUniqArrayIf(
        traffic_type, traffic_type NOT IN ('', 'on_demand', 'on_demand_priority', 'on_demand_flex')
    )) AS traffic_types,
    max(ts) AS last_ts
FROM llm_calls FINAL
WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
  AND (empty(call_partitions) OR _partition_id IN call_partitions)
GROUP BY provider, request_model, response_model
ORDER BY calls DESC, provider, request_model, response_model
