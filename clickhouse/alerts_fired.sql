-- The alerts already recorded for these periods, with the version that holds each key (the
-- budget evaluator's memory of what fired; the version tells a processor whether its own
-- insert of a key is the one kept, see processor/budgets/sinks.py TableSink). customer_id: a
-- workspace alert recorded before workspaces were keyed by customer names the workspace
-- alone in scope_id (processor/budgets/thresholds.py fired_scope_ids).
-- Parameters: periods Array(String).
SELECT period, rule, scope, scope_id, customer_id, threshold_pct, version
FROM llm_alerts FINAL
WHERE period IN {periods:Array(String)}
