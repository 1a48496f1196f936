-- `llm-margin reprice`: each stored call restated under the price book of the day, beside its
-- as-charged cost (llm_calls.cost_usd, never rewritten). One row per call and restatement;
-- the latest restatement (highest version) wins. `call_version` is the llm_calls row version
-- it restated: queries/calls_restated.sql ignores a restatement whose call row has since been
-- replaced by a better-ranked span (a stream's final usage after its estimate).
CREATE TABLE IF NOT EXISTS llm_call_restatements
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
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ts)
ORDER BY (customer_id, span_id)
