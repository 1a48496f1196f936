-- Record a refresh of the given hours in llm_rollup_hours, AFTER every roll-up row of that
-- refresh is stored: from now on readers use those rows while each hour's llm_calls parts
-- keep the signature taken before the refresh read them (see rollup_stale_hours.sql).
-- Parameters: hours Array(DateTime), source_rows Array(UInt64),
-- source_modified Array(DateTime), refreshed_at DateTime64(6).
-- rollup_format: the version of the roll-up logic (030_llm_rollup_hours.sql); raise it here, in
-- rollup_stale_hours.sql and in 039_llm_rollup_fresh.sql together (a unit test checks).
INSERT INTO llm_rollup_hours (hour, source_rows, source_modified, refreshed_at, rollup_format)
SELECT tupleElement(x, 1), tupleElement(x, 2), tupleElement(x, 3), {refreshed_at:DateTime64(6)},
       1
FROM
(
    SELECT arrayJoin(arrayZip({hours:Array(DateTime)}, {source_rows:Array(UInt64)},
                              {source_modified:Array(DateTime)})) AS x
)
