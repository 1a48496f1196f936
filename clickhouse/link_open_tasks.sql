-- Tasks to finalise: tasks with a call stored in [since, now - {finalize_ms} ms) (by the store's
-- clock, inserted_at) and no llm_tasks row yet, because their root span never arrived. The
-- processor's sweep (linking.TaskFinalizer) links them with outcome 'unknown'; link_tasks.sql
-- re-checks that the task's newest call is older than the window, so a task seen too early is
-- skipped and seen again when its newest call falls in a later sweep's range.
-- A sweep reads only the calls stored since the previous one: {since} is the previous sweep's
-- `until` minus an overlap (the first sweep after a start passes 1970: the whole lookback), and
-- {lookback_ms} bounds it. So its cost follows what arrived recently, not the stored history:
-- - llm_calls parts: rows stamped at t sit in a part created (modification_time, whole
--   seconds) at or after t, so the parts listed as created before the range are skipped by
--   `_part`. Only those are named: a part that is not listed is read, so a merge that ends
--   between the listing and the read (its part replaces listed ones) costs a read, not the
--   calls. system.parts lists no part of llm_calls when it is a Distributed table (a cluster;
--   see schema/038): then every part is read (the inserted_at filter still bounds the rows).
-- - llm_tasks: looked up by its key (task_id) for these candidates only, in the parts not
--   listed as created before the range's start: a task that has a row and a call stored at t
--   got a new row version when that call was linked, after t (every call of a task with a row
--   rewrites it).
--   A task whose row is older (its linking failed or is still running) is handed to
--   link_tasks.sql anyway, which recomputes it from all its calls: harmless.
-- Parameters: finalize_ms UInt64, lookback_ms UInt64, since DateTime64(3, 'UTC'), limit UInt64.
-- One row: until (the range's end, for the next sweep's since) and up to {limit} task ids.
WITH
    now64(3, 'UTC') - toIntervalMillisecond({finalize_ms:UInt64}) AS range_until,
    greatest(
        {since:DateTime64(3, 'UTC')}, now64(3, 'UTC') - toIntervalMillisecond({lookback_ms:UInt64})
    ) AS range_since,
    (
        SELECT groupArrayIf(name, modification_time < toDateTime(range_since) - 1)
        FROM system.parts
        WHERE database = currentDatabase() AND table = 'llm_calls' AND active
    ) AS old_call_parts,
    (
        SELECT groupArrayIf(name, modification_time < toDateTime(range_since) - 1)
        FROM system.parts
        WHERE database = currentDatabase() AND table = 'llm_tasks' AND active
    ) AS old_task_parts,
    (
        SELECT groupUniqArray(task_id)
        FROM llm_calls
        WHERE _part NOT IN old_call_parts
            AND inserted_at >= range_since AND inserted_at < range_until
    ) AS candidates
SELECT range_until AS until, arraySlice(groupArray(task_id), 1, {limit:UInt64}) AS task_ids
FROM (SELECT arrayJoin(candidates) AS task_id)
WHERE task_id NOT IN (
    SELECT task_id
    FROM llm_tasks
    WHERE _part NOT IN old_task_parts
        AND task_id IN (SELECT arrayJoin(candidates))
)
