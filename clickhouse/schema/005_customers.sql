CREATE TABLE IF NOT EXISTS customers
(
    customer_id       String,
    name              String,
    plan              String,
    -- NULL: the plan's price applies.
    custom_price_usd  Nullable(Decimal(38, 6)),
    workspaces        Array(String),
    version           UInt64,
    -- Markup on AI cost in the billing export, in percent; NULL: the plan markup applies.
    -- After version: an older store gets it appended (schema_upgrade.py), in this order.
    markup_pct        Nullable(Decimal(38, 18))
)
ENGINE = ReplacingMergeTree(version)
ORDER BY customer_id
