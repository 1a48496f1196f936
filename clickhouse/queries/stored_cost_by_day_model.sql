-- Stored cost by UTC day, provider and model over [since, until), with the facts that explain
-- a difference from the provider's own cost export (reconcile). Besides the as-charged cost,
-- the restated one (`llm-margin reprice`; as charged where no current restatement exists, the
-- rule of queries/calls_restated.sql), so a model priced after the fact reconciles.
-- Each call's cost is split into its parts (`part`): 'tokens' (cost_usd less its searches'
-- share and its advisors'), 'web_search' / 'file_search' (web_search_cost_usd,
-- file_search_cost_usd, kept when the call was priced) for calls that made them, and
-- 'sub_usage', one per other model its sub-inferences ran on (an advisor's: the costs of its
-- sub_usage entries on that model, sub_usage_entry_costs_usd; a compaction, on the call's own
-- model, stays in 'tokens'). Provider exports bill searches on lines of their own, without a
-- model, and an advisor under the advisor's model: reconcile compares each part with its own
-- lines. The parts of a call add up to its cost exactly (a restated one's to its restated
-- cost, by restated_sub_usage_entry_costs_usd).
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
    c.part_model AS model,
    c.part AS part,
    count() AS calls,
    countIf(NOT c.priced) AS unpriced_calls,
    sumIf(c.input_tokens + c.output_tokens, NOT c.priced) AS unpriced_tokens,
    countIf(c.status != 'ok') AS failed_calls,
    countIf(c.status != 'ok' AND c.input_tokens + c.output_tokens = 0 AND c.part = 'tokens')
        AS failed_calls_without_usage,
    countIf(c.customer_id = '(unattributed)') AS unattributed_calls,
    sumIf(c.part_cost_usd, c.customer_id = '(unattributed)') AS unattributed_cost_usd,
    sum(c.input_tokens) AS total_input_tokens,
    sum(c.output_tokens) AS total_output_tokens,
    sum(c.searches) AS searches,
    sum(c.part_cost_usd) AS stored_cost_usd,
    sum(if(
        r.span_id != '',
        multiIf(
            c.part = 'web_search', r.restated_web_search_cost_usd,
            c.part = 'file_search', r.restated_file_search_cost_usd,
            c.part = 'sub_usage',
            arraySum(arrayMap((own, cost) -> if(own, cost, toDecimal128(0, 18)), c.entries,
                arrayResize(r.restated_sub_usage_entry_costs_usd, length(c.entries)))),
            r.restated_cost_usd - r.restated_web_search_cost_usd - r.restated_file_search_cost_usd
            - arraySum(arrayMap((own, cost) -> if(own, cost, toDecimal128(0, 18)), c.entries,
                arrayResize(r.restated_sub_usage_entry_costs_usd, length(c.entries))))
        ),
        c.part_cost_usd
    )) AS restated_cost_usd,
    countIf(NOT if(r.span_id != '', r.restated_priced, c.priced)) AS restated_unpriced_calls,
    -- Of those, the calls in a speed mode (Anthropic fast mode) other than standard: priced
    -- by a `speeds:` multiplier in the overlay, not by a model entry (reconcile says which).
    -- Counted on every part: a search row's unpriced calls may be unpriced for their mode,
    -- which a search price would not fix either.
    countIf(
        NOT if(r.span_id != '', r.restated_priced, c.priced)
        AND c.speed NOT IN ('', 'standard')
    ) AS restated_unpriced_speed_calls,
    -- And the calls served at a premium tier (OpenAI's and Gemini's priority, the pairs of
    -- processor/pricing/price_book.py PREMIUM_TIERS), stored unpriced when the book has no
    -- price for that tier: priced by a `service_tiers:` multiplier, not by a model entry.
    countIf(
        NOT if(r.span_id != '', r.restated_priced, c.priced)
        AND (c.provider, lower(c.service_tier)) IN (('openai', 'priority'), ('google', 'priority'))
    ) AS restated_unpriced_premium_tier_calls,
    -- And the calls run in an inference geography other than global (Anthropic's US-only
    -- inference): priced by an `inference_geos:` multiplier, not by a model entry.
    countIf(
        NOT if(r.span_id != '', r.restated_priced, c.priced)
        AND c.inference_geo NOT IN ('', 'global')
    ) AS restated_unpriced_geo_calls,
    -- And the other calls that consulted an advisor on another model (Anthropic's advisor
    -- tool), with those models: an advisor model the book has no price for leaves the call
    -- unpriced, and a model entry for the call's own model would not price it. Not counted
    -- on the advisor model's own row ('sub_usage'), where adding that model is the fix, nor
    -- for a call in one of the modes above, whose multiplier prices its advice too.
    countIf((
        NOT if(r.span_id != '', r.restated_priced, c.priced)
        AND c.part != 'sub_usage' AND notEmpty(c.advisor_models)
        AND c.speed IN ('', 'standard') AND c.inference_geo IN ('', 'global')
        AND (c.provider, lower(c.service_tier))
            NOT IN (('openai', 'priority'), ('google', 'priority'))
    ) AS unpriced_by_advisor) AS restated_unpriced_advisor_calls,
    groupUniqArrayArrayIf(c.advisor_models, unpriced_by_advisor)
        AS restated_unpriced_advisor_models
FROM
(
    SELECT ts, customer_id, span_id, version, provider, request_model, response_model, priced,
           status, input_tokens, output_tokens, speed, service_tier, inference_geo,
           if(response_model != '', response_model, request_model) AS call_model,
           -- the models its sub-inferences ran on, the call's own for a compaction ('')
           arrayMap(e -> if(tupleElement(e, 'model') != '', tupleElement(e, 'model'), call_model),
                    sub_usage) AS entry_models,
           arrayDistinct(arrayFilter(m -> m != call_model, entry_models)) AS advisor_models,
           -- one row per part: the tokens always, each kind of search the call made, each
           -- other model its sub-inferences ran on (an advisor's)
           arrayJoin(arrayConcat(
               [('tokens', call_model)],
               if(web_search_calls > 0, [('web_search', call_model)], []),
               if(file_search_calls > 0, [('file_search', call_model)], []),
               arrayMap(m -> ('sub_usage', m), advisor_models)
           )) AS part_and_model,
           tupleElement(part_and_model, 1) AS part,
           tupleElement(part_and_model, 2) AS part_model,
           -- which sub_usage entries are this part's cost ('tokens': those it leaves out,
           -- the other models')
           arrayMap(m -> if(part = 'sub_usage', m = part_model,
                            part = 'tokens' AND m != call_model), entry_models) AS entries,
           arraySum(arrayMap((own, cost) -> if(own, cost, toDecimal128(0, 18)), entries,
                    arrayResize(sub_usage_entry_costs_usd, length(entries)))) AS entries_cost_usd,
           multiIf(
               part = 'web_search', web_search_cost_usd,
               part = 'file_search', file_search_cost_usd,
               part = 'sub_usage', entries_cost_usd,
               cost_usd - web_search_cost_usd - file_search_cost_usd - entries_cost_usd
           ) AS part_cost_usd,
           multiIf(
               part = 'web_search', toUInt64(web_search_calls),
               part = 'file_search', toUInt64(file_search_calls),
               toUInt64(0)
           ) AS searches
    FROM llm_calls FINAL
    WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
      AND (empty(call_partitions) OR _partition_id IN call_partitions)
) AS c
LEFT JOIN
(
    SELECT customer_id, span_id, call_version, restated_cost_usd, restated_priced,
           restated_web_search_cost_usd, restated_file_search_cost_usd,
           restated_sub_usage_entry_costs_usd
    FROM llm_call_restatements FINAL
    WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
) AS r ON r.customer_id = c.customer_id AND r.span_id = c.span_id
    -- a restatement applies while its call row keeps the rank it restated (calls_restated.sql)
    AND bitShiftRight(r.call_version, 52) = bitShiftRight(c.version, 52)
GROUP BY day, provider, model, part
ORDER BY day ASC, provider ASC, model ASC, part ASC
SETTINGS join_use_nulls = 0
