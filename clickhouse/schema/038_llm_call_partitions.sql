-- The partitions of llm_calls whose parts hold calls of [since, until) (a parameterised view:
-- `(SELECT partitions FROM llm_call_partitions(since = ..., until = ...))`). Queries that read
-- llm_calls FINAL filter `_partition_id IN` these: under FINAL, ClickHouse does not skip
-- partitions by a ts filter (it cannot know that a span's versions share ts, hence a
-- partition), so it would merge every month of the store. min_time/max_time are whole seconds,
-- so `since` is compared at second precision. Empty when system.parts lists no parts for
-- llm_calls (a Distributed table on a cluster): readers then skip the filter.
-- Parameters: since DateTime64(6), until DateTime64(6).
CREATE OR REPLACE VIEW llm_call_partitions AS
SELECT groupUniqArray(partition_id) AS partitions
FROM system.parts
WHERE database = currentDatabase() AND table = 'llm_calls' AND active
  AND max_time >= toStartOfSecond({since:DateTime64(6)})
  AND min_time < {until:DateTime64(6)}
