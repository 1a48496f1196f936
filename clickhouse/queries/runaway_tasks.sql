-- Tasks that look like runaway loops in [since, until): at least {max_attempts} calls, or at
-- least {max_cost_usd} of cost. A task's customer (workspace, feature) is that of its first
-- call carrying one, as in llm_tasks: calls from a process that lost the baggage are stored
-- (unattributed), and the task must still be blocked for its customer. first_call_day: the UTC
-- day of the task's first call in the window, the period its alert is keyed by (a loop capped
-- before midnight is still in the window after it, and is not alerted again).
-- Parameters: since DateTime64(6), until DateTime64(6), max_attempts UInt32,
-- max_cost_usd Decimal(38, 18).
WITH
    -- FINAL reads only the period's partitions (schema/038_llm_call_partitions.sql); none
    -- listed (a Distributed table on a cluster): every partition.
    (
        SELECT partitions
        FROM llm_call_partitions(since = {since:DateTime64(6)}, until = {until:DateTime64(6)})
    ) AS call_partitions,
    -- Each call once, at its newest version: for a short period (the evaluator reads 24 hours)
    -- sorting the period's calls (LIMIT BY) is cheapest; past 7 days FINAL is, which merges
    -- whole partitions in key order. The branch not taken reads nothing.
    dateDiff('second', {since:DateTime64(6)}, {until:DateTime64(6)}) > 604800 AS long_period,
    calls AS
    (
        SELECT ts, task_id, customer_id AS call_customer, workspace_id AS call_workspace,
               feature AS call_feature, cost_usd
        FROM llm_calls
        WHERE NOT long_period AND ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
        ORDER BY version DESC
        LIMIT 1 BY customer_id, span_id
        UNION ALL
        SELECT ts, task_id, customer_id AS call_customer, workspace_id AS call_workspace,
               feature AS call_feature, cost_usd
        FROM llm_calls FINAL
        WHERE long_period AND (empty(call_partitions) OR _partition_id IN call_partitions)
          AND ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
    )
SELECT
    task_id,
    argMin(call_customer, (call_customer = '(unattributed)', ts)) AS customer_id,
    argMin(call_workspace, (call_customer = '(unattributed)', ts)) AS workspace_id,
    argMin(call_feature, (call_feature = '', ts)) AS feature,
    count() AS calls,
    sum(cost_usd) AS cost_usd,
    formatDateTime(min(ts), '%Y-%m-%d', 'UTC') AS first_call_day
FROM calls
WHERE task_id != ''
GROUP BY task_id
HAVING calls >= {max_attempts:UInt32} OR cost_usd >= {max_cost_usd:Decimal(38, 18)}
ORDER BY cost_usd DESC, task_id ASC
LIMIT 1000
