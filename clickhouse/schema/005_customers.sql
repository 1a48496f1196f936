CREATE TABLE IF NOT EXISTS customers
(
    customer_id       String,
    name              String,
    plan              String,
    -- NULL: the plan's price applies.
    custom_price_usd  Nullable(Decimal(38, 6)),
    workspaces        Array(String),
    version           UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY customer_id
