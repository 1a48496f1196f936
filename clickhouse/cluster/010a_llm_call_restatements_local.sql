-- Cluster variant of schema/010_llm_call_restatements.sql (issue 4, pricing): the shard-local,
-- replicated table behind the Distributed `llm_call_restatements`.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/010_llm_call_restatements.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_call_restatements_local ON CLUSTER '__CLUSTER__'
(
    ts                     DateTime64(6, 'UTC'),
    customer_id            LowCardinality(String),
    span_id                String,
    call_version           UInt64,
    charged_cost_usd       Decimal(38, 18),
    charged_price_version  LowCardinality(String),
    restated_cost_usd      Decimal(38, 18),
    restated_priced        Bool,
    restated_price_version LowCardinality(String),
    restated_at            DateTime64(6, 'UTC'),
    version                UInt64,
    -- The searches' part of restated_cost_usd (llm_calls.web_search_cost_usd, ...).
    restated_web_search_cost_usd  Decimal(38, 18),
    restated_file_search_cost_usd Decimal(38, 18),
    -- The sub-inferences' part of restated_cost_usd (llm_calls.sub_usage_cost_usd).
    restated_sub_usage_cost_usd   Decimal(38, 18),
    -- Its cost per sub_usage entry (llm_calls.sub_usage_entry_costs_usd), empty when unpriced.
    restated_sub_usage_entry_costs_usd Array(Decimal(38, 18))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version)
PARTITION BY toYYYYMM(ts)
ORDER BY (customer_id, span_id)
