-- Per-customer AI cost, revenue and gross margin over [since, until).
-- Revenue: the customer's custom price, else its plan's monthly price, pro-rated over the
-- period with a 30-day month (2,592,000 s). Customers with no calls still appear (full
-- margin); calls with no customer appear as '(unattributed)'.
-- Parameters: since DateTime64(6), until DateTime64(6).
WITH
    usage AS
    (
        SELECT
            customer_id,
            argMax(plan, ts) AS seen_plan,
            count() AS calls,
            uniqExact(task_id) AS tasks,
            sum(input_tokens) AS input_tokens,
            sum(output_tokens) AS output_tokens,
            sum(cost_usd) AS total_cost_usd,
            countIf(NOT priced) AS unpriced_calls
        FROM llm_calls FINAL
        WHERE ts >= {since:DateTime64(6)} AND ts < {until:DateTime64(6)}
        GROUP BY customer_id
    ),
    billing AS
    (
        SELECT
            c.customer_id AS customer_id,
            c.plan AS plan,
            ifNull(c.custom_price_usd, p.monthly_price_usd) AS monthly_price_usd,
            p.target_gross_margin_pct AS target_margin_pct
        FROM (SELECT * FROM customers FINAL) AS c
        LEFT JOIN (SELECT * FROM plans FINAL) AS p ON p.plan = c.plan
    ),
    joined AS
    (
        SELECT
            if(u.customer_id != '', u.customer_id, b.customer_id) AS customer_id,
            if(b.plan != '', b.plan, u.seen_plan) AS plan,
            u.calls AS calls,
            u.tasks AS tasks,
            u.input_tokens AS input_tokens,
            u.output_tokens AS output_tokens,
            u.total_cost_usd AS cost_usd,
            u.unpriced_calls AS unpriced_calls,
            b.target_margin_pct AS target_margin_pct,
            round(
                toDecimal128(b.monthly_price_usd, 6)
                * toDecimal128(dateDiff('second', {since:DateTime64(6)}, {until:DateTime64(6)}), 0)
                / toDecimal128(2592000, 0),
                2) AS revenue_usd
        FROM usage AS u
        FULL OUTER JOIN billing AS b ON u.customer_id = b.customer_id
        SETTINGS join_use_nulls = 0
    )
SELECT
    customer_id,
    plan,
    calls,
    tasks,
    input_tokens,
    output_tokens,
    cost_usd,
    revenue_usd,
    revenue_usd - cost_usd AS margin_usd,
    if(revenue_usd > 0, round((revenue_usd - cost_usd) * 100 / revenue_usd, 2), NULL) AS margin_pct,
    unpriced_calls,
    -- The plan's target gross margin: below it the customer is 'thin', below 0 'underwater'.
    if(plan != '' AND customer_id != '(unattributed)', target_margin_pct, NULL) AS target_margin_pct
FROM joined
ORDER BY cost_usd DESC, customer_id ASC
