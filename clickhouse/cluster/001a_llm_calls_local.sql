-- Cluster variant of schema/001_llm_calls.sql: the shard-local, replicated table behind the Distributed `llm_calls`.
-- Rendered by llm_margin.processor.cluster_schema ('__CLUSTER__' and '__DATABASE__' are filled
-- in, escaped) when the processor runs with `cluster_name`. Columns must stay identical to
-- schema/001_llm_calls.sql (tests/unit/test_cluster_ddl.py fails otherwise).
CREATE TABLE IF NOT EXISTS llm_calls_local ON CLUSTER '__CLUSTER__'
(
    ts                    DateTime64(6, 'UTC'),
    trace_id              String,
    span_id               String,
    parent_span_id        String,
    task_id               String,
    customer_id           LowCardinality(String),
    workspace_id          String,
    user_id               String,
    plan                  LowCardinality(String),
    feature               LowCardinality(String),
    provider              LowCardinality(String),
    route                 String,
    operation             LowCardinality(String),
    request_model         String,
    response_model        String,
    status                LowCardinality(String),
    error_type            String,
    input_tokens          UInt64,
    output_tokens         UInt64,
    cache_read_tokens     UInt64,
    cache_write_tokens    UInt64,
    cache_write_1h_tokens UInt64,
    reasoning_tokens      UInt64,
    usage_source          LowCardinality(String),
    sdk_retries           UInt32,
    attempt               UInt32,
    attempt_kind          LowCardinality(String),
    latency_ms            Float64,
    stream                Bool,
    service_tier          LowCardinality(String),
    cost_usd              Decimal(38, 18),
    priced                Bool,
    price_version         LowCardinality(String),
    source                LowCardinality(String),
    version               UInt64,
    -- Audio parts of input_tokens / output_tokens (OpenAI audio models), priced apart.
    input_audio_tokens    UInt64,
    output_audio_tokens   UInt64,
    -- Server-side tool calls billed per call beside the tokens (not part of any token count).
    web_search_calls      UInt32,
    file_search_calls     UInt32,
    -- The part of cost_usd the searches account for (the rest is the tokens'): provider cost
    -- exports bill searches on lines of their own, and reconcile compares like with like.
    web_search_cost_usd   Decimal(38, 18),
    file_search_cost_usd  Decimal(38, 18),
    -- The inference speed mode: "fast" (Anthropic fast mode, priced at its own premium
    -- price), "standard", or '' when the span does not say.
    speed                 LowCardinality(String),
    -- Sub-inferences billed outside the call's top-level usage (Anthropic compaction and
    -- advisor iterations), each priced at its model's price ('' = the call's own model) into
    -- cost_usd; sub_usage_cost_usd is their part of it. Input counts include cache tokens.
    sub_usage             Array(Tuple(kind String, model String, input_tokens UInt64, output_tokens UInt64, cache_read_tokens UInt64, cache_write_tokens UInt64, cache_write_1h_tokens UInt64)),
    sub_usage_cost_usd    Decimal(38, 18),
    -- Where the provider ran inference (Anthropic usage.inference_geo): "us" (US-only, billed
    -- at a premium per token), "global" (standard), or '' when the span does not say.
    inference_geo         LowCardinality(String),
    -- The cost of each sub_usage entry, in its order, when the call was priced (empty when it
    -- was not), so reconcile can compare an advisor's cost under the advisor's model; they sum
    -- to sub_usage_cost_usd.
    sub_usage_entry_costs_usd Array(Decimal(38, 18)),
    -- How the provider served the call (Vertex AI usage_metadata.traffic_type, lower-cased):
    -- "provisioned_throughput" (paid by a subscription; priced by a `traffic_types:`
    -- multiplier, unpriced without one), "on_demand" and its PayGo tiers (per token), or ''.
    traffic_type          LowCardinality(String) DEFAULT '',
    inserted_at           DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version)
PARTITION BY toYYYYMM(ts)
ORDER BY (customer_id, span_id)
