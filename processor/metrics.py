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
    "queue_full_rejections": "Batches refused because the write queue was full.",
    "stored_calls": "Call rows written.",
    "stored_task_spans": "Task span rows written.",
    "unpriced_calls": "Call rows written without a price.",
    "write_errors": "Failed writes to the store.",
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
}

# Upper bounds (seconds) of the write latency histogram's buckets.
WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GAUGES = frozenset({"queue_depth", "spool_bytes"})


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = dict.fromkeys(_HELP, 0)
        self._write_seconds_sum = 0.0
        self._write_count = 0
        self._write_buckets = [0] * len(WRITE_BUCKETS)

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
        with self._lock:
            self._write_seconds_sum += seconds
            self._write_count += 1
            for index, bound in enumerate(WRITE_BUCKETS):
                if seconds <= bound:
                    self._write_buckets[index] += 1

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
                lines.append(f"{metric} {value:g}")
            lines.append("# HELP llm_margin_write_seconds Time spent writing batches to the store.")
            lines.append("# TYPE llm_margin_write_seconds histogram")
            for bound, count in zip(WRITE_BUCKETS, self._write_buckets, strict=True):
                lines.append(f'llm_margin_write_seconds_bucket{{le="{bound:g}"}} {count}')
            lines.append(f'llm_margin_write_seconds_bucket{{le="+Inf"}} {self._write_count}')
            lines.append(f"llm_margin_write_seconds_sum {self._write_seconds_sum:.6f}")
            lines.append(f"llm_margin_write_seconds_count {self._write_count}")
        return "\n".join(lines) + "\n"
