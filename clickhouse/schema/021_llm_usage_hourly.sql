-- Roll-up of llm_calls by UTC hour (and customer, workspace, plan, feature, provider, model,
-- priced) that keeps the margin queries fast on large stores. Correct under duplicate inserts
-- by construction: it is not a materialized view (which would see duplicates before the
-- ReplacingMergeTree merges them) but is recomputed per hour from deduplicated calls by
-- `llm_margin.processor.reports.rollup.refresh_usage_rollup` (the processor runs it in the
-- background). Each refresh records the signature of the llm_calls parts overlapping the hour
-- (row count, newest modification time, from system.parts); queries use an hour from here
-- only while that signature is unchanged and read llm_calls otherwise, so a stale or missing
-- roll-up is slower, never wrong. Hours without calls get one empty marker row
-- (customer_id '', calls 0) so they count as refreshed.
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
    -- Distinct tasks as 64-bit SipHash of task_id (uniqExact itself hashes strings).
    tasks_state        AggregateFunction(uniqExact, UInt64),
    first_ts           DateTime64(6, 'UTC'),
    last_ts            DateTime64(6, 'UTC'),
    -- Signature of the llm_calls parts overlapping the hour, as the refresh saw them: their
    -- row count and newest modification time (the column name predates the signature).
    source_rows        UInt64,
    source_inserted_at DateTime64(3, 'UTC'),
    refreshed_at       DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(refreshed_at)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, customer_id, workspace_id, plan, feature, provider, model, priced)
