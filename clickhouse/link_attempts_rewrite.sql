-- Rewrites the attempt number and kind of the given calls (from clickhouse/link_attempts.sql)
-- by inserting a new version of each row: version + 1 keeps the row's rank bits (see
-- normalize.py), and inserted_at is kept: it dates the call's arrival (the finalisation window
-- counts from it). A row whose version moved on since the changes were computed is left alone;
-- its own linking pass numbers it. Rows are read by llm_calls' key (customer_id, span_id), in
-- the partitions holding calls of [since, until] only (since, until: the earliest and latest ts
-- of the changed calls; a call's versions share ts, hence a partition): a key looked up in every
-- monthly partition reads a granule of each (all its columns, under FINAL), so the rewrite grew
-- with the months stored, not with the batch. None listed (system.parts lists no parts of a
-- Distributed table on a cluster): every partition, as before.
-- Parameters: customer_ids Array(String), span_ids Array(String), versions Array(UInt64),
-- attempts Array(UInt32), kinds Array(String), since DateTime64(6), until DateTime64(6).
INSERT INTO llm_calls
WITH
(
    SELECT partitions
    FROM llm_call_partitions(
        since = {since:DateTime64(6)}, until = {until:DateTime64(6)} + toIntervalMicrosecond(1))
) AS call_partitions,
changes AS
(
    SELECT
        tupleElement(change, 1) AS customer_id,
        tupleElement(change, 2) AS span_id,
        tupleElement(change, 3) AS version,
        tupleElement(change, 4) AS new_attempt,
        tupleElement(change, 5) AS new_kind
    FROM
    (
        SELECT arrayJoin(arrayZip(
            {customer_ids:Array(String)}, {span_ids:Array(String)}, {versions:Array(UInt64)},
            {attempts:Array(UInt32)}, {kinds:Array(String)})) AS change
    )
)
SELECT c.* REPLACE (n.new_attempt AS attempt, n.new_kind AS attempt_kind, c.version + 1 AS version)
FROM llm_calls AS c FINAL
INNER JOIN changes AS n
    ON c.customer_id = n.customer_id AND c.span_id = n.span_id AND c.version = n.version
WHERE (empty(call_partitions) OR c._partition_id IN call_partitions)
    AND (c.customer_id, c.span_id) IN (SELECT customer_id, span_id FROM changes)
SETTINGS join_use_nulls = 0
