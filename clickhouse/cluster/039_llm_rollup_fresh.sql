-- Cluster variant of schema/039_llm_rollup_fresh.sql, the same parameterised view on every node.
-- Its query must stay identical to the base one (tests/unit/test_cluster_ddl.py). On a cluster
-- `llm_calls` is the Distributed table, which has no parts of its own: no hour counts as
-- current, and the queries read llm_calls (correct, only slower) until freshness learns to
-- read the shards' parts.
CREATE OR REPLACE VIEW llm_rollup_fresh ON CLUSTER '__CLUSTER__' AS
WITH
    arraySort(groupArray((hour, latest_refresh))) AS fresh_pairs,
    -- The run ends before the first step between fresh hours longer than an hour.
    arrayFirstIndex(d -> d != 3600,
                    arrayPopFront(arrayDifference(arrayMap(x -> toUInt32(x.1), fresh_pairs))))
        AS first_gap,
    if(first_gap = 0, length(fresh_pairs), first_gap) AS run_hours
SELECT
    -- DateTime64 like llm_calls.ts: the raw ranges must compare in ts's own type.
    if(empty(fresh_pairs), {until:DateTime64(6)}, toDateTime64(min(hour), 6, 'UTC'))
        AS fresh_from,
    fresh_from + toIntervalHour(run_hours) AS fresh_to,
    arraySlice(fresh_pairs.2, 1, run_hours) AS fresh_refreshes
FROM
(
    SELECT r.hour AS hour, r.latest.1 AS latest_refresh
    FROM
    (
        -- The hour's latest entry, whatever wrote it: (refreshed_at, source_rows,
        -- source_modified, rollup_format) of its newest refresh. A later refresh's rows replace
        -- an earlier one's when the roll-up tables merge, so only the latest may be read. A
        -- refresh's claim (written before its rows, modification time 0) loses the tie to its
        -- own record and never matches any parts.
        SELECT hour, max((refreshed_at, source_modified, source_rows, rollup_format)) AS latest,
               latest.4 AS rolled_format
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
    GROUP BY r.hour, r.latest
    HAVING sum(p.rows) = r.latest.3 AND max(p.modification_time) = r.latest.2
)
