-- After a refresh stored its llm_task_fragments (rollup_refresh_task_fragments.sql), the hours
-- whose fragments it left unflagged (multi_hour false) although the task now has a fragment
-- in another hour. A refresh of that other hour running at the same time may have looked for
-- this one's fragments before they were stored, and this one for its fragments likewise: then
-- neither is flagged and the per-task views would count the task once per hour. Such hours are
-- not recorded (they stay stale, read from llm_calls, and the next refresh flags the task). Of
-- two such refreshes the later check always sees the other's fragments.
-- Parameters: hours Array(DateTime), refreshed_at DateTime64(6).
WITH unflagged AS
(
    SELECT hour, task_key
    FROM llm_task_fragments
    WHERE hour IN {hours:Array(DateTime)} AND refreshed_at = {refreshed_at:DateTime64(6)}
      AND NOT multi_hour
)
SELECT DISTINCT hour
FROM unflagged
WHERE task_key IN
(
    SELECT task_key FROM llm_task_fragments
    WHERE hour NOT IN {hours:Array(DateTime)}
      AND task_key IN (SELECT task_key FROM unflagged)
)
