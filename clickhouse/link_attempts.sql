-- Attempt number and kind of every call of the given tasks, from everything stored for them,
-- so they come out the same whatever order, batch or process the spans came from (other
-- instrumentations do not number attempts; ours numbers them per process). Returns only the
-- calls whose attempt or kind must change (usually none: our instrumentation numbers them
-- right); clickhouse/link_attempts_rewrite.sql then rewrites those rows.
--   attempt: position of the call in its task, by start time (then span id).
--   kind: 'first' unless the task's last call to END before this one started failed (status
--   other than ok: error, invalid_output); then 'retry' on the same route, 'fallback' on
--   another. This is the instrumentation's own rule, applied across processes.
-- The tasks' calls are read by key from llm_calls_by_task. ts: the call's start, which picks the
-- llm_calls partition the rewrite reads (link_attempts_rewrite.sql).
SELECT customer_id, span_id, version, new_attempt, new_kind, ts
FROM
(
    SELECT
        c.customer_id AS customer_id,
        c.span_id AS span_id,
        c.version AS version,
        c.ts AS ts,
        c.attempt AS attempt,
        c.attempt_kind AS attempt_kind,
        toUInt32(row_number() OVER (PARTITION BY c.task_id ORDER BY c.ts, c.span_id))
            AS new_attempt,
        multiIf(p.prev_status IN ('', 'ok'), 'first', p.prev_route = c.route, 'retry',
                'fallback') AS new_kind
    FROM
    (
        SELECT *
        FROM llm_calls_by_task FINAL
        WHERE task_id IN {task_ids:Array(String)}
    ) AS c
    ASOF LEFT JOIN
    (
        SELECT
            task_id,
            ts + toIntervalMicrosecond(toInt64(round(latency_ms * 1000))) AS prev_end,
            status AS prev_status,
            route AS prev_route
        FROM llm_calls_by_task FINAL
        WHERE task_id IN {task_ids:Array(String)}
    ) AS p ON c.task_id = p.task_id AND c.ts > p.prev_end
)
WHERE new_attempt != attempt OR new_kind != attempt_kind
SETTINGS join_use_nulls = 0
