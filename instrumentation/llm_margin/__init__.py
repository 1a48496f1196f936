"""llm-margin: per-customer LLM cost attribution from OpenTelemetry spans."""
