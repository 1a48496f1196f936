-- Revenue side: plans and the customers on them, loaded from the plans YAML.
CREATE TABLE IF NOT EXISTS plans
(
    plan                    String,
    monthly_price_usd       Decimal(38, 6),
    included_ai_usd         Decimal(38, 6),
    target_gross_margin_pct Decimal(9, 4),
    version                 UInt64,
    -- Markup on AI cost in the billing export, in percent, for customers on the plan; NULL:
    -- not set. After version: an older store gets it appended (schema_upgrade.py), in this order.
    markup_pct              Nullable(Decimal(38, 18))
)
ENGINE = ReplacingMergeTree(version)
ORDER BY plan
