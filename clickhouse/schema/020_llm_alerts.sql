-- Budget alerts, one row per (rule, scope, threshold, period): the evaluator fires each alert
-- once per period; re-inserting the same key (a second replica) does not duplicate it. Versions
-- count down (processor/budgets/sinks.py), so the first insert of a key is the row kept, and
-- the processor that made it is the one that tells the log and the webhook.
CREATE TABLE IF NOT EXISTS llm_alerts
(
    fired_at       DateTime64(6, 'UTC'),
    period         String,
    rule           LowCardinality(String),
    severity       LowCardinality(String),
    scope          LowCardinality(String),
    scope_id       String,
    customer_id    String,
    threshold_pct  Decimal(9, 4),
    spent_usd      Decimal(38, 18),
    limit_usd      Decimal(38, 18),
    observed       String,
    message        String,
    version        UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (period, rule, scope, scope_id, threshold_pct)
