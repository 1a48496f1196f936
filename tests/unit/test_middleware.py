"""llm_margin.middleware: client-sent baggage never survives, the app's caller function decides
the baggage, for WSGI (alone and with the real OpenTelemetry WSGI middleware on either side) and
ASGI (sync and async resolvers)."""

from __future__ import annotations

import asyncio
from wsgiref.util import setup_testing_defaults

import pytest
from llm_margin.middleware import (
    AsgiBaggageMiddleware,
    WsgiBaggageMiddleware,
    caller_context,
    strip_asgi_baggage,
    strip_wsgi_baggage,
)
from opentelemetry import baggage, context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

FORGED = "customer.id=victim,plan=enterprise"
KEYS = {"key-acme": {"customer.id": "acme", "workspace.id": "ws_7", "plan": "pro"}}


def parse_header(value: str | None) -> dict[str, str]:
    if value is None:
        return {}
    return dict(baggage.get_all(W3CBaggagePropagator().extract({"baggage": value}, Context())))


def wsgi_caller(environ):
    return KEYS.get(environ.get("HTTP_X_API_KEY", ""))


# -- pure helpers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (None, {}),
        ({}, {}),
        ({"customer.id": "acme"}, {"customer.id": "acme"}),
        ({"customer.id": "acme", "plan": ""}, {"customer.id": "acme"}),
        ({"customer.id": None, 3: "x", "plan": "pro"}, {"plan": "pro"}),
    ],
)
def test_caller_context_replaces_all_baggage(entries, expected):
    parent = baggage.set_baggage("customer.id", "victim")
    parent = baggage.set_baggage("session", "forged", parent)
    assert dict(baggage.get_all(caller_context(entries, parent))) == expected


@pytest.mark.parametrize(
    ("headers", "kept"),
    [
        ([], []),
        ([(b"baggage", b"customer.id=victim")], []),
        (
            [(b"Baggage", b"a=1"), (b"BAGGAGE", b"b=2"), (b"x-api-key", b"k")],
            [(b"x-api-key", b"k")],
        ),
        (
            [(b"traceparent", b"00-x"), (b"baggage-extra", b"1")],
            [(b"traceparent", b"00-x"), (b"baggage-extra", b"1")],
        ),
    ],
)
def test_strip_asgi_baggage(headers, kept):
    scope = {"type": "http", "headers": headers}
    assert strip_asgi_baggage(scope)["headers"] == kept
    assert scope["headers"] == headers  # the caller's scope is not mutated


def test_strip_wsgi_baggage():
    environ = {"HTTP_BAGGAGE": FORGED, "HTTP_X_API_KEY": "k"}
    assert strip_wsgi_baggage(environ) == {"HTTP_X_API_KEY": "k"}


# -- WSGI -------------------------------------------------------------------------------------------
class RecordingApp:
    """A tiny WSGI app that records what it saw: the baggage in context and the environ."""

    def __init__(self, chunks=(b"ok",)):
        self.chunks = chunks
        self.seen: list[dict] = []

    def __call__(self, environ, start_response):
        self.seen.append(
            {"baggage": dict(baggage.get_all()), "header": environ.get("HTTP_BAGGAGE")}
        )
        start_response("200 OK", [("Content-Type", "text/plain")])
        return self._body()

    def _body(self):
        for chunk in self.chunks:
            # evaluated while the server iterates, after the middleware's __call__ returned
            self.seen.append({"baggage": dict(baggage.get_all()), "header": None})
            yield chunk


def call_wsgi(app, headers: dict[str, str]) -> bytes:
    environ: dict = {}
    setup_testing_defaults(environ)
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    status: list[str] = []
    result = app(environ, lambda s, h, exc_info=None: status.append(s))
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    assert status == ["200 OK"]
    return body


WSGI_STACKS = {
    "alone": lambda inner: WsgiBaggageMiddleware(inner, wsgi_caller),
    "otel outside": lambda inner: OpenTelemetryMiddleware(
        WsgiBaggageMiddleware(inner, wsgi_caller)
    ),
    "otel inside": lambda inner: WsgiBaggageMiddleware(OpenTelemetryMiddleware(inner), wsgi_caller),
}


@pytest.mark.parametrize("stack", WSGI_STACKS)
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Api-Key": "key-acme"}, KEYS["key-acme"]),
        ({"X-Api-Key": "key-acme", "Baggage": FORGED}, KEYS["key-acme"]),
        ({"Baggage": FORGED}, {}),
        ({"X-Api-Key": "unknown", "Baggage": FORGED}, {}),
    ],
)
def test_wsgi_baggage_comes_only_from_the_caller_function(stack, headers, expected):
    inner = RecordingApp(chunks=(b"a", b"b"))
    assert call_wsgi(WSGI_STACKS[stack](inner), headers) == b"ab"
    assert len(inner.seen) == 3  # the call and each streamed chunk
    for seen in inner.seen:
        assert seen["baggage"] == expected
    # the request's header now carries the caller's baggage only (absent when anonymous)
    header = inner.seen[0]["header"]
    assert parse_header(header) == expected and (header is None) == (not expected)
    assert dict(baggage.get_all()) == {}  # nothing leaks past the request


def test_wsgi_resolver_error_fails_the_request_and_restores_context():
    def broken(environ):
        raise RuntimeError("auth backend down")

    app = WsgiBaggageMiddleware(RecordingApp(), broken)
    before = context.get_current()
    with pytest.raises(RuntimeError, match="auth backend down"):
        call_wsgi(app, {"Baggage": FORGED})
    assert context.get_current() == before


def test_wsgi_close_is_forwarded():
    closed = []

    class Body(list):
        def close(self):
            closed.append(dict(baggage.get_all()))

    def app(environ, start_response):
        start_response("200 OK", [])
        return Body([b"x"])

    call_wsgi(WsgiBaggageMiddleware(app, wsgi_caller), {"X-Api-Key": "key-acme"})
    assert closed == [KEYS["key-acme"]]


# -- ASGI -------------------------------------------------------------------------------------------
async def asgi_app(scope, receive, send, seen=None):
    seen.append({"baggage": dict(baggage.get_all()), "headers": list(scope.get("headers", []))})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def run_asgi(middleware, headers, scope_type="http"):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": scope_type, "method": "POST", "path": "/", "headers": headers}
    asyncio.run(middleware(scope, receive, send))
    return sent


def sync_asgi_caller(scope):
    return KEYS.get(dict(scope["headers"]).get(b"x-api-key", b"").decode())


async def async_asgi_caller(scope):
    await asyncio.sleep(0)
    return sync_asgi_caller(scope)


@pytest.mark.parametrize("resolver", [sync_asgi_caller, async_asgi_caller])
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"x-api-key", b"key-acme")], KEYS["key-acme"]),
        ([(b"x-api-key", b"key-acme"), (b"baggage", FORGED.encode())], KEYS["key-acme"]),
        ([(b"Baggage", FORGED.encode())], {}),
    ],
)
def test_asgi_baggage_comes_only_from_the_caller_function(resolver, headers, expected):
    seen: list[dict] = []

    async def app(scope, receive, send):
        await asgi_app(scope, receive, send, seen)

    sent = run_asgi(AsgiBaggageMiddleware(app, resolver), headers)
    assert sent[0]["status"] == 200
    assert seen[0]["baggage"] == expected
    ours = [value.decode() for name, value in seen[0]["headers"] if name.lower() == b"baggage"]
    assert [parse_header(value) for value in ours] == ([expected] if expected else [])


def test_asgi_lifespan_passes_through_untouched():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope)

    def resolver(scope):
        raise AssertionError("not called for lifespan")

    run_asgi(AsgiBaggageMiddleware(app, resolver), [(b"baggage", b"a=1")], scope_type="lifespan")
    assert seen[0]["headers"] == [(b"baggage", b"a=1")]
