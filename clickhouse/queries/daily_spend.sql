-- Spend per customer and per workspace in [since, until) (the budget evaluator's daily hard
-- cap: since = start of the UTC day).
-- Parameters: since DateTime64(6), until DateTime64(6).
SELECT 'customer' AS scope, customer_id AS scope_id, customer_id,
       sum(cost_usd) AS spent_usd, count() AS calls
FROM llm_calls FINAL
WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
GROUP BY customer_id
UNION ALL
SELECT 'workspace', workspace_id, any(customer_id), sum(cost_usd), count()
FROM llm_calls FINAL
WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)} AND workspace_id != ''
GROUP BY workspace_id
