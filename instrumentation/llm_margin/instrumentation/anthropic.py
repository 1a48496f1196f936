"""Anthropic SDK instrumentation (anthropic >= 2): one CLIENT span per Messages call, priced by
the llm-margin processor.

Usage
-----
Automatic, under the launcher (entry point ``llm_margin_anthropic``)::

    opentelemetry-instrument python app.py

or by hand, after setting up an SDK ``TracerProvider``::

    from llm_margin.instrumentation.anthropic import AnthropicInstrumentor
    AnthropicInstrumentor().instrument()         # tracer_provider=... optional

Instrumented: ``messages.create`` (also ``stream=True``), ``messages.stream`` (the context
manager: the span starts when it is entered) and ``messages.parse``, sync and async; the same
under ``client.beta.messages``.

Usage tokens: ``gen_ai.usage.input_tokens`` is the TOTAL input (``input_tokens`` +
``cache_read_input_tokens`` + ``cache_creation_input_tokens``), cache reads and writes are
reported apart, and the 5-minute / 1-hour cache writes
(``llm_margin.usage.cache_write_5m.input_tokens`` / ``..._1h...``) when the response splits them.
Thinking tokens are reported as reasoning tokens. Streams take usage from ``message_start`` and
``message_delta``. Fast mode (billed at a premium per token): ``llm_margin.speed`` is ``fast`` or
``standard`` as the response's ``usage.speed`` says (a stream's last), else as the request's
``speed`` asked; left out for a call without one (any other value is ignored). Data residency:
``llm_margin.inference_geo`` is where inference ran (``global``, ``us``; US-only inference is
billed at a premium on newer models), from the response's ``usage.inference_geo``, else the
request's ``inference_geo``; left out when neither says.
Beta ``usage.iterations`` steps billed outside the top-level usage (context ``compaction``, on
the call's model; ``advisor_message``, on the advisor's model) are reported as
``llm_margin.sub_usage.*`` arrays, one element per step (a stream's from its final
``message_delta``), so the processor prices each at its own model.

Anthropic's own spans: anthropic 2.x emits an ``anthropic.messages.create`` span per call (unless
``ANTHROPIC_OPEN_TELEMETRY=false``) and propagates trace context itself. One call must have one
price (DESIGN 4.7), so while OUR wrapper runs a call, the SDK's span is not started (we make
``anthropic._base_client.start_api_call_span`` return None for that call only; calls we do not
wrap keep their native spans). This works whenever the client was built, unlike the environment
variable, which a client reads once at construction. Set ``LLM_MARGIN_ANTHROPIC_NATIVE_SPANS=keep``
to keep both (the processor then prices ours and skips the nested native one). Either way the
SDK's own propagation runs in our baggage-free context, so no baggage reaches Anthropic.

Configuration: see ``llm_margin.config``.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import partial
from typing import Any

from ..config import get_config
from . import _anthropic_extract as X
from ._common import (
    CURRENT_CALL,
    Endpoint,
    apply_budget,
    async_wrapper,
    record_internal_error,
    start_call,
    sync_wrapper,
)
from ._instrumentor import ProviderInstrumentor
from ._types import get
from .package import _instruments_anthropic

PROVIDER = "anthropic"


def _output_text(message: Any) -> Any:
    return [get(block, "text") for block in get(message, "content") or () if get(block, "text")]


MESSAGES = Endpoint(
    provider=PROVIDER,
    request_facts=X.messages_request_facts,
    prompt_chars=X.messages_prompt_chars,
    response_facts=X.message_facts,
    accumulator=X.MessageStreamAccumulator,
    output_text=_output_text,
    output_chars=X.message_output_chars,
)

_MESSAGES_MODULE = "anthropic.resources.messages.messages"
_BETA_MESSAGES_MODULE = "anthropic.resources.beta.messages.messages"
_SYNC_MANAGER_ATTR = "_MessageStreamManager__api_request"
_ASYNC_MANAGER_ATTR = "_AsyncMessageStreamManager__api_request"
_BETA_SYNC_MANAGER_ATTR = "_BetaMessageStreamManager__api_request"
_BETA_ASYNC_MANAGER_ATTR = "_BetaAsyncMessageStreamManager__api_request"


def _wrap_stream_manager(
    manager_attr: str, wrapped: Any, instance: Any, args: Any, kwargs: Any
) -> Any:
    """``messages.stream`` returns a manager that sends the request when entered: the call is
    instrumented then, by swapping the manager's request function for ours. The budget is
    applied here, before the manager exists: a blocked call never gets one, a degraded one is
    built with the cheaper model."""
    if CURRENT_CALL.get() is not None:
        return wrapped(*args, **kwargs)
    kwargs = apply_budget(kwargs)
    manager = wrapped(*args, **kwargs)
    try:
        original = getattr(manager, manager_attr)
        call_kwargs = {**kwargs, "stream": True}

        def api_request() -> Any:
            started = start_call(MESSAGES, instance, call_kwargs)
            if started is None:
                return original()
            call, _ = started
            tokens = call.enter()
            try:
                raw = original()
            except BaseException as exc:
                call.exit(tokens)
                call.finish_error(exc)
                raise
            call.exit(tokens)
            return call.finish_result(raw, is_async=False)

        setattr(manager, manager_attr, api_request)
    except Exception:
        record_internal_error("anthropic_stream_manager")
    return manager


def _wrap_async_stream_manager(
    manager_attr: str, wrapped: Any, instance: Any, args: Any, kwargs: Any
) -> Any:
    if CURRENT_CALL.get() is not None:
        return wrapped(*args, **kwargs)
    kwargs = apply_budget(kwargs)
    manager = wrapped(*args, **kwargs)
    try:
        original = getattr(manager, manager_attr)
        call_kwargs = {**kwargs, "stream": True}

        async def api_request() -> Any:
            started = start_call(MESSAGES, instance, call_kwargs)
            if started is None:
                return await original
            call, _ = started
            tokens = call.enter()
            try:
                raw = await original
            except BaseException as exc:
                call.exit(tokens)
                call.finish_error(exc)
                raise
            call.exit(tokens)
            return call.finish_result(raw, is_async=True)

        setattr(manager, manager_attr, api_request())
    except Exception:
        record_internal_error("anthropic_stream_manager")
    return manager


def _native_span_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """No native SDK span for a call that our wrapper is recording (one call, one price)."""
    if CURRENT_CALL.get() is not None and get_config().suppress_anthropic_native_spans:
        return None
    return wrapped(*args, **kwargs)


def _targets() -> list[tuple[str, str, Any]]:
    return [
        (_MESSAGES_MODULE, "Messages.create", sync_wrapper(MESSAGES)),
        (_MESSAGES_MODULE, "Messages.parse", sync_wrapper(MESSAGES)),
        (_MESSAGES_MODULE, "Messages.stream", partial(_wrap_stream_manager, _SYNC_MANAGER_ATTR)),
        (_MESSAGES_MODULE, "AsyncMessages.create", async_wrapper(MESSAGES)),
        (_MESSAGES_MODULE, "AsyncMessages.parse", async_wrapper(MESSAGES)),
        (
            _MESSAGES_MODULE,
            "AsyncMessages.stream",
            partial(_wrap_async_stream_manager, _ASYNC_MANAGER_ATTR),
        ),
        # the beta namespace: same API, same usage, its own classes
        (_BETA_MESSAGES_MODULE, "Messages.create", sync_wrapper(MESSAGES)),
        (_BETA_MESSAGES_MODULE, "Messages.parse", sync_wrapper(MESSAGES)),
        (
            _BETA_MESSAGES_MODULE,
            "Messages.stream",
            partial(_wrap_stream_manager, _BETA_SYNC_MANAGER_ATTR),
        ),
        (_BETA_MESSAGES_MODULE, "AsyncMessages.create", async_wrapper(MESSAGES)),
        (_BETA_MESSAGES_MODULE, "AsyncMessages.parse", async_wrapper(MESSAGES)),
        (
            _BETA_MESSAGES_MODULE,
            "AsyncMessages.stream",
            partial(_wrap_async_stream_manager, _BETA_ASYNC_MANAGER_ATTR),
        ),
        ("anthropic._base_client", "start_api_call_span", _native_span_wrapper),
    ]


class AnthropicInstrumentor(ProviderInstrumentor):
    """Instruments the Anthropic SDK. ``instrument(tracer_provider=...)``, ``uninstrument()``."""

    provider = "anthropic"
    targets = staticmethod(_targets)

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments_anthropic
