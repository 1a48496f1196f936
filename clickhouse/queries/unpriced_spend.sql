-- Spend the margin numbers cannot fully explain, over [since, until): calls stored unpriced
-- (no price known for the model: cost 0 until `reprice`) and calls with no customer
-- ('(unattributed)': priced, but nobody's margin carries them), by provider and model.
-- Parameters: since DateTime64(6), until DateTime64(6).
SELECT
    kind,
    provider,
    model,
    count() AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cost_usd) AS cost_usd,
    min(ts) AS first_seen,
    max(ts) AS last_seen
FROM
(
    SELECT arrayJoin(arrayFilter(k -> k != '', [
               if(NOT priced, 'unpriced', ''),
               if(customer_id = '(unattributed)', 'unattributed', '')])) AS kind,
           provider,
           if(response_model != '', response_model, request_model) AS model,
           input_tokens, output_tokens, cost_usd, ts
    FROM llm_calls FINAL
    WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
      AND (NOT priced OR customer_id = '(unattributed)')
)
GROUP BY kind, provider, model
ORDER BY kind ASC, calls DESC, provider ASC, model ASC
