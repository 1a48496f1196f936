-- Roll-up freshness, shared by every query that reads a roll-up (a parameterised view:
-- `FROM llm_rollup_fresh(since = ..., until = ...)`). An hour is current when the llm_calls
-- parts overlapping it are exactly those (row count, newest modification) its last refresh saw
-- (llm_rollup_hours); any insert, duplicate, merge or mutation touching the hour changes that.
-- One row: the first contiguous run of current whole hours inside [since, until) as
-- [fresh_from, fresh_to) (fresh_from = fresh_to = until when there is none) and, per hour of
-- the run, the refresh whose roll-up rows to read. Queries read the run from the roll-ups and
-- everything else from llm_calls, so a stale roll-up costs speed, never correctness.
-- Parameters: since DateTime64(6), until DateTime64(6).
CREATE OR REPLACE VIEW llm_rollup_fresh AS
SELECT
    run_from AS fresh_from,
    if(run_hours = 0, run_from, run_from + toIntervalHour(run_hours)) AS fresh_to,
    arraySlice(arrayMap(x -> x.2, fresh_pairs), 1, run_hours) AS fresh_refreshes
FROM
(
    SELECT
        fresh_pairs,
        arrayMap(x -> x.1, fresh_pairs) AS fresh_hours,
        -- DateTime64 like llm_calls.ts: the raw ranges must compare in ts's own type.
        if(empty(fresh_hours), {until:DateTime64(6)}, toDateTime64(fresh_hours[1], 6, 'UTC'))
            AS run_from,
        arrayFirstIndex((h, i) -> h != run_from + toIntervalHour(i - 1), fresh_hours,
                        arrayEnumerate(fresh_hours)) AS first_gap,
        toUInt64(if(first_gap = 0, length(fresh_hours), first_gap - 1)) AS run_hours
    FROM
    (
        SELECT arraySort(groupArray((hour, latest_refresh))) AS fresh_pairs
        FROM
        (
            SELECT r.hour AS hour, r.latest_refresh AS latest_refresh
            FROM
            (
                -- The hour's latest entry, whatever wrote it: a later refresh's rows replace
                -- an earlier one's when the roll-up tables merge, so only the latest may be
                -- read. A refresh's claim (written before its rows, modification time 0)
                -- loses the tie to its own record and never matches any parts.
                SELECT hour, max(refreshed_at) AS latest_refresh,
                       argMax(source_rows, (refreshed_at, source_modified)) AS rolled_rows,
                       argMax(source_modified, (refreshed_at, source_modified))
                           AS rolled_modified,
                       argMax(rollup_format, (refreshed_at, source_modified)) AS rolled_format
                FROM llm_rollup_hours
                WHERE hour >= {since:DateTime64(6)}
                  AND hour + toIntervalHour(1) <= {until:DateTime64(6)}
                GROUP BY hour
                -- written by this release's roll-up logic (030_llm_rollup_hours.sql)
                HAVING rolled_format = 1
            ) AS r
            CROSS JOIN
            (
                SELECT rows, modification_time, min_time, max_time
                FROM system.parts
                WHERE database = currentDatabase() AND table = 'llm_calls' AND active
            ) AS p
            WHERE p.max_time >= r.hour AND p.min_time < r.hour + toIntervalHour(1)
            GROUP BY r.hour, r.latest_refresh, r.rolled_rows, r.rolled_modified
            HAVING sum(p.rows) = r.rolled_rows AND max(p.modification_time) = r.rolled_modified
        )
    )
)
