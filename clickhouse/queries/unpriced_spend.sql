-- Spend the margin numbers cannot fully explain, over [since, until): calls stored unpriced
-- (no price known for the model: cost 0 until `reprice`) and calls with no customer
-- ('(unattributed)': priced, but nobody's margin carries them), by provider and model.
-- Usage: the hourly roll-up where current, llm_calls elsewhere (see customer_margin.sql).
-- Parameters: since DateTime64(6), until DateTime64(6).
WITH
    -- Roll-up freshness (shared by the roll-up queries; keep identical): an hour of
    -- llm_usage_hourly is used only if the llm_calls parts overlapping it are exactly those
    -- (row count, newest modification) its last refresh saw; the first contiguous run of such
    -- whole hours [fresh_from, fresh_to) is read from the roll-up, the rest from llm_calls.
    (
        SELECT arraySort(groupArray((m.hour, m.latest_refresh)))
        FROM
        (
            SELECT hour, max(refreshed_at) AS latest_refresh,
                   argMax(source_rows, refreshed_at) AS rolled_rows,
                   argMax(source_inserted_at, refreshed_at) AS rolled_modified
            FROM llm_usage_hourly
            WHERE hour >= {since:DateTime64(6)}
              AND hour + toIntervalHour(1) <= {until:DateTime64(6)}
            GROUP BY hour
        ) AS m
        INNER JOIN
        (
            SELECT h.hour AS hour, sum(p.rows) AS part_rows,
                   max(p.modification_time) AS part_modified
            FROM
            (
                SELECT DISTINCT hour FROM llm_usage_hourly
                WHERE hour >= {since:DateTime64(6)}
                  AND hour + toIntervalHour(1) <= {until:DateTime64(6)}
            ) AS h
            CROSS JOIN
            (
                SELECT rows, modification_time, min_time, max_time
                FROM system.parts
                WHERE database = currentDatabase() AND table = 'llm_calls' AND active
            ) AS p
            WHERE p.max_time >= h.hour AND p.min_time < h.hour + toIntervalHour(1)
            GROUP BY h.hour
        ) AS c ON c.hour = m.hour
        WHERE c.part_rows = m.rolled_rows AND c.part_modified = m.rolled_modified
    ) AS fresh_pairs,
    arrayMap(x -> x.1, fresh_pairs) AS fresh_hours,
    arrayMap(x -> x.2, fresh_pairs) AS fresh_refreshes,
    -- DateTime64 like llm_calls.ts: the raw ranges below must compare in ts's own type.
    if(empty(fresh_hours), {until:DateTime64(6)}, toDateTime64(fresh_hours[1], 6, 'UTC'))
        AS fresh_from,
    arrayFirstIndex((h, i) -> h != fresh_from + toIntervalHour(i - 1), fresh_hours,
                    arrayEnumerate(fresh_hours)) AS first_gap,
    fresh_from + toIntervalHour(if(first_gap = 0, length(fresh_hours), first_gap - 1))
        AS fresh_to,
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
          AND refreshed_at = fresh_refreshes[dateDiff('hour', fresh_from, hour) + 1]
        UNION ALL
        SELECT priced, customer_id, provider,
               if(response_model != '', response_model, request_model), 1, input_tokens,
               output_tokens, cost_usd, ts, ts
        FROM
        (
            SELECT *
            FROM llm_calls
            WHERE (ts >= {since:DateTime64(6)} AND ts < fresh_from)
               OR (ts >= fresh_to AND ts < {until:DateTime64(6)})
            ORDER BY version DESC
            LIMIT 1 BY customer_id, span_id
        )
        WHERE NOT priced OR customer_id = '(unattributed)'
    )
)
GROUP BY kind, provider, model
ORDER BY kind ASC, calls DESC, provider ASC, model ASC
