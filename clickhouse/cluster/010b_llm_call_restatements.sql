-- Cluster variant of schema/010_llm_call_restatements.sql (issue 4, pricing): a Distributed
-- table over `llm_call_restatements_local`. Sharding key as llm_calls' (cityHash64(span_id)), so a
-- restatement lives on its call's shard.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/010_llm_call_restatements.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_call_restatements ON CLUSTER '__CLUSTER__'
AS llm_call_restatements_local
ENGINE = Distributed('__CLUSTER__', '__DATABASE__', 'llm_call_restatements_local', cityHash64(span_id))
