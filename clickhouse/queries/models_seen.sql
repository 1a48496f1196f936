-- Models seen in stored calls over [since, until), with call counts and tokens, for
-- `llm-margin prices check` (which asks the current price book about each).
-- Parameters: since DateTime64(6), until DateTime64(6).
SELECT
    provider,
    request_model,
    response_model,
    count() AS calls,
    countIf(NOT priced) AS unpriced_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    max(ts) AS last_ts
FROM llm_calls FINAL
WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
GROUP BY provider, request_model, response_model
ORDER BY calls DESC, provider, request_model, response_model
