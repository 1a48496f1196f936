-- Recompute llm_usage_hourly for the given hours from llm_calls, each stored call once (the
-- newest version of each (customer_id, span_id), as FINAL would keep it), plus one empty
-- marker row per hour (customer_id '') so hours without calls count as refreshed. The part
-- signatures were taken BEFORE this read; anything that lands meanwhile changes them, so
-- readers fall back to llm_calls for those hours until the next refresh.
-- Parameters: hours Array(DateTime), source_rows Array(UInt64),
-- source_modified Array(DateTime), refreshed_at DateTime64(6), since DateTime64(6),
-- until DateTime64(6) (the hours' overall range, for part pruning).
INSERT INTO llm_usage_hourly
SELECT
    g.hour, g.customer_id, g.workspace_id, g.plan, g.feature, g.provider, g.model, g.priced,
    g.calls, g.failed_calls, g.input_tokens, g.output_tokens, g.cost_usd, g.tasks_state,
    g.first_ts, g.last_ts, s.rows, s.modified, {refreshed_at:DateTime64(6)}
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
        uniqExactState(sipHash64(task_id)) AS tasks_state,
        min(ts) AS first_ts,
        max(ts) AS last_ts
    FROM
    (
        SELECT *
        FROM llm_calls
        WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
          AND toStartOfHour(ts) IN {hours:Array(DateTime)}
        ORDER BY version DESC
        LIMIT 1 BY customer_id, span_id
    )
    GROUP BY hour, customer_id, workspace_id, plan, feature, provider, model, priced
    UNION ALL
    SELECT arrayJoin({hours:Array(DateTime)}) AS hour, '', '', '', '', '', '', false, 0, 0, 0,
           0, toDecimal128(0, 18), arrayReduce('uniqExactState', CAST([], 'Array(UInt64)')),
           toDateTime64(hour, 6, 'UTC'), toDateTime64(hour, 6, 'UTC')
) AS g
INNER JOIN
(
    SELECT tupleElement(x, 1) AS hour, tupleElement(x, 2) AS rows, tupleElement(x, 3) AS modified
    FROM
    (
        SELECT arrayJoin(arrayZip({hours:Array(DateTime)}, {source_rows:Array(UInt64)},
                                  {source_modified:Array(DateTime)})) AS x
    )
) AS s ON s.hour = g.hour
