"""From one OTLP export request to priced records: normalise, price, count."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llm_margin import attributes as A
from llm_margin.processor import normalize
from llm_margin.processor.linking import CallSpan, NestedCallResolver  # issue 4
from llm_margin.processor.metrics import Metrics
from llm_margin.processor.normalize import (
    call_from_span,
    read_attributes,
    span_kind,
    task_span_from_span,
)
from llm_margin.processor.pricing import PriceBook
from llm_margin.processor.receiver.limits import check_money, check_storable
from llm_margin.processor.records import CallRecord, TaskSpanRecord

# error.type of a "call" another instrumentation recorded when our budget enforcement stopped
# the request before it left the app (BudgetExceeded): no provider call happened, so no row.
NEVER_SENT_ERRORS = frozenset({"llm_margin.budget.BudgetExceeded", "BudgetExceeded"})
MAX_ERROR_MESSAGES = 5

# Attribute keys without which normalize.span_kind() returns None whatever the values: a span
# carrying none of them is skipped on its keys alone, before any value is decoded (most
# traffic is not LLM calls). tests/unit/test_decode_prefilter.py keeps this in step with
# span_kind.
_CANDIDATE_KEYS = frozenset(normalize._LLM_MARKERS) | {A.IS_TASK}
assert _CANDIDATE_KEYS <= normalize.READ_KEYS  # read_attributes keeps every candidate key


_CANDIDATE_KEY_BYTES = tuple(key.encode() for key in sorted(_CANDIDATE_KEYS))


def may_hold_candidates(raw: bytes) -> bool:
    """False when a serialised protobuf request cannot hold a call or task span: protobuf
    stores attribute keys as plain UTF-8, so a key absent from the bytes is in no span."""
    return any(key in raw for key in _CANDIDATE_KEY_BYTES)


def _client_parents(request: Any) -> dict[str, int]:
    """Parent span id -> number of CLIENT spans under it (SDK HTTP attempts, issue 4)."""
    counts: dict[str, int] = {}
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if span.kind == 3 and span.parent_span_id:
                    parent_id = span.parent_span_id.hex()
                    counts[parent_id] = counts.get(parent_id, 0) + 1
    return counts


def check_ids(span: Any) -> None:
    """Raise ValueError unless the span has OTLP's 16-byte trace id and 8-byte span id, not all
    zeros: rows are keyed by span id, so spans without a proper one (empty, say) would
    silently replace each other's rows."""
    for name, value, size in (("trace id", span.trace_id, 16), ("span id", span.span_id, 8)):
        if len(value) != size:
            raise ValueError(f"{name} is {len(value)} bytes, not {size}")
        if not any(value):
            raise ValueError(f"{name} is all zeros")


def may_be_priced(span: Any) -> bool:
    """False when the span cannot be a call or a task root (cheap: keys only)."""
    return not _CANDIDATE_KEYS.isdisjoint([kv.key for kv in span.attributes])


@dataclass
class Extracted:
    calls: list[CallRecord] = field(default_factory=list)
    task_spans: list[TaskSpanRecord] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def error_message(self) -> str:
        return "; ".join(self.errors[:MAX_ERROR_MESSAGES])


class Pipeline:
    def __init__(
        self,
        price_book: PriceBook,
        metrics: Metrics,
        resolver: NestedCallResolver | None = None,  # issue 4: nested spans priced once
    ) -> None:
        self._price_book = price_book
        self._metrics = metrics
        self._resolver = resolver or NestedCallResolver()

    def extract(self, request: Any, raw: bytes | None = None) -> Extracted:
        """Priced call and task records of an ExportTraceServiceRequest.

        ``raw``: the request's protobuf bytes, when at hand; a request without any candidate
        key in them is counted and skipped without looking at its spans one by one.
        A bad span is counted and described, never fatal to the rest of the request.
        """
        out = Extracted()
        if raw is not None and not may_hold_candidates(raw):
            total = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
            self._metrics.inc("received_spans", total)
            self._metrics.inc("skipped_spans", total)
            # issue 4: an SDK's first HTTP attempt often leaves in an earlier batch than its
            # call span (backoff): remember client spans' parents (kind only, no attributes).
            self._resolver.resolve((), _client_parents(request))
            return out
        total = 0
        call_spans: list[CallSpan] = []  # issue 4: resolved into out.calls below
        http_children: dict[str, int] = {}  # parent span id -> HTTP client spans under it
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                # issue 4: which instrumentation made a call (scope name), when not ours
                scope_name = scope_spans.scope.name[:128]
                for span in scope_spans.spans:
                    total += 1
                    try:
                        # One pass: decodes only the attributes normalise reads.
                        attrs = read_attributes(span.attributes)
                        if _CANDIDATE_KEYS.isdisjoint(attrs):  # = not may_be_priced(span)
                            if span.kind == 3 and span.parent_span_id:  # CLIENT: SDK attempt?
                                parent_id = span.parent_span_id.hex()
                                http_children[parent_id] = http_children.get(parent_id, 0) + 1
                            continue
                        kind = span_kind(attrs)
                        if kind is not None:
                            check_ids(span)
                        if kind == "call":
                            call = call_from_span(span, attrs)
                            if call.error_type in NEVER_SENT_ERRORS:
                                continue  # blocked before the provider: no call (skipped)
                            if scope_name and call.source == "otel":
                                call.source = scope_name
                            check_storable(call)  # before pricing: it needs sane counts
                            self._price_book.apply(call)
                            check_money("cost_usd", call.cost_usd)
                            call_spans.append(
                                CallSpan(
                                    call,
                                    span.span_id.hex(),
                                    call.parent_span_id,
                                    str(attrs.get(A.GEN_AI_RESPONSE_ID) or ""),
                                )
                            )
                        elif kind == "task":
                            task = task_span_from_span(span, attrs)
                            check_storable(task)
                            out.task_spans.append(task)
                    except Exception as exc:  # noqa: BLE001
                        # Any failure on one span (bad values, or a value normalise/pricing
                        # cannot handle) rejects that span only: a request that always fails
                        # would be retried by its exporter forever.
                        out.rejected += 1
                        if len(out.errors) < MAX_ERROR_MESSAGES:
                            reason = str(exc) or type(exc).__name__
                            out.errors.append(
                                f"span {span.span_id.hex() or '(empty id)'}: {reason}"
                            )
        conflicts = self._resolver.conflicts
        out.calls = self._resolver.resolve(call_spans, http_children)
        self._metrics.inc("nested_key_conflicts", self._resolver.conflicts - conflicts)
        self._metrics.inc("nested_llm_spans", len(call_spans) - len(out.calls))
        self._metrics.inc("received_spans", total)
        self._metrics.inc("received_llm_spans", len(out.calls))
        self._metrics.inc("received_task_spans", len(out.task_spans))
        self._metrics.inc("rejected_spans", out.rejected)
        self._metrics.inc(
            "skipped_spans", total - len(call_spans) - len(out.task_spans) - out.rejected
        )
        return out
