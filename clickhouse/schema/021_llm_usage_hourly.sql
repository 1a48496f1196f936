-- Roll-up of llm_calls by UTC hour (and customer, workspace, plan, feature, provider, model,
-- priced) that keeps the margin queries fast on large stores. Correct under duplicate inserts
-- by construction: it is not a materialized view (which would see duplicates before the
-- ReplacingMergeTree merges them) but is recomputed per hour from deduplicated calls by
-- `llm_margin.processor.reports.rollup.refresh_usage_rollup` (the processor runs it in the
-- background). Each refresh records the hour's source row count and newest inserted_at;
-- queries use an hour from here only when both still match llm_calls, and read llm_calls
-- directly otherwise, so a stale or missing roll-up is slower, never wrong.
CREATE TABLE IF NOT EXISTS llm_usage_hourly
(
    hour               DateTime('UTC'),
    customer_id        LowCardinality(String),
    workspace_id       String,
    plan               LowCardinality(String),
    feature            LowCardinality(String),
    provider           LowCardinality(String),
    model              String,
    priced             Bool,
    calls              UInt64,
    failed_calls       UInt64,
    input_tokens       UInt64,
    output_tokens      UInt64,
    cost_usd           Decimal(38, 18),
    tasks_state        AggregateFunction(uniqExact, String),
    first_ts           DateTime64(6, 'UTC'),
    last_ts            DateTime64(6, 'UTC'),
    source_rows        UInt64,
    source_inserted_at DateTime64(3, 'UTC'),
    refreshed_at       DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(refreshed_at)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, customer_id, workspace_id, plan, feature, provider, model, priced)
