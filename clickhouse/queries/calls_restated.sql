-- Calls with their as-charged and restated cost side by side (restated = as charged where no
-- current restatement exists). A report shows either column; sums reconcile per call.
-- Parameters: since DateTime64(6), until DateTime64(6).
SELECT
    c.ts, c.customer_id, c.span_id, c.task_id, c.provider,
    if(c.response_model != '', c.response_model, c.request_model) AS model,
    c.cost_usd AS charged_cost_usd,
    c.price_version AS charged_price_version,
    if(r.span_id != '', r.restated_cost_usd, c.cost_usd) AS restated_cost_usd,
    if(r.span_id != '', r.restated_price_version, c.price_version) AS restated_price_version,
    if(r.span_id != '', r.restated_priced, c.priced) AS restated_priced
FROM (
    SELECT * FROM llm_calls FINAL
    WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
) AS c
LEFT JOIN (
    SELECT * FROM llm_call_restatements FINAL
    WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
) AS r ON r.customer_id = c.customer_id AND r.span_id = c.span_id
    -- Same rank (the version's high bits, normalize.call_rank): a restatement stops applying
    -- when its call was replaced by a better span (the final usage after an estimate), not
    -- when the linker renumbered the call's attempt.
    AND bitShiftRight(r.call_version, 52) = bitShiftRight(c.version, 52)
ORDER BY c.ts, c.span_id
SETTINGS join_use_nulls = 0
