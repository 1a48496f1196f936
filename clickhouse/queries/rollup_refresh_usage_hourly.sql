-- Recompute llm_usage_hourly for the given hours from llm_calls, each stored call once (the
-- newest version of each (customer_id, span_id), as FINAL would keep it). The source counts
-- were taken BEFORE this read: a call arriving meanwhile makes the hour look stale to readers
-- (who then read llm_calls) until the next refresh, never double counted.
-- Parameters: hours Array(DateTime), source_rows Array(UInt64),
-- source_inserted_at Array(DateTime64(3)), refreshed_at DateTime64(6).
INSERT INTO llm_usage_hourly
SELECT
    g.hour, g.customer_id, g.workspace_id, g.plan, g.feature, g.provider, g.model, g.priced,
    g.calls, g.failed_calls, g.input_tokens, g.output_tokens, g.cost_usd, g.tasks_state,
    g.first_ts, g.last_ts, s.rows, s.inserted_at, {refreshed_at:DateTime64(6)}
FROM
(
    SELECT
        toStartOfHour(ts) AS hour, customer_id, workspace_id, plan, feature, provider,
        if(response_model != '', response_model, request_model) AS model, priced,
        count() AS calls,
        countIf(status != 'ok') AS failed_calls,
        sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens,
        sum(cost_usd) AS cost_usd,
        uniqExactState(task_id) AS tasks_state,
        min(ts) AS first_ts,
        max(ts) AS last_ts
    FROM
    (
        SELECT *
        FROM llm_calls
        WHERE toStartOfHour(ts) IN {hours:Array(DateTime)}
        ORDER BY version DESC
        LIMIT 1 BY customer_id, span_id
    )
    GROUP BY hour, customer_id, workspace_id, plan, feature, provider, model, priced
) AS g
INNER JOIN
(
    SELECT tupleElement(x, 1) AS hour, tupleElement(x, 2) AS rows, tupleElement(x, 3) AS inserted_at
    FROM
    (
        SELECT arrayJoin(arrayZip({hours:Array(DateTime)}, {source_rows:Array(UInt64)},
                                  {source_inserted_at:Array(DateTime64(3))})) AS x
    )
) AS s ON s.hour = g.hour
