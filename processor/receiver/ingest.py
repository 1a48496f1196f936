"""What both receivers do with a decoded request: extract, queue, wait until durable.

The receivers depend only on this object, so the transport code stays thin.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from llm_margin.processor.metrics import Metrics
from llm_margin.processor.pipeline import Pipeline
from llm_margin.processor.writer import BatchWriter, QueueFullError

# How long exporters are told to wait before sending again (HTTP Retry-After, gRPC RetryInfo).
RETRY_AFTER_SECONDS = 1


class IngestOutcome(enum.Enum):
    STORED = "stored"
    # Queue full: HTTP 429, gRPC UNAVAILABLE + RetryInfo.
    THROTTLED = "throttled"
    # Store and spool both unavailable, or shutting down: HTTP 503, gRPC UNAVAILABLE.
    RETRY_LATER = "retry_later"


@dataclass(frozen=True)
class IngestResult:
    outcome: IngestOutcome
    rejected: int = 0
    message: str = ""
    retry_after_seconds: int = RETRY_AFTER_SECONDS


class Ingestor:
    def __init__(
        self,
        pipeline: Pipeline,
        writer: BatchWriter,
        *,
        ack_timeout: float = 10.0,
        metrics: Metrics | None = None,
    ):
        self._pipeline = pipeline
        self._writer = writer
        self._ack_timeout = ack_timeout
        self._metrics = metrics or Metrics()

    def ingest(self, request: Any, raw: bytes | None = None) -> IngestResult:
        """``raw``: the protobuf bytes ``request`` was parsed from, if any (a fast skip)."""
        extracted = self._pipeline.extract(request, raw)
        try:
            ticket = self._writer.submit(extracted.calls, extracted.task_spans)
        except QueueFullError as exc:
            outcome = IngestOutcome.THROTTLED if exc.throttled else IngestOutcome.RETRY_LATER
            return IngestResult(outcome, message=str(exc))
        try:
            stored = ticket.wait(self._ack_timeout)
        except Exception as exc:  # neither store nor spool took it: the exporter must resend
            return IngestResult(IngestOutcome.RETRY_LATER, message=f"store unavailable: {exc}")
        if not stored:
            # Still queued and written later; the exporter's resend is deduplicated.
            self._metrics.inc("ack_timeouts")
            return IngestResult(IngestOutcome.RETRY_LATER, message="store is slow; retry")
        return IngestResult(
            IngestOutcome.STORED, rejected=extracted.rejected, message=extracted.error_message()
        )
