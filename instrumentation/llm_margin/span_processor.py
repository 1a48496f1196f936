"""The span processor that stamps customer attributes on every span.

On each span start it copies the allowlisted baggage of the span's context (``customer.id``,
``workspace.id``, ``user.id``, ``plan``, ``feature``, ``task.id`` by default; see
``llm_margin.baggage``) and the enclosing ``llm_margin.task`` (its id and name) onto the span.
Inside an LLM call our instrumentation removes the baggage from the context (so that it never
reaches the provider's host) and keeps the copied attributes under a private context key that
this processor also reads: the SDK's HTTP spans inside the call still carry the customer.
Our own spans (tracer ``llm_margin``: calls, stream-start records, tasks) are started with these
attributes already, so the processor skips them.

Usage
-----
The provider instrumentors install it once on the SDK ``TracerProvider`` (the one given to
``instrument(tracer_provider=...)`` or the global one). For manual setup::

    from opentelemetry.sdk.trace import TracerProvider
    from llm_margin.span_processor import BaggageSpanProcessor, install_span_processor

    provider = TracerProvider()
    install_span_processor(provider)   # idempotent; or provider.add_span_processor(...)
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Mapping

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .baggage import allowed_attributes

try:  # the key under which the API keeps baggage in a context (stable since 1.0)
    from opentelemetry.baggage import _BAGGAGE_KEY
except ImportError:  # pragma: no cover
    _BAGGAGE_KEY = None
try:  # the key under which the API keeps the current span (stable since 1.0)
    from opentelemetry.trace.propagation import _SPAN_KEY
except ImportError:  # pragma: no cover
    _SPAN_KEY = None

logger = logging.getLogger("llm_margin")

# The instrumentation scope (tracer name) of our own spans: call, provisional and task spans.
# They are started with the copied attributes among their start attributes, so the processor
# leaves them alone (one attribute update less per call).
OWN_SCOPE = "llm_margin"

# Attributes copied from the request (baggage, task) kept where baggage can no longer be seen.
COPIED_ATTRIBUTES_KEY = otel_context.create_key("llm_margin.copied_attributes")


# One-slot cache: the spans of one request share one baggage mapping (contexts are immutable),
# so the allowlist runs once per request, not once per span.
_last_baggage: tuple[object, dict[str, str]] = (object(), {})


def _reset_cache() -> None:
    global _last_baggage
    _last_baggage = (object(), {})


def _baggage_attributes(ctx: Context) -> dict[str, str]:
    global _last_baggage
    if _BAGGAGE_KEY is None:  # pragma: no cover
        return allowed_attributes(otel_baggage.get_all(ctx))
    raw = ctx.get(_BAGGAGE_KEY)
    if not raw:
        return {}
    cached = _last_baggage
    if cached[0] is raw:
        return cached[1]
    result = allowed_attributes(raw)
    _last_baggage = (raw, result)
    return result


def copied_attributes(ctx: Context | None = None) -> dict[str, str]:
    """The attributes the processor stamps on a span started in ``ctx`` (default: current)."""
    ctx = otel_context.get_current() if ctx is None else ctx
    kept = ctx.get(COPIED_ATTRIBUTES_KEY)
    cached = _last_baggage  # _baggage_attributes' cache hit, inline (once per span)
    if _BAGGAGE_KEY is not None and cached[0] is ctx.get(_BAGGAGE_KEY):
        from_baggage = cached[1]
    else:
        from_baggage = _baggage_attributes(ctx)
    if kept:
        if not from_baggage:
            return dict(kept)
        return {**kept, **from_baggage}
    return from_baggage


def context_without_baggage(
    ctx: Context | None = None, attributes: Mapping[str, str] | None = None
) -> Context:
    """``ctx`` with its baggage removed and the copied attributes kept under our key
    (``attributes``: ``copied_attributes(ctx)`` when the caller has them already)."""
    ctx = otel_context.get_current() if ctx is None else ctx
    if attributes is None:
        attributes = copied_attributes(ctx)
    ctx = otel_baggage.clear(ctx)
    return otel_context.set_value(COPIED_ATTRIBUTES_KEY, attributes, ctx)


def call_context(ctx: Context, attributes: Mapping[str, str], span: trace.Span) -> Context:
    """``trace.set_span_in_context(span, context_without_baggage(ctx, attributes))`` in one
    copy of the context instead of three (once per LLM call, on the hot path)."""
    if _BAGGAGE_KEY is None or _SPAN_KEY is None:  # pragma: no cover - another API version
        return trace.set_span_in_context(span, context_without_baggage(ctx, attributes))
    return Context({**ctx, _BAGGAGE_KEY: {}, COPIED_ATTRIBUTES_KEY: attributes, _SPAN_KEY: span})


def with_copied_attributes(attributes: Mapping[str, str], ctx: Context | None = None) -> Context:
    """``ctx`` with ``attributes`` added to the copied ones (used by ``llm_margin.task``)."""
    ctx = otel_context.get_current() if ctx is None else ctx
    kept = ctx.get(COPIED_ATTRIBUTES_KEY) or {}
    return otel_context.set_value(COPIED_ATTRIBUTES_KEY, {**kept, **attributes}, ctx)


class BaggageSpanProcessor(SpanProcessor):
    """Copies allowlisted baggage and the task context onto every span at start."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            scope = span.instrumentation_scope
            if scope is not None and scope.name == OWN_SCOPE:
                return  # our own spans carry the copied attributes from their start
            attributes = copied_attributes(parent_context)
            if attributes:
                span.set_attributes(attributes)
        except Exception:  # never break span creation
            from .instrumentation._common import record_internal_error

            record_internal_error("span_processor")

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_lock = threading.Lock()
_installed: weakref.WeakSet = weakref.WeakSet()
_global_done = False


def install_span_processor(tracer_provider: object | None = None) -> bool:
    """Add one ``BaggageSpanProcessor`` to ``tracer_provider`` (default: the global one).

    Safe to call many times: a provider gets the processor once. Returns whether the provider
    now has it (False for a provider that is not the SDK's, e.g. the no-op/proxy one)."""
    global _global_done
    provider = trace.get_tracer_provider() if tracer_provider is None else tracer_provider
    add = getattr(provider, "add_span_processor", None)
    if add is None:
        return False
    with _lock:
        if provider in _installed:
            if provider is trace.get_tracer_provider():
                _global_done = True
            return True
        add(BaggageSpanProcessor())
        _installed.add(provider)
    if provider is trace.get_tracer_provider():
        _global_done = True
    return True


def ensure_installed() -> None:
    """Install on the global provider if that has become an SDK provider since. Cheap."""
    if _global_done:
        return
    try:
        install_span_processor()
    except Exception:
        from .instrumentation._common import record_internal_error

        record_internal_error("install_span_processor")
