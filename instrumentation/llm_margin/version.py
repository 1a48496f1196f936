"""The version of the llm_margin instrumentation (reported as the tracer's version)."""

__version__ = "0.1.0"
