"""Shared machinery of the provider instrumentations: the per-call span (start, finish),
provider-from-host inference, the HTTP-attempt counter, the baggage-free call context and the
never-raise guard.

A wrapped SDK method runs in four beats: ``start_call`` (span started in the app's context, so
the span processor stamps the customer on it), the SDK call itself in a context WITHOUT baggage
(nothing customer-related can be propagated to the provider's host, whatever HTTP
instrumentation is on), then ``finish_result`` (or a stream proxy that finishes later), or
``finish_error`` and the SDK's exception re-raised unchanged.

Our own failures never reach the app: they are logged once per kind and counted
(``internal_error_count()``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import attributes as A
from .. import budget
from ..config import get_config
from ..span_processor import (
    OWN_SCOPE,
    call_context,
    context_without_baggage,
    copied_attributes,
    ensure_installed,
)
from ..task import TASK_STATE_KEY, TaskState
from ._flush import BackgroundFlusher
from ._types import (
    USAGE_ATTRIBUTES,
    RequestFacts,
    ResponseFacts,
    UsageTokens,
    estimate_tokens,
    sub_usage_attributes,
    usage_complete,
)

logger = logging.getLogger("llm_margin")

INSTRUMENTATION_NAME = OWN_SCOPE  # our tracer name, and llm_margin.instrumentation's value
STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_INVALID = "invalid_output"
USAGE_PROVIDER = "provider"
USAGE_ESTIMATED = "estimated"
_CONTENT_CAP = 16_384

# --- internal errors ----------------------------------------------------------------------------
_errors: Counter[str] = Counter()
_errors_lock = threading.Lock()


def record_internal_error(kind: str) -> None:
    """Count an internal failure; log it (with traceback) the first time per kind only. Call it
    from inside an ``except`` block. Never raises."""
    try:
        with _errors_lock:
            _errors[kind] += 1
            first = _errors[kind] == 1
        if first:
            logger.warning(
                "llm-margin instrumentation error (%s); the app is unaffected, further errors of "
                "this kind are counted, not logged",
                kind,
                exc_info=True,
            )
    except Exception:  # pragma: no cover - logging itself failed
        pass


def internal_error_count(kind: str | None = None) -> int:
    """How many internal errors were counted (of one kind, or all)."""
    with _errors_lock:
        return _errors[kind] if kind is not None else sum(_errors.values())


def reset_internal_errors() -> None:
    with _errors_lock:
        _errors.clear()


# --- tracer -------------------------------------------------------------------------------------
_tracer_provider: Any = None
_tracer: trace.Tracer | None = None


def set_tracer_provider(tracer_provider: Any) -> None:
    """The provider our spans go to (``instrument(tracer_provider=...)``; None: the global)."""
    global _tracer_provider, _tracer
    if tracer_provider is not None and tracer_provider is _tracer_provider and _tracer is not None:
        # instrumented again on the same provider: its tracer, which the SDK would hand out again
        # (~13 µs in instrument(), and the work slowed the next call about as much)
        return
    _tracer_provider = tracer_provider
    _tracer = None
    if tracer_provider is not None or not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider
    ):
        get_tracer()  # now rather than in the app's first call (a proxy's tracer: lazily)


# Whether our tracer's sampler may read the attributes given to ``start_span`` (see
# ``start_call``): true unless it is one of the SDK samplers known not to.
_sampler_reads_attributes = True


def get_tracer() -> trace.Tracer:
    global _tracer, _sampler_reads_attributes
    tracer = _tracer
    if tracer is None:
        from ..version import __version__

        tracer = trace.get_tracer(
            INSTRUMENTATION_NAME, __version__, tracer_provider=_tracer_provider
        )
        _sampler_reads_attributes = reads_attributes(getattr(tracer, "sampler", None))
        _tracer = tracer
    return tracer


def reads_attributes(sampler: Any, _depth: int = 0) -> bool:
    """Whether ``sampler`` may look at a span's start attributes: False only for the SDK's own
    samplers that decide on the trace id and the parent alone (``always_on``/``off``,
    ``traceidratio``, ``parentbased_*`` of those: the default is ``parentbased_always_on``),
    matched by exact type. Any other sampler (a subclass, a custom or rule-based one, a
    proxy tracer whose sampler is not known yet) may, so it gets them at ``start_span``."""
    try:
        from opentelemetry.sdk.trace import sampling as S
    except ImportError:  # pragma: no cover - API only: no SDK sampler to ask
        return True
    if _depth > 4 or sampler is None:
        return True
    kind = type(sampler)
    if kind in _blind_samplers(S, "StaticSampler", "TraceIdRatioBased", "_AlwaysOn", "_AlwaysOff"):
        return False
    if kind is getattr(S, "AlwaysRecordSampler", None):
        return reads_attributes(getattr(sampler, "_root", None), _depth + 1)
    parent_based = ("ParentBased", "ParentBasedTraceIdRatio", "_ParentBasedAlwaysOn",
                    "_ParentBasedAlwaysOff")  # fmt: skip
    if kind in _blind_samplers(S, *parent_based):
        delegates = ("_root", "_remote_parent_sampled", "_remote_parent_not_sampled",
                     "_local_parent_sampled", "_local_parent_not_sampled")  # fmt: skip
        return any(reads_attributes(getattr(sampler, d, None), _depth + 1) for d in delegates)
    return True


def _blind_samplers(module: Any, *names: str) -> tuple[type, ...]:
    return tuple(kind for kind in (getattr(module, name, None) for name in names) if kind)


def _our_provider() -> Any:
    """The provider our spans go to, resolved now (the global one may have been set since)."""
    return _tracer_provider if _tracer_provider is not None else trace.get_tracer_provider()


# Exports the stream-start record at once, off the app's thread (see _flush.py).
stream_start_flusher = BackgroundFlusher(_our_provider, on_error=record_internal_error)


# --- providers ----------------------------------------------------------------------------------
# Host (or parent domain) -> gen_ai.provider.name, for SDKs pointed elsewhere with base_url.
KNOWN_HOSTS: tuple[tuple[str, str], ...] = (
    ("openai.azure.com", "azure.ai.openai"),
    ("cognitiveservices.azure.com", "azure.ai.openai"),
    ("services.ai.azure.com", "azure.ai.inference"),
    ("api.openai.com", "openai"),
    ("api.anthropic.com", "anthropic"),
    ("deepseek.com", "deepseek"),
    ("groq.com", "groq"),
    ("together.xyz", "together"),
    ("together.ai", "together"),
    ("openrouter.ai", "openrouter"),
    ("mistral.ai", "mistral_ai"),
    ("x.ai", "x_ai"),
    ("fireworks.ai", "fireworks"),
    ("perplexity.ai", "perplexity"),
    ("cerebras.ai", "cerebras"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
)


def _suffix_match(host: str, suffix: str) -> bool:
    return host == suffix or host.endswith("." + suffix)


def provider_for_host(
    host: str | None, port: int | None, default: str, overrides: Mapping[str, str] | None = None
) -> str:
    """The provider behind ``host``: configured overrides (``host:port``, ``host``,
    ``*.suffix``) first, then the built-in table, else ``default`` (the SDK's own provider; so
    localhost and 127.0.0.1, where the simulator or a dev proxy runs, count as that SDK)."""
    if not host:
        return default
    host = host.lower().rstrip(".")
    if overrides:
        if port is not None and f"{host}:{port}" in overrides:
            return overrides[f"{host}:{port}"]
        if host in overrides:
            return overrides[host]
        for pattern, provider in overrides.items():
            if pattern.startswith("*.") and _suffix_match(host, pattern[2:]):
                return provider
    for suffix, provider in KNOWN_HOSTS:
        if _suffix_match(host, suffix):
            return provider
    return default


_server_cache: dict[tuple[str, str], tuple[str | None, int | None, str]] = {}


_last_server: tuple[object, str, tuple[str | None, int | None, str]] = (
    object(),
    "",
    (None, None, ""),
)


def server_info(instance: Any, default: str) -> tuple[str | None, int | None, str]:
    """(host, port, provider) of the SDK client behind a resource instance."""
    global _last_server
    client = getattr(instance, "_client", None)
    # the SDKs keep the URL in ``_base_url`` behind a ``base_url`` property: read it directly
    base_url = getattr(client, "_base_url", None)
    if base_url is None:
        base_url = getattr(client, "base_url", None)
    if base_url is None:
        return None, None, default
    last = _last_server
    if last[0] is base_url and last[1] == default:  # same client as last time: no str()
        return last[2]
    key = (str(base_url), default)
    info = _server_cache.get(key)
    if info is None:
        host = getattr(base_url, "host", None) or None
        port = getattr(base_url, "port", None)
        if port is None:
            scheme = getattr(base_url, "scheme", "https")
            port = 80 if scheme == "http" else 443
        info = (host, port, provider_for_host(host, port, default, get_config().provider_hosts))
        if len(_server_cache) > 256:
            _server_cache.clear()
        _server_cache[key] = info
    _last_server = (base_url, default, info)
    return info


def url_server_info(base_url: str, default: str) -> tuple[str | None, int | None, str]:
    """(host, port, provider) of a base URL string (SDKs that keep the URL as text)."""
    key = (base_url, default)
    info = _server_cache.get(key)
    if info is None:
        parts = urlsplit(base_url)
        host = parts.hostname
        try:
            port = parts.port or (80 if parts.scheme == "http" else 443)
        except ValueError:  # a port that is not a number
            port = None
        info = (host, port, provider_for_host(host, port, default, get_config().provider_hosts))
        if len(_server_cache) > 256:
            _server_cache.clear()
        _server_cache[key] = info
    return info


def reset_server_cache() -> None:
    global _last_server
    _server_cache.clear()
    _last_server = (object(), "", (None, None, ""))


# --- attributes fast path -------------------------------------------------------------------
try:  # the SDK's attribute container (``span._attributes`` of an SDK span)
    from opentelemetry.attributes import BoundedAttributes as _BoundedAttributes
except ImportError:  # pragma: no cover
    _BoundedAttributes = None


def set_clean_attributes(span: Any, attributes: Mapping[str, Any]) -> None:
    """``span.set_attributes(attributes)`` for values that are valid attribute values already
    (str, bool, int, float, tuples of those; every value our instrumentation sets is one).

    The SDK validates each value again (about 1 µs per attribute, a third of our cost per call);
    on an SDK span with the default limits (no value length cap, room left) this writes straight
    into the span's attribute dict, under the span's locks, instead. Anything else (another span
    class, ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` set, a full or ended span, a future SDK whose
    internals differ) takes the public path, so the result is the same either way
    (``tests/unit/test_instr_fast_attributes.py`` checks the parity)."""
    bounded = getattr(span, "_attributes", None)
    if type(bounded) is _BoundedAttributes:
        try:
            if bounded.max_value_len is None and not bounded._immutable:
                maxlen, store = bounded.maxlen, bounded._dict
                with span._lock, bounded._lock:
                    if span._end_time is None and (
                        maxlen is None or len(store) + len(attributes) <= maxlen
                    ):
                        store.update(attributes)
                        return
        except AttributeError:  # pragma: no cover - another SDK version
            pass
    span.set_attributes(attributes)


# --- endpoints ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    """How to read one SDK method: request facts, prompt size, response facts, stream
    accumulator, and an optional request rewrite (``stream_options.include_usage``)."""

    provider: str
    request_facts: Callable[[Mapping[str, Any]], RequestFacts]
    prompt_chars: Callable[[Mapping[str, Any]], int]
    response_facts: Callable[[Any, RequestFacts], ResponseFacts]
    accumulator: Callable[[RequestFacts], Any] | None = None
    prepare: (
        Callable[[dict[str, Any], RequestFacts], tuple[dict[str, Any], RequestFacts]] | None
    ) = None
    output_text: Callable[[Any], Any] | None = None
    # characters of a response's answer: its output estimate when it carries no usage
    output_chars: Callable[[Any], int] | None = None
    # (host, port, provider) of the client behind the SDK resource, for SDKs whose client
    # does not keep an httpx-style ``_client._base_url`` (default: ``server_info``)
    server: Callable[[Any], tuple[str | None, int | None, str]] | None = None
    # The SDK method returns a generator that sends its request when first iterated
    # (google-genai): each step of the stream then runs in the call's context.
    lazy_stream: bool = False
    # the HTTP status an SDK exception carries (default: ``status_code``, as openai's and
    # anthropic's name it; google-genai's ``APIError`` names it ``code``)
    error_status: Callable[[BaseException], int | None] | None = None


# The call being made in this context (by our wrapper), for the HTTP hooks.
CURRENT_CALL: ContextVar[LLMCall | None] = ContextVar("llm_margin_current_call", default=None)


def _dump(value: Any) -> str:
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except Exception:
        text = str(value)
    return text[:_CONTENT_CAP]


class LLMCall:
    """One SDK call in flight: its span and what is needed to finish it exactly once."""

    __slots__ = ("endpoint", "facts", "kwargs", "span", "parent_ctx", "route", "task_state",
                 "start_attributes", "copied", "call_id", "http_attempts", "last_response",
                 "_done", "_lock")  # fmt: skip

    def __init__(
        self,
        endpoint: Endpoint,
        facts: RequestFacts,
        kwargs: dict[str, Any],
        span: Any,
        parent_ctx: Any,
        route: str,
        task_state: TaskState | None,
        start_attributes: dict[str, Any],
        copied: dict[str, str] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.facts = facts
        self.kwargs = kwargs
        self.span = span
        self.parent_ctx = parent_ctx
        self.route = route
        self.task_state = task_state
        # the attributes known at the start, written on the span with those of the end (the
        # provisional stream span repeats them)
        self.start_attributes = start_attributes
        self.copied = copied  # customer attributes copied from the app's context
        # ``llm_margin.call_id``: set on the span with the end attributes (one call less)
        self.call_id = format(span.get_span_context().span_id, "016x")
        self.http_attempts = 0
        self.last_response: Any = None  # the SDK's last HTTP response in this call (hooks)
        self._done = False
        self._lock = threading.Lock()

    # --- context ------------------------------------------------------------------------------
    def enter(self) -> tuple[Any, Any] | None:
        """Attach the call context: our span current, baggage removed (kept for the span
        processor under our own key), this call visible to the HTTP hooks."""
        try:
            ctx = call_context(self.parent_ctx, self.copied, self.span)
            return otel_context.attach(ctx), CURRENT_CALL.set(self)
        except Exception:
            record_internal_error("call_enter")
            return None

    def exit(self, tokens: tuple[Any, Any] | None) -> None:
        if tokens is None:
            return
        try:
            CURRENT_CALL.reset(tokens[1])
            otel_context.detach(tokens[0])
        except Exception:
            record_internal_error("call_exit")

    def _claim(self) -> bool:
        with self._lock:
            if self._done:
                return False
            self._done = True
            return True

    # --- finishing ----------------------------------------------------------------------------
    def finish_error(self, exc: BaseException) -> None:
        """The SDK raised: status error, ``error.type`` = exception class. Never raises.

        Raised after the provider answered (``.parse()`` of an answer that is not valid JSON
        for the app's model: a ``ValueError`` such as pydantic's ``ValidationError``), the call
        was billed: it is priced from the answer's usage, as ``invalid_output`` for a
        ``ValueError``, else as an error."""
        try:
            body = answered_body(self.last_response)
            if body is not None:
                if not self._claim():
                    return
                facts = self.endpoint.response_facts(body, self.facts)
                invalid = isinstance(exc, ValueError)
                complete = usage_complete(facts.usage)
                self._finish(
                    facts._replace(invalid_output=True) if invalid else facts,
                    complete_usage=complete,
                    output_estimate=None if complete else self._output_estimate(body),
                    error=None if invalid else exc,
                )
                self.span.end()
                return
            if not self._claim():
                return
            error_type = type(exc).__qualname__
            span = self.span
            attributes = self.start_attributes
            attributes[A.CALL_ID] = self.call_id
            attributes[A.CALL_STATUS] = STATUS_ERROR
            attributes[A.ERROR_TYPE] = error_type
            attributes[A.SDK_RETRIES] = max(0, self.http_attempts - 1)
            status_code = (self.endpoint.error_status or _status_code)(exc)
            if isinstance(status_code, int):
                attributes[A.HTTP_RESPONSE_STATUS_CODE] = status_code
            set_clean_attributes(span, attributes)
            span.set_status(Status(StatusCode.ERROR, error_type))
            self._end_attempt(failed=True)
            span.end()
        except Exception:
            record_internal_error("finish_error")
            # as finish_result does: an unended span would lose the call altogether
            self._end_quietly(type(exc).__qualname__)

    def finish_result(self, result: Any, is_async: bool) -> Any:
        """The SDK returned: finish the span, or hand a stream to a proxy. Returns what the app
        gets (the result itself, or the proxy around a stream). Never raises."""
        try:
            # is_raw_response(result), inline: with_raw_response / with_streaming_response
            if "http_response" in getattr(result, "__dict__", ()) and hasattr(
                type(result), "parse"
            ):
                body = None if self.facts.stream else read_body(result)
                if body is None:
                    from ._raw import RawResponseProxy

                    return RawResponseProxy(result, self, is_async)
                self.finish_result(body, is_async)
                return result
            if self.facts.stream and self.endpoint.accumulator is not None:
                proxy = self._stream_proxy(result, is_async)
                if proxy is not None:
                    return proxy
            if not self._claim():
                return result
            facts = self.endpoint.response_facts(result, self.facts)
            usage = facts.usage  # usage_complete(usage), inline
            complete = (
                usage is not None
                and usage.input_tokens is not None
                and usage.output_tokens is not None
            )
            self._finish(
                facts,
                complete_usage=complete,
                output_estimate=None if complete else self._output_estimate(result),
            )
            if get_config().capture_content and self.endpoint.output_text is not None:
                self.span.set_attribute(
                    A.GEN_AI_OUTPUT_MESSAGES, _dump(self.endpoint.output_text(result))
                )
            self.span.end()
        except Exception:
            record_internal_error("finish_result")
            self._end_quietly()
        return result

    def finish_unparsed(self, body: Any | None) -> None:
        """A raw response closed without the app parsing it: priced from its JSON body when
        that was read, else estimated. Never raises."""
        try:
            if body is not None:
                self.finish_result(body, is_async=False)
                return
            if not self._claim():
                return
            self._finish(ResponseFacts(), complete_usage=False, output_estimate=None)
            self.span.end()
        except Exception:
            record_internal_error("finish_unparsed")
            self._end_quietly()

    def _stream_proxy(self, result: Any, is_async: bool) -> Any:
        from ._streams import AsyncStreamProxy, LazySyncStreamProxy, SyncStreamProxy

        kind = type(result)
        if is_async and hasattr(kind, "__anext__"):
            proxy_cls = AsyncStreamProxy
        elif not is_async and hasattr(kind, "__next__"):
            proxy_cls = LazySyncStreamProxy if self.endpoint.lazy_stream else SyncStreamProxy
        else:
            return None  # a raw response wrapper: finished like a plain result
        accumulator = self.endpoint.accumulator(self.facts)  # type: ignore[misc]
        self.emit_provisional()
        return proxy_cls(result, self, accumulator)

    def emit_provisional(self) -> None:
        """A short span marking 'stream started' with estimated input, so that a crash
        mid-stream still leaves a cost; the final span (same call id) replaces it. Flushed in
        the background at once: a batch processor would otherwise hold it for seconds."""
        try:
            attributes = dict(self.start_attributes)
            attributes.update(
                {
                    A.CALL_ID: self.call_id,
                    A.PROVISIONAL: True,
                    A.USAGE_SOURCE: USAGE_ESTIMATED,
                    A.GEN_AI_USAGE_INPUT_TOKENS: self.estimated_input_tokens(),
                    A.GEN_AI_USAGE_OUTPUT_TOKENS: 0,
                    A.CALL_STATUS: STATUS_OK,
                }
            )
            ctx = trace.set_span_in_context(self.span, self.parent_ctx)
            span = get_tracer().start_span(
                f"{self.facts.operation} {self.facts.model}",
                context=ctx,
                kind=SpanKind.CLIENT,
                attributes=attributes,
                # The call's own start: a stored call's versions share `ts`. Started at the
                # first byte instead, a stream straddling an hour (or a report's edge) would be
                # counted twice, once as this estimate in the later hour.
                start_time=getattr(self.span, "start_time", None),
            )
            span.end()
            stream_start_flusher.request_flush()  # the record leaves the process now
        except Exception:
            record_internal_error("provisional")

    def _output_estimate(self, response: Any) -> int | None:
        """Output tokens estimated from a response's answer (no usage reported)."""
        chars = self.endpoint.output_chars
        if chars is None:
            return None
        try:
            return estimate_tokens(chars(response))
        except Exception:
            record_internal_error("estimate_output")
            return None

    def estimated_input_tokens(self) -> int:
        try:
            return max(1, estimate_tokens(self.endpoint.prompt_chars(self.kwargs)))
        except Exception:
            record_internal_error("estimate_input")
            return 1

    def finish_stream(self, accumulator: Any, exc: BaseException | None, exhausted: bool) -> None:
        """End of a stream: exhausted, closed early, broken (``exc``) or garbage-collected."""
        try:
            if not self._claim():
                return
            facts = accumulator.facts()
            usage = facts.usage
            complete = usage_complete(usage) and _usage_complete(accumulator)
            if not exhausted and exc is None and not complete:
                self.span.set_attribute(A.STREAM_CLOSED_EARLY, True)
            if exc is not None:
                self._finish(
                    ResponseFacts(
                        model=facts.model,
                        response_id=facts.response_id,
                        usage=usage,
                        finish_reasons=facts.finish_reasons,
                        # a broken stream is billed at the tier and speed it ran at, which
                        # may not be the ones asked for
                        service_tier=facts.service_tier,
                        speed=facts.speed,
                        inference_geo=facts.inference_geo,
                        traffic_type=facts.traffic_type,
                    ),
                    complete_usage=False,
                    output_estimate=accumulator.estimated_output_tokens(),
                    error=exc,
                )
            else:
                if not exhausted and facts.invalid_output:
                    # a JSON answer cut short by the app is not the model's fault
                    facts = facts._replace(invalid_output=False)
                self._finish(
                    facts,
                    complete_usage=complete,
                    output_estimate=None if complete else accumulator.estimated_output_tokens(),
                )
            self.span.end()
        except Exception:
            record_internal_error("finish_stream")
            self._end_quietly()

    def _finish(
        self,
        facts: ResponseFacts,
        complete_usage: bool,
        output_estimate: int | None,
        error: BaseException | None = None,
    ) -> None:
        span = self.span
        (model, response_id, usage, invalid_output, finish_reasons, service_tier, speed,
         inference_geo, error_type, sub_usage, traffic_type) = facts  # fmt: skip
        # the start attributes and these: written once (this runs once per call)
        attributes = self.start_attributes
        attributes[A.CALL_ID] = self.call_id
        attributes[A.SDK_RETRIES] = self.http_attempts - 1 if self.http_attempts > 1 else 0
        if model:
            attributes[A.GEN_AI_RESPONSE_MODEL] = model
        if response_id:
            attributes[A.GEN_AI_RESPONSE_ID] = response_id
        if finish_reasons and finish_reasons != ("stop",):
            # only the unusual ones: every attribute costs time on the hot path
            attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(finish_reasons)
        if service_tier:
            attributes[A.GEN_AI_RESPONSE_SERVICE_TIER] = service_tier
        if speed:  # the speed billed, over the one asked for (set at the start)
            attributes[A.SPEED] = speed
        if inference_geo:  # where it ran, over where it was asked to (set at the start)
            attributes[A.INFERENCE_GEO] = inference_geo
        if traffic_type:
            attributes[A.TRAFFIC_TYPE] = traffic_type
        if complete_usage and usage_complete(usage):
            for name, value in zip(USAGE_ATTRIBUTES, usage, strict=True):  # absent: left out
                if value is not None:
                    attributes[name] = value
            attributes[A.USAGE_SOURCE] = USAGE_PROVIDER
        else:
            usage = usage or UsageTokens()
            attributes.update(usage.attributes())
            if usage.input_tokens is None:
                attributes[A.GEN_AI_USAGE_INPUT_TOKENS] = self.estimated_input_tokens()
            estimate = output_estimate or 0
            attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] = max(usage.output_tokens or 0, estimate)
            attributes[A.USAGE_SOURCE] = USAGE_ESTIMATED
        if sub_usage:  # provider counts even when the top-level usage is estimated
            attributes.update(sub_usage_attributes(sub_usage))
        failed = True
        if error is not None:
            error_type = type(error).__qualname__
            attributes[A.CALL_STATUS] = STATUS_ERROR
            attributes[A.ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, error_type))
        elif error_type:
            attributes[A.CALL_STATUS] = STATUS_ERROR
            attributes[A.ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, error_type))
        elif invalid_output:
            attributes[A.CALL_STATUS] = STATUS_INVALID
            attributes[A.ERROR_TYPE] = STATUS_INVALID
        else:
            attributes[A.CALL_STATUS] = STATUS_OK
            failed = False
        set_clean_attributes(span, attributes)
        if self.task_state is not None:
            self.task_state.end_attempt(self.route, failed)

    def _end_attempt(self, failed: bool) -> None:
        if self.task_state is not None:
            self.task_state.end_attempt(self.route, failed)

    def _end_quietly(self, error_type: str | None = None) -> None:
        """Ends the span, if it is not ended yet, with what the start knew (and the SDK's error
        class when the call failed), after an internal error of ours."""
        try:
            self._done = True
            if not self.span.is_recording():  # ended already (or never recorded)
                return
            attributes = dict(self.start_attributes)
            attributes[A.CALL_ID] = self.call_id
            if error_type is not None:
                attributes[A.CALL_STATUS] = STATUS_ERROR
                attributes[A.ERROR_TYPE] = error_type
                self.span.set_status(Status(StatusCode.ERROR, error_type))
            self.span.set_attributes(attributes)
            self.span.end()
        except Exception:
            pass


def _status_code(exc: BaseException) -> int | None:
    """``status_code`` of an openai or anthropic ``APIStatusError``."""
    status_code = getattr(exc, "status_code", None)
    return status_code if isinstance(status_code, int) else None


def is_raw_response(result: Any) -> bool:
    """Whether ``result`` is an SDK response wrapper (``with_raw_response`` /
    ``with_streaming_response``) rather than a parsed model or a stream. Cheap: a dict lookup."""
    return "http_response" in getattr(result, "__dict__", ()) and hasattr(type(result), "parse")


def answered_body(response: Any) -> dict[str, Any] | None:
    """The JSON object a provider answered with (2xx, body read): what it billed for. None for
    anything else (no response, an HTTP error, a stream, a body that is not a JSON object)."""
    try:
        if response is None or not 200 <= response.status_code < 300:
            return None
        body = json.loads(response.content)  # ``content`` raises while unread (streams)
    except Exception:
        return None
    return body if isinstance(body, dict) else None


def read_body(raw: Any) -> Any | None:
    """The JSON body of a raw response whose body has been read; None when it has not (a
    streamed response) or is not JSON (server-sent events)."""
    try:
        return json.loads(raw.http_response.content)  # ``content`` raises while unread
    except Exception:
        return None


def _usage_complete(accumulator: Any) -> bool:
    check = getattr(accumulator, "usage_complete", None)
    return bool(check()) if check is not None else True


def start_call(
    endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]
) -> tuple[LLMCall, dict[str, Any]] | None:
    """Begin one call: its span in the current (app) context. None when something of ours
    failed (the call then runs uninstrumented).

    Hot path: the attributes a sampler may use (GenAI semconv: operation, provider, request
    model, server) go to ``start_span`` when the sampler may read them (not the SDK's default
    ``parentbased_always_on``, which decides on the parent and trace id alone, where the SDK
    would only validate each value once more). Every attribute of the call, these included,
    is written once, with the attributes of the end, in one ``set_clean_attributes``
    (``LLMCall.start_attributes``; the span processor skips our own spans)."""
    try:
        if _tracer_provider is None:  # the global provider may have been set since
            ensure_installed()
        facts = endpoint.request_facts(kwargs)
        if endpoint.prepare is not None:
            kwargs, facts = endpoint.prepare(kwargs, facts)
        if endpoint.server is not None:
            host, port, provider = endpoint.server(instance)
        else:
            last = _last_server  # server_info's "same client as last time", inline
            client = getattr(instance, "_client", None)
            if last[0] is getattr(client, "_base_url", None) and last[1] == endpoint.provider:
                host, port, provider = last[2]
            else:
                host, port, provider = server_info(instance, endpoint.provider)
        operation, model = facts.operation, facts.model
        route = f"{provider}/{model}"
        parent_ctx = otel_context.get_current()
        task_state = parent_ctx.get(TASK_STATE_KEY)
        if task_state is None:
            attempt, kind = 1, "first"
        else:
            attempt, kind = task_state.begin_attempt(route)
        attributes: dict[str, Any] = {
            A.GEN_AI_OPERATION_NAME: operation,
            A.GEN_AI_PROVIDER_NAME: provider,
            A.GEN_AI_REQUEST_MODEL: model,
        }
        if host:
            attributes[A.SERVER_ADDRESS] = host
        if port is not None:
            attributes[A.SERVER_PORT] = port
        if facts.service_tier:
            attributes[A.GEN_AI_REQUEST_SERVICE_TIER] = facts.service_tier
        if facts.json_content:
            attributes[A.GEN_AI_OUTPUT_TYPE] = "json"
        tracer = _tracer or get_tracer()
        span = tracer.start_span(
            f"{operation} {model}",
            context=parent_ctx,
            kind=SpanKind.CLIENT,
            attributes=dict(attributes) if _sampler_reads_attributes else None,
        )
        attributes[A.STREAM] = facts.stream
        attributes[A.ROUTE] = route
        attributes[A.ATTEMPT] = attempt
        attributes[A.ATTEMPT_KIND] = kind
        attributes[A.INSTRUMENTATION] = INSTRUMENTATION_NAME
        if facts.speed:
            attributes[A.SPEED] = facts.speed
        if facts.inference_geo:
            attributes[A.INFERENCE_GEO] = facts.inference_geo
        if get_config().capture_content:
            content = kwargs.get("messages", kwargs.get("input", kwargs.get("contents")))
            if content is not None:
                attributes[A.GEN_AI_INPUT_MESSAGES] = _dump(content)
        copied = copied_attributes(parent_ctx)
        if copied:
            attributes.update(copied)
        return LLMCall(
            endpoint, facts, kwargs, span, parent_ctx, route, task_state, attributes, copied
        ), kwargs
    except Exception:
        record_internal_error("start_call")
        return None


# --- budget enforcement (off unless configured: llm_margin.budget) -----------------------------
def _enforced_model(kwargs: dict[str, Any]) -> str | None:
    """The request's model when budgets are enforced and it names one, else None."""
    if budget.enforcement() is None:
        return None
    model = kwargs.get("model")
    return model if isinstance(model, str) else None


def apply_budget(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The request's arguments with the model the customer's budget decision allows (a cheaper
    one over a soft cap); raises ``BudgetExceeded`` over a hard cap, before the provider is
    called. Any other failure of ours lets the call through unchanged (counted)."""
    try:
        model = _enforced_model(kwargs)
        if model is None:
            return kwargs
        chosen = budget.before_provider_call(model)
    except budget.BudgetExceeded:
        raise
    except Exception:
        record_internal_error("budget")
        return kwargs
    return kwargs if chosen == model else {**kwargs, "model": chosen}


async def apply_budget_async(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``apply_budget`` for async SDK methods: a decision not cached is awaited on a worker
    thread, so an app's other requests are not stalled while the processor answers."""
    try:
        model = _enforced_model(kwargs)
        if model is None:
            return kwargs
        chosen = await budget.before_provider_call_async(model)
    except budget.BudgetExceeded:
        raise
    except Exception:
        record_internal_error("budget")
        return kwargs
    return kwargs if chosen == model else {**kwargs, "model": chosen}


# --- wrappers -----------------------------------------------------------------------------------
def sync_wrapper(endpoint: Endpoint) -> Callable[..., Any]:
    """A wrapt wrapper for a synchronous SDK method."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        if CURRENT_CALL.get() is not None:  # an SDK helper calling another wrapped method
            return wrapped(*args, **kwargs)
        if budget._client is not None or not budget._configured:  # else: enforcement off
            kwargs = apply_budget(kwargs)
        started = start_call(endpoint, instance, kwargs)
        if started is None:
            return wrapped(*args, **kwargs)
        call, kwargs = started
        tokens = call.enter()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.exit(tokens)
            call.finish_error(exc)
            raise
        call.exit(tokens)
        return call.finish_result(result, is_async=False)

    return wrapper


def async_wrapper(endpoint: Endpoint) -> Callable[..., Any]:
    """A wrapt wrapper for an ``async def`` SDK method."""

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        if CURRENT_CALL.get() is not None:
            return await wrapped(*args, **kwargs)
        kwargs = await apply_budget_async(kwargs)
        started = start_call(endpoint, instance, kwargs)
        if started is None:
            return await wrapped(*args, **kwargs)
        call, kwargs = started
        tokens = call.enter()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.exit(tokens)
            call.finish_error(exc)
            raise
        call.exit(tokens)
        return call.finish_result(result, is_async=True)

    return wrapper


# --- HTTP hooks (shared by the SDKs: openai, anthropic and google-genai send through httpx2) ---
def _observe_request(call: LLMCall, args: Any, kwargs: Any) -> None:
    try:
        call.http_attempts += 1
        request = args[0] if args else kwargs.get("request")
        headers = getattr(request, "headers", None)
        if headers is not None and "baggage" in headers:
            del headers["baggage"]
    except Exception:
        record_internal_error("http_hook")


def _is_provider_sdk_request(headers: Any) -> bool:
    """Whether a request comes from a provider SDK we instrument: openai's and anthropic's
    carry ``x-stainless-lang``, google-genai's ``x-goog-api-client: google-genai-sdk/...``."""
    return "x-stainless-lang" in headers or "google-genai-sdk" in headers.get(
        "x-goog-api-client", ""
    )


def _private_sdk_request(args: Any, kwargs: Any) -> Any | None:
    """For a provider SDK's request made outside a call we record (Anthropic beta Messages,
    model listing, files, ...): drop a ``baggage`` header the SDK's own propagation added, and
    return a token of the baggage-free context to send it in (HTTP instrumentation injects
    headers further down), or None when there is nothing to hide. Never raises."""
    try:
        request = args[0] if args else kwargs.get("request")
        headers = getattr(request, "headers", None)
        if headers is None or not _is_provider_sdk_request(headers):
            return None
        if "baggage" in headers:
            del headers["baggage"]
        ctx = otel_context.get_current()
        if not otel_baggage.get_all(ctx):
            return None
        return otel_context.attach(context_without_baggage(ctx))
    except Exception:
        record_internal_error("http_hook")
        return None


def _send_wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    call = CURRENT_CALL.get()
    if call is not None:
        _observe_request(call, args, kwargs)
        call.last_response = response = wrapped(*args, **kwargs)
        return response
    token = _private_sdk_request(args, kwargs)
    if token is None:
        return wrapped(*args, **kwargs)
    try:
        return wrapped(*args, **kwargs)
    finally:
        otel_context.detach(token)


async def _async_send_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
) -> Any:
    call = CURRENT_CALL.get()
    if call is not None:
        _observe_request(call, args, kwargs)
        call.last_response = response = await wrapped(*args, **kwargs)
        return response
    token = _private_sdk_request(args, kwargs)
    if token is None:
        return await wrapped(*args, **kwargs)
    try:
        return await wrapped(*args, **kwargs)
    finally:
        otel_context.detach(token)


_HTTP_TARGETS = (
    ("httpx2", "Client.send", _send_wrapper),
    ("httpx2", "AsyncClient.send", _async_send_wrapper),
)
_http_users = 0
_http_lock = threading.Lock()


def acquire_http_hooks() -> None:
    """Wrap ``httpx2.Client.send`` / ``AsyncClient.send`` (once, however many instrumentors)."""
    global _http_users
    from wrapt import wrap_function_wrapper

    with _http_lock:
        _http_users += 1
        if _http_users == 1:
            for module, name, wrapper in _HTTP_TARGETS:
                try:
                    wrap_function_wrapper(module, name, wrapper)
                except Exception:
                    record_internal_error("wrap_httpx2")


def release_http_hooks() -> None:
    global _http_users
    with _http_lock:
        if _http_users == 0:
            return
        _http_users -= 1
        if _http_users == 0:
            for module, name, _ in _HTTP_TARGETS:
                unwrap(module, name)


# --- wrapping helpers ---------------------------------------------------------------------------
def unwrap(module: str, name: str) -> None:
    """Undo ``wrap_function_wrapper(module, name, ...)``; quiet when it is not wrapped."""
    try:
        import importlib

        obj: Any = importlib.import_module(module)
        *path, attr = name.split(".")
        for part in path:
            obj = getattr(obj, part)
        current = obj.__dict__.get(attr) if isinstance(obj, type) else getattr(obj, attr, None)
        original = getattr(current, "__wrapped__", None)
        if original is not None and hasattr(current, "_self_wrapper"):
            setattr(obj, attr, original)
    except Exception:
        record_internal_error("unwrap")


def wrap_all(targets: list[tuple[str, str, Callable[..., Any]]]) -> list[tuple[str, str]]:
    """Wrap each (module, "Class.method", wrapper); skip (and log once) what does not exist in
    the installed SDK version. Returns what was wrapped, for ``unwrap_all``."""
    from wrapt import wrap_function_wrapper

    done: list[tuple[str, str]] = []
    for module, name, wrapper in targets:
        try:
            wrap_function_wrapper(module, name, wrapper)
            done.append((module, name))
        except (AttributeError, ImportError):
            logger.debug("llm-margin: %s.%s not present in this SDK version", module, name)
        except Exception:
            record_internal_error("wrap")
    return done


def unwrap_all(done: list[tuple[str, str]]) -> None:
    for module, name in done:
        unwrap(module, name)
