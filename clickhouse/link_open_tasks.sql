-- Tasks to finalise: calls stored more than {finalize_ms} ms ago (and less than {lookback_ms}
-- ago, to bound the scan), whose task has no llm_tasks row yet because its root span never
-- arrived. The processor's sweep (linking.TaskFinalizer) links them with outcome 'unknown'.
SELECT DISTINCT task_id
FROM llm_calls
WHERE inserted_at < now64(3) - toIntervalMillisecond({finalize_ms:UInt64})
    AND inserted_at >= now64(3) - toIntervalMillisecond({lookback_ms:UInt64})
    AND task_id NOT IN (SELECT task_id FROM llm_tasks)
LIMIT 100000
