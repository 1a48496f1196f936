-- One row per refresh of one UTC hour of the roll-ups (llm_usage_hourly, llm_task_fragments,
-- llm_task_hourly): the signature of the llm_calls parts overlapping the hour as the refresh
-- saw them (row count, newest modification time, from system.parts) and the refresh's time,
-- which the roll-up rows of that refresh carry too. Written after the roll-up rows, so an hour
-- is never announced before its rows are stored. Read through the view llm_rollup_fresh.
CREATE TABLE IF NOT EXISTS llm_rollup_hours
(
    hour            DateTime('UTC'),
    source_rows     UInt64,
    source_modified DateTime('UTC'),
    refreshed_at    DateTime64(6, 'UTC'),
    -- Version of the roll-up logic that wrote the hour (queries/rollup_record_hours.sql). A
    -- release that changes how roll-up rows are computed raises it, so hours refreshed by an
    -- older release count as stale and are recomputed (0: before this column existed).
    rollup_format   UInt32 DEFAULT 0
)
ENGINE = ReplacingMergeTree(refreshed_at)
ORDER BY hour
