-- Hours whose roll-ups (llm_usage_hourly, llm_task_fragments, llm_task_hourly, recorded in
-- llm_rollup_hours) are missing or out of date, with the signature of the
-- llm_calls parts overlapping each (row count, newest modification time): a refresh records
-- it, and readers trust an hour only while it is unchanged. Any insert, merge or mutation
-- touching the hour changes it. Hours come from the parts' time ranges; hours without calls
-- get an empty marker row when refreshed, so they are not recomputed again.
-- Hours whose parts changed less than settled_seconds ago are left out: one still being
-- written would be stale again before a report could use it (0: every stale hour).
-- Parameters: settled_seconds UInt32.
WITH
    parts AS
    (
        SELECT rows, modification_time, min_time, max_time
        FROM system.parts
        WHERE database = currentDatabase() AND table = 'llm_calls' AND active
    ),
    hours AS
    (
        SELECT DISTINCT arrayJoin(arrayMap(
                   i -> toStartOfHour(min_time) + toIntervalHour(i),
                   range(toUInt32(dateDiff('hour', toStartOfHour(min_time), max_time) + 1))))
               AS hour
        FROM parts
    ),
    signatures AS
    (
        SELECT h.hour AS hour, sum(p.rows) AS part_rows, max(p.modification_time) AS part_modified
        FROM hours AS h CROSS JOIN parts AS p
        WHERE p.max_time >= h.hour AND p.min_time < h.hour + toIntervalHour(1)
        GROUP BY h.hour
    )
SELECT s.hour AS hour, s.part_rows AS source_rows, s.part_modified AS source_modified
FROM signatures AS s
LEFT JOIN
(
    -- the hour's latest entry; of one refresh, its record rather than its claim
    -- (rollup_claim_hours.sql), so a refresh that claimed the hour and died leaves it stale
    SELECT hour, argMax(source_rows, (refreshed_at, source_modified)) AS rolled_rows,
           argMax(source_modified, (refreshed_at, source_modified)) AS rolled_modified,
           argMax(rollup_format, (refreshed_at, source_modified)) AS rolled_format
    FROM llm_rollup_hours
    GROUP BY hour
) AS r ON r.hour = s.hour
-- also hours an older release's roll-up logic wrote (rollup_format: 030_llm_rollup_hours.sql)
WHERE (r.rolled_rows != s.part_rows OR r.rolled_modified != s.part_modified
       OR r.rolled_format != 1)
  AND s.part_modified <= now() - toIntervalSecond({settled_seconds:UInt32})
ORDER BY hour
SETTINGS join_use_nulls = 0
