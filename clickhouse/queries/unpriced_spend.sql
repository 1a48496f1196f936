-- Spend the margin numbers cannot fully explain, over [since, until): calls stored unpriced
-- (no price known for the model, its web / file searches, an advisor's model, or its premium
-- tier, speed mode or inference geography: cost 0 until `reprice`; `prices check` says which) and
-- calls with no customer ('(unattributed)': priced, but nobody's margin carries them), by
-- provider and model.
-- Usage: the hourly roll-up where current, llm_calls elsewhere (see customer_margin.sql).
-- customer: that customer's calls only ('' for every customer); '(unattributed)' is the
-- unattributed calls (and those of them unpriced). Read by key, as in customer_margin.sql.
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
    1 AS unused
SELECT
    kind,
    provider_name AS provider,
    model_name AS model,
    sum(n_calls) AS calls,
    sum(n_input) AS input_tokens,
    sum(n_output) AS output_tokens,
    sum(cost) AS cost_usd,
    min(first_at) AS first_seen,
    max(last_at) AS last_seen
FROM
(
    SELECT arrayJoin(arrayFilter(k -> k != '', [
               if(NOT is_priced, 'unpriced', ''),
               if(customer_id = '(unattributed)', 'unattributed', '')])) AS kind,
           provider_name, model_name, n_calls, n_input, n_output, cost, first_at, last_at
    FROM
    (
        SELECT priced AS is_priced, customer_id, provider AS provider_name, model AS model_name,
               calls AS n_calls, input_tokens AS n_input, output_tokens AS n_output,
               cost_usd AS cost, first_ts AS first_at, last_ts AS last_at
        FROM llm_usage_hourly
        WHERE hour >= fresh_from AND hour < fresh_to AND calls > 0
          AND (NOT priced OR customer_id = '(unattributed)')
          AND ({customer:String} = '' OR customer_id = {customer:String})
          AND refreshed_at = fresh_refreshes[dateDiff('hour', fresh_from, hour) + 1]
        UNION ALL
        SELECT priced, customer_id, provider,
               if(response_model != '', response_model, request_model), 1, input_tokens,
               output_tokens, cost_usd, ts, ts
        FROM
        (
            SELECT *
            FROM llm_calls
            WHERE NOT raw_is_long
              AND ({customer:String} = '' OR customer_id = {customer:String})
              AND ((ts >= {since:DateTime64(6)} AND ts < fresh_from)
                   OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
            ORDER BY version DESC
            LIMIT 1 BY customer_id, span_id
            UNION ALL
            SELECT *
            FROM llm_calls FINAL
            WHERE raw_is_long AND _partition_id IN raw_partitions
              AND ({customer:String} = '' OR customer_id = {customer:String})
              AND ((ts >= {since:DateTime64(6)} AND ts < fresh_from)
                   OR (ts >= fresh_to AND ts < {until:DateTime64(6)}))
        )
        WHERE NOT priced OR customer_id = '(unattributed)'
    )
)
GROUP BY kind, provider, model
ORDER BY kind ASC, calls DESC, provider ASC, model ASC
