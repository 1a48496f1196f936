-- One row per task, recomputed from every stored call of the task each time one arrives, so
-- totals do not depend on arrival order, batching or process. The highest version wins.
CREATE TABLE IF NOT EXISTS llm_tasks
(
    task_id         String,
    customer_id     LowCardinality(String),
    workspace_id    String,
    plan            LowCardinality(String),
    feature         LowCardinality(String),
    outcome         LowCardinality(String),
    calls           UInt32,
    retries         UInt32,
    fallbacks       UInt32,
    sdk_retries     UInt32,
    cost_usd        Decimal(38, 18),
    wasted_cost_usd Decimal(38, 18),
    original_route  String,
    final_route     String,
    started_at      DateTime64(6, 'UTC'),
    ended_at        DateTime64(6, 'UTC'),
    version         UInt64,
    -- The outcome word the app reported on the task's root span, as given ('rejected', ...);
    -- outcome maps it to success | failure | unknown.
    outcome_detail  LowCardinality(String) DEFAULT '',
    -- The UTC day the task is filed under in llm_tasks_by_start (040), fixed at its first
    -- write and carried into every later version (link_tasks.sql), so all its versions share
    -- one key there. Never before the day of any version's started_at (see 040). A row
    -- written before the column existed reads its own ended_at's day.
    start_bucket    Date DEFAULT toDate(ended_at, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY task_id
