-- Gross margin by plan over [since, until): revenue of the plan's customers (custom price, else
-- the plan's price, pro-rated with a 30-day month), their AI cost, and cost per active
-- customer (customers with at least one call). Calls from customers missing from the billing
-- file count under the plan their spans carried.
-- Parameters: since DateTime64(6), until DateTime64(6).
WITH
    usage AS
    (
        SELECT customer_id, argMax(plan, ts) AS seen_plan, count() AS calls,
               uniqExact(task_id) AS tasks, sum(cost_usd) AS cost_usd
        FROM llm_calls FINAL
        WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
        GROUP BY customer_id
    ),
    billing AS
    (
        SELECT c.customer_id AS customer_id, c.plan AS plan,
               ifNull(c.custom_price_usd, p.monthly_price_usd) AS monthly_price_usd
        FROM (SELECT * FROM customers FINAL) AS c
        LEFT JOIN (SELECT * FROM plans FINAL) AS p ON p.plan = c.plan
    ),
    per_customer AS
    (
        SELECT
            if(u.customer_id != '', u.customer_id, b.customer_id) AS customer_id,
            if(b.plan != '', b.plan, if(u.seen_plan != '', u.seen_plan, '(no plan)')) AS plan,
            u.calls AS calls,
            u.tasks AS tasks,
            u.cost_usd AS cost_usd,
            round(toDecimal128(b.monthly_price_usd, 6)
                  * toDecimal128(dateDiff('second', {since:DateTime64(6)}, {until:DateTime64(6)}), 0)
                  / toDecimal128(2592000, 0), 2) AS revenue_usd
        FROM usage AS u
        FULL OUTER JOIN billing AS b ON u.customer_id = b.customer_id
        SETTINGS join_use_nulls = 0
    )
SELECT
    m.plan AS plan,
    m.customers AS customers,
    m.active_customers AS active_customers,
    m.plan_calls AS calls,
    m.plan_tasks AS tasks,
    m.plan_cost_usd AS cost_usd,
    m.plan_revenue_usd AS revenue_usd,
    m.plan_revenue_usd - m.plan_cost_usd AS margin_usd,
    if(m.plan_revenue_usd > 0,
       round((m.plan_revenue_usd - m.plan_cost_usd) * 100 / m.plan_revenue_usd, 2), NULL)
        AS margin_pct,
    if(p.plan != '', p.target_gross_margin_pct, NULL) AS target_margin_pct,
    if(m.active_customers > 0, m.plan_cost_usd / toDecimal128(m.active_customers, 0), NULL)
        AS cost_per_active_customer_usd
FROM
(
    SELECT plan, count() AS customers, countIf(calls > 0) AS active_customers,
           sum(calls) AS plan_calls, sum(tasks) AS plan_tasks,
           sum(cost_usd) AS plan_cost_usd, sum(revenue_usd) AS plan_revenue_usd
    FROM per_customer
    GROUP BY plan
) AS m
LEFT JOIN (SELECT * FROM plans FINAL) AS p ON p.plan = m.plan
ORDER BY cost_usd DESC, plan ASC
SETTINGS join_use_nulls = 0
