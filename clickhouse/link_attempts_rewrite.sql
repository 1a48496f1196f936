-- Rewrites the attempt number and kind of the given calls (from clickhouse/link_attempts.sql)
-- by inserting a new version of each row: version + 1 keeps the row's rank bits (see
-- normalize.py), and inserted_at is kept: it dates the call's arrival (the finalisation window
-- counts from it). A row whose version moved on since the changes were computed is left alone;
-- its own linking pass numbers it. Rows are read by llm_calls' key (customer_id, span_id).
INSERT INTO llm_calls
WITH changes AS
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
WHERE (c.customer_id, c.span_id) IN (SELECT customer_id, span_id FROM changes)
SETTINGS join_use_nulls = 0
