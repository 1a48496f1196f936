"""/metrics text: sample values must be exact, however large the counters grow."""

from __future__ import annotations

from llm_margin.processor.metrics import Metrics


def _sample(text: str, name: str) -> str:
    return next(line.split()[1] for line in text.splitlines() if line.startswith(name + " "))


def test_counters_and_gauges_past_a_million_render_exactly():
    metrics = Metrics()
    metrics.inc("received_spans", 1_234_567)
    metrics.inc("stored_calls", 2**53 + 1)
    metrics.set("spool_bytes", 1_073_741_823)
    text = metrics.render()
    # A soak of a few minutes passes a million spans; `:g` printed 1.23457e+06.
    assert _sample(text, "llm_margin_received_spans_total") == "1234567"
    assert _sample(text, "llm_margin_stored_calls_total") == str(2**53 + 1)
    assert _sample(text, "llm_margin_spool_bytes") == "1073741823"
    assert _sample(text, "llm_margin_dropped_records_total") == "0"


def test_fractional_values_keep_their_digits():
    metrics = Metrics()
    metrics.set("queue_depth", 0.125)
    assert _sample(metrics.render(), "llm_margin_queue_depth") == "0.125"
