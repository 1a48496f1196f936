-- Stored calls of [since, until) with what `reprice` needs to price them again.
-- Parameters: since DateTime64(6), until DateTime64(6).
SELECT
    ts, customer_id, span_id, version, provider, request_model, response_model,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens,
    service_tier, cost_usd, price_version
FROM llm_calls FINAL
WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
ORDER BY ts, span_id
