-- Hours of llm_calls whose roll-up (llm_usage_hourly) is missing or out of date: the hour's
-- row count or newest inserted_at changed since the last refresh. No parameters.
SELECT w.hour AS hour, w.source_rows AS source_rows, w.source_inserted_at AS source_inserted_at
FROM
(
    SELECT toStartOfHour(ts) AS hour, count() AS source_rows,
           max(inserted_at) AS source_inserted_at
    FROM llm_calls
    GROUP BY hour
) AS w
LEFT JOIN
(
    SELECT hour, argMax(source_rows, refreshed_at) AS rolled_rows,
           argMax(source_inserted_at, refreshed_at) AS rolled_inserted_at
    FROM llm_usage_hourly
    GROUP BY hour
) AS r ON r.hour = w.hour
WHERE r.rolled_rows != w.source_rows OR r.rolled_inserted_at != w.source_inserted_at
ORDER BY hour
SETTINGS join_use_nulls = 0
