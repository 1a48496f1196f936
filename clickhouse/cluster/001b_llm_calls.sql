-- Cluster variant of schema/001_llm_calls.sql: `llm_calls` as a Distributed table over `llm_calls_local`;
-- readers and writers use this name, as in the single-server schema. Sharding key: cityHash64(span_id):
-- a span's re-deliveries and its provisional row land on one shard, so FINAL deduplicates them.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/001_llm_calls.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_calls ON CLUSTER '__CLUSTER__'
AS llm_calls_local
ENGINE = Distributed('__CLUSTER__', '__DATABASE__', 'llm_calls_local', cityHash64(span_id))
