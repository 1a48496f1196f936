"""Counters and gauges of the processor, rendered in Prometheus text format for /metrics."""

from __future__ import annotations

import threading

_HELP = {
    "received_spans": "Spans received over OTLP (all kinds).",
    "received_llm_spans": "Spans recognised as LLM calls.",
    "received_task_spans": "Spans recognised as task roots.",
    "skipped_spans": "Non-LLM spans skipped.",
    "rejected_spans": "Spans rejected as invalid (reported via partial_success).",
    "rejected_requests": "Requests rejected (malformed, unauthenticated, too large).",
    "refused_connections": "OTLP/HTTP connections closed at once because the port already "
    "had its maximum open (senders reconnect and resend).",
    "internal_errors": "Requests answered HTTP 500 or gRPC INTERNAL because handling them "
    "failed (a bug).",
    "queue_full_rejections": "Batches refused because the write queue was full.",
    "concurrency_rejections": "Export requests refused because the receiver was already "
    "handling max_concurrent_exports (HTTP 429, gRPC RESOURCE_EXHAUSTED); senders retry them.",
    "inflight_bytes_rejections": "OTLP/HTTP requests answered 429 because the request "
    "bodies in memory were at max_inflight_body_bytes; senders retry them.",
    "stored_calls": "Call rows written.",
    "stored_task_spans": "Task span rows written.",
    "unpriced_calls": "Call rows written without a price.",
    "write_errors": "Failed writes to the store.",
    "link_errors": "Task linking passes that failed (their batches are resent by the exporters).",
    "queue_depth": "Records waiting in the write queue.",
    "dropped_records": "Acknowledged records given up on: spool segments the store refused "
    "(kept in the spool's bad/ folder).",
    "refused_records": "Records refused with a retry status (queue or spool full, shutdown); "
    "the exporter keeps and resends them.",
    "spool_full_rejections": "Batches refused because the spool was full or unwritable.",
    "spooled_records": "Records written to the on-disk spool while the store was unavailable.",
    "replayed_records": "Spooled records moved into the store.",
    "spool_bytes": "Bytes waiting in the on-disk spool.",
    "ack_timeouts": "Requests answered 'retry' because their batch was not durable within "
    "ack_timeout_seconds (it is still written; the resend is deduplicated).",
    "nested_llm_spans": "LLM spans folded into another span of the same provider request.",
    "nested_key_conflicts": "Nested LLM spans stored as their own row (exported in an earlier "
    "batch than the call span around them).",
    "budget_alerts_fired": "Budget alerts fired.",
    "budget_evaluation_errors": "Budget evaluation rounds that failed (see the log).",
    "alert_webhook_failures": "Alert webhook posts that failed after their quick retries "
    "(the alert is kept and sent again).",
    "alert_webhook_dropped": "Undelivered alerts dropped because too many were waiting.",
    "alert_webhook_rejected": "Alerts the webhook receiver refused for good (400, 413, 422), "
    "dropped so the alerts after them are delivered.",
    "alert_webhook_state_errors": "Times the alerts waiting for the webhook could not be written "
    "to the spool directory (they stay in memory and are written again at the next round; a "
    "restart before that would lose them), or were unreadable "
    "at start (set aside as webhook-pending.json.bad).",
}

# Upper bounds (seconds) of the latency histograms' buckets.
WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_HISTOGRAMS = {
    "write": "Time spent inserting batches into the store.",
    "link": "Time spent linking the tasks of inserted batches (llm_tasks, attempt numbers).",
}

GAUGES = frozenset({"queue_depth", "spool_bytes"})


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = dict.fromkeys(_HELP, 0)
        # name -> [sum of seconds, count, per-bucket counts]
        self._histograms: dict[str, list] = {
            name: [0.0, 0, [0] * len(WRITE_BUCKETS)] for name in _HISTOGRAMS
        }

    def inc(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._values[name] = self._values.get(name, 0) + amount

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self._values[name] = value

    def get(self, name: str) -> float:
        with self._lock:
            return self._values.get(name, 0)

    def observe_write(self, seconds: float) -> None:
        self._observe("write", seconds)

    def observe_link(self, seconds: float) -> None:
        self._observe("link", seconds)

    def _observe(self, name: str, seconds: float) -> None:
        with self._lock:
            histogram = self._histograms[name]
            histogram[0] += seconds
            histogram[1] += 1
            for index, bound in enumerate(WRITE_BUCKETS):
                if seconds <= bound:
                    histogram[2][index] += 1

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, value in sorted(self._values.items()):
                metric = f"llm_margin_{name}"
                kind = "gauge" if name in GAUGES else "counter"
                if kind == "counter":
                    metric += "_total"
                lines.append(f"# HELP {metric} {_HELP.get(name, name)}")
                lines.append(f"# TYPE {metric} {kind}")
                lines.append(f"{metric} {_number(value)}")
            for name, help_text in _HISTOGRAMS.items():
                total, count, buckets = self._histograms[name]
                metric = f"llm_margin_{name}_seconds"
                lines.append(f"# HELP {metric} {help_text}")
                lines.append(f"# TYPE {metric} histogram")
                for bound, in_bucket in zip(WRITE_BUCKETS, buckets, strict=True):
                    lines.append(f'{metric}_bucket{{le="{bound:g}"}} {in_bucket}')
                lines.append(f'{metric}_bucket{{le="+Inf"}} {count}')
                lines.append(f"{metric}_sum {total:.6f}")
                lines.append(f"{metric}_count {count}")
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    """A sample value, exact: ``:g`` keeps six digits, so a counter past a million read
    1.23457e+06 and counters could no longer be reconciled with each other."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    return repr(value)
