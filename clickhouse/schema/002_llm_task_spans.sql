-- Root task spans (llm_margin.task()), kept apart from calls because they may arrive before,
-- after, or never relative to the calls of their task.
CREATE TABLE IF NOT EXISTS llm_task_spans
(
    task_id      String,
    trace_id     String,
    span_id      String,
    name         String,
    outcome      LowCardinality(String),
    customer_id  LowCardinality(String),
    workspace_id String,
    plan         LowCardinality(String),
    feature      LowCardinality(String),
    started_at   DateTime64(6, 'UTC'),
    ended_at     DateTime64(6, 'UTC'),
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (task_id, span_id)
