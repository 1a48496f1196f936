-- Daily spend by feature over [since, until) (UTC days).
-- Parameters: since DateTime64(6), until DateTime64(6).
SELECT
    toDate(ts) AS day,
    if(feature != '', feature, '(none)') AS feature,
    count() AS calls,
    uniqExact(task_id) AS tasks,
    uniqExact(customer_id) AS active_customers,
    sum(cost_usd) AS cost_usd
FROM llm_calls FINAL
WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
GROUP BY day, feature
ORDER BY day ASC, feature ASC
