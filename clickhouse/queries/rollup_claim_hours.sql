-- Claim the given hours for one refresh in llm_rollup_hours, BEFORE it writes any roll-up row:
-- a row with that refreshed_at and a signature no parts have (modification time 0). The
-- roll-up tables keep the greatest refreshed_at per key when they merge, so once this refresh
-- writes rows, those of any earlier refresh may vanish; with its claim the latest entry of
-- the hour, readers use no earlier refresh (llm_rollup_fresh), and refreshers count the hour
-- stale until this refresh records it (rollup_record_hours.sql), or for good if it dies.
-- rollup_format stays 0: the claim never counts as current anyway.
-- Parameters: hours Array(DateTime), refreshed_at DateTime64(6).
INSERT INTO llm_rollup_hours (hour, source_rows, source_modified, refreshed_at)
SELECT arrayJoin({hours:Array(DateTime)}), 0, toDateTime(0, 'UTC'), {refreshed_at:DateTime64(6)}
