"""Caller -> customer attribution for apps that have no gateway in front of them.

A gateway normally authenticates the caller, drops any ``baggage`` header the client sent and
sets its own (``collector-config/gateway/``). Without one, wrap the app in one of these
middlewares: each request's client-sent ``baggage`` is removed, the app's own function says who
the caller is, and its answer becomes the request's baggage, both in the current context and as
the request's ``baggage`` header (so a server instrumentation that extracts from the request
after this middleware sees the caller's baggage and nothing else). llm-margin's
instrumentation copies the allowlisted keys (``customer.id``, ``workspace.id``, ``plan``, ...)
onto every LLM span of the request.

Usage
-----
WSGI (Flask, Django, any WSGI app)::

    from llm_margin.middleware import WsgiBaggageMiddleware

    def caller(environ):  # your authentication: API key -> customer
        account = accounts.by_api_key(environ.get("HTTP_X_API_KEY", ""))
        if account is None:
            return None  # anonymous: no customer baggage (calls count as "(unattributed)")
        return {"customer.id": account.customer_id, "plan": account.plan}

    app = WsgiBaggageMiddleware(app, caller)

ASGI (Starlette, FastAPI, Django ASGI); the function may be ``async``::

    from llm_margin.middleware import AsgiBaggageMiddleware

    async def caller(scope):
        key = dict(scope["headers"]).get(b"x-api-key", b"").decode()
        ...

    app = AsgiBaggageMiddleware(app, caller)

Put it OUTSIDE (wrapping) the OpenTelemetry server middleware, e.g. for Flask under
``opentelemetry-instrument``: ``app.wsgi_app = WsgiBaggageMiddleware(app.wsgi_app, caller)``. The
client's header is then gone before OpenTelemetry extracts the request's context, and the
server span carries the caller's identity too. Inside also protects every LLM span (the context
is replaced, never merged, before the app runs), but the server span, started before this
middleware ran, keeps whatever baggage the client sent: harmless for billing (only LLM and task
spans are priced), misleading in a tracing backend.

API
---
``WsgiBaggageMiddleware(app, resolve)`` and ``AsgiBaggageMiddleware(app, resolve)``: ``resolve``
receives the WSGI ``environ`` / the ASGI ``scope`` (with the client's baggage already removed)
and returns a mapping of baggage entries, or ``None`` for an anonymous caller. Keys and values
must be non-empty strings; others are skipped. If ``resolve`` raises, the request fails with
that exception (an authentication bug must not silently bill nobody).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context

Entries = Mapping[str, str] | None
WsgiResolver = Callable[[dict[str, Any]], Entries]
AsgiResolver = Callable[[dict[str, Any]], "Entries | Awaitable[Entries]"]

# Header names as the two interfaces spell them.
_WSGI_KEY = "HTTP_BAGGAGE"
_ASGI_NAME = b"baggage"
_PROPAGATOR = W3CBaggagePropagator()


def caller_context(entries: Entries, parent: Context | None = None) -> Context:
    """``parent`` (default: the current context) with its baggage replaced by ``entries``."""
    ctx = otel_baggage.clear(parent if parent is not None else otel_context.get_current())
    for key, value in (entries or {}).items():
        if isinstance(key, str) and key and isinstance(value, str) and value:
            ctx = otel_baggage.set_baggage(key, value, ctx)
    return ctx


def baggage_header(ctx: Context) -> str:
    """The W3C ``baggage`` header value for the baggage of ``ctx`` ("" when it has none)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=ctx)
    return carrier.get("baggage", "")


def strip_wsgi_baggage(environ: dict[str, Any]) -> dict[str, Any]:
    """The environ without the client's ``baggage`` header (WSGI joins repeats into one key)."""
    environ.pop(_WSGI_KEY, None)
    return environ


def strip_asgi_baggage(scope: dict[str, Any]) -> dict[str, Any]:
    """A copy of the scope whose headers hold no ``baggage`` entry, whatever its case."""
    headers = scope.get("headers") or ()
    kept = [(name, value) for name, value in headers if bytes(name).lower() != _ASGI_NAME]
    return {**scope, "headers": kept}


class WsgiBaggageMiddleware:
    """WSGI middleware: drop client baggage, set the caller's from ``resolve(environ)``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], resolve: WsgiResolver) -> None:
        self.app = app
        self.resolve = resolve

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        strip_wsgi_baggage(environ)
        ctx = caller_context(self.resolve(environ))
        header = baggage_header(ctx)
        if header:
            environ[_WSGI_KEY] = header
        token = otel_context.attach(ctx)
        try:
            result = self.app(environ, start_response)
        finally:
            otel_context.detach(token)
        # A streamed body is produced while the server iterates, after __call__ returned: keep
        # the caller's baggage current for each chunk too.
        return _ContextIterable(result, ctx)


class _ContextIterable:
    """Iterates a WSGI response with ``ctx`` attached around each step; forwards ``close``."""

    def __init__(self, result: Iterable[bytes], ctx: Context) -> None:
        self._result = result
        self._ctx = ctx
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> _ContextIterable:
        return self

    def __next__(self) -> bytes:
        token = otel_context.attach(self._ctx)
        try:
            if self._iterator is None:
                self._iterator = iter(self._result)
            return next(self._iterator)
        finally:
            otel_context.detach(token)

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            token = otel_context.attach(self._ctx)
            try:
                close()
            finally:
                otel_context.detach(token)


class AsgiBaggageMiddleware:
    """ASGI middleware: drop client baggage, set the caller's from ``resolve(scope)``."""

    def __init__(self, app: Callable[..., Awaitable[None]], resolve: AsgiResolver) -> None:
        self.app = app
        self.resolve = resolve

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") not in ("http", "websocket"):  # lifespan and others pass through
            await self.app(scope, receive, send)
            return
        scope = strip_asgi_baggage(scope)
        entries = self.resolve(scope)
        if inspect.isawaitable(entries):
            entries = await entries
        ctx = caller_context(entries)
        header = baggage_header(ctx)
        if header:
            scope["headers"].append((_ASGI_NAME, header.encode("ascii")))
        token = otel_context.attach(ctx)
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)
