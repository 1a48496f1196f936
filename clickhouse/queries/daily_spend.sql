-- Spend per customer and per workspace in [since, until) (the budget evaluator's daily hard
-- cap: since = start of the UTC day).
-- Parameters: since DateTime64(6), until DateTime64(6).
WITH
    -- FINAL reads only the period's partitions (schema/038_llm_call_partitions.sql); none
    -- listed (a Distributed table on a cluster): every partition.
    (
        SELECT partitions
        FROM llm_call_partitions(since = {since:DateTime64(6)}, until = {until:DateTime64(6)})
    ) AS call_partitions,
    -- Each call once, at its newest version: for a short period (the evaluator reads today)
    -- sorting the period's calls (LIMIT BY) is cheapest; past 7 days FINAL is, which merges
    -- whole partitions in key order. The branch not taken reads nothing.
    dateDiff('second', {since:DateTime64(6)}, {until:DateTime64(6)}) > 604800 AS long_period,
    calls AS
    (
        SELECT customer_id, workspace_id, cost_usd
        FROM llm_calls
        WHERE NOT long_period AND ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
        ORDER BY version DESC
        LIMIT 1 BY customer_id, span_id
        UNION ALL
        SELECT customer_id, workspace_id, cost_usd
        FROM llm_calls FINAL
        WHERE long_period AND (empty(call_partitions) OR _partition_id IN call_partitions)
          AND ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
    )
SELECT 'customer' AS scope, customer_id AS scope_id, customer_id,
       sum(cost_usd) AS spent_usd, count() AS calls
FROM calls
GROUP BY customer_id
UNION ALL
SELECT 'workspace', workspace_id, any(customer_id), sum(cost_usd), count()
FROM calls
WHERE workspace_id != ''
GROUP BY workspace_id
