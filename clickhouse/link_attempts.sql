-- Attempt number and kind of every call of the given tasks, from everything stored for them,
-- so they come out the same whatever order, batch or process the spans came from (other
-- instrumentations do not number attempts; ours numbers them per process). Rewrites only the
-- rows whose attempt or kind changes (version + 1 keeps the row's rank bits; see normalize.py).
-- inserted_at is kept: it dates the call's arrival (the finalisation window counts from it).
--   attempt: position of the call in its task, by start time (then span id).
--   kind: 'first' unless the task's last call to END before this one started failed (status
--   other than ok: error, invalid_output); then 'retry' on the same route, 'fallback' on
--   another. This is the instrumentation's own rule, applied across processes.
INSERT INTO llm_calls
SELECT * EXCEPT (new_attempt, new_kind, end_ts)
    REPLACE (new_attempt AS attempt, new_kind AS attempt_kind, version + 1 AS version)
FROM
(
    SELECT *
    FROM
    (
        SELECT
            c.*,
            toUInt32(row_number() OVER (PARTITION BY c.task_id ORDER BY c.ts, c.span_id))
                AS new_attempt,
            multiIf(p.prev_status IN ('', 'ok'), 'first', p.prev_route = c.route, 'retry',
                    'fallback') AS new_kind
        FROM
        (
            SELECT *, ts + toIntervalMicrosecond(toInt64(latency_ms * 1000)) AS end_ts
            FROM llm_calls FINAL
            WHERE task_id IN {task_ids:Array(String)}
        ) AS c
        ASOF LEFT JOIN
        (
            SELECT
                task_id,
                ts + toIntervalMicrosecond(toInt64(latency_ms * 1000)) AS prev_end,
                status AS prev_status,
                route AS prev_route
            FROM llm_calls FINAL
            WHERE task_id IN {task_ids:Array(String)}
        ) AS p ON c.task_id = p.task_id AND c.ts > p.prev_end
        SETTINGS join_use_nulls = 0
    )
    WHERE new_attempt != attempt OR new_kind != attempt_kind
)
