"""The middleware with llm-margin's real OpenAI instrumentation and the provider simulator: the
LLM call span made inside a request carries the caller's identity from the app's function, never
the client's forged baggage, and the forged baggage does not reach the provider either."""

from __future__ import annotations

from wsgiref.util import setup_testing_defaults

import openai
import pytest
from instr_fixtures import sim, tracing  # noqa: F401
from llm_margin.middleware import WsgiBaggageMiddleware
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.trace import SpanKind

ACCOUNTS = {"key-initech": {"customer.id": "initech", "workspace.id": "ws_9", "plan": "pro"}}


def make_app(base_url: str, provider, otel_outside: bool = False):
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)

    def app(environ, start_response):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def caller(environ):
        return ACCOUNTS.get(environ.get("HTTP_X_API_KEY", ""))

    if otel_outside:
        return OpenTelemetryMiddleware(WsgiBaggageMiddleware(app, caller), tracer_provider=provider)
    # The documented order: ours outside, so even the server span never sees client baggage.
    return WsgiBaggageMiddleware(OpenTelemetryMiddleware(app, tracer_provider=provider), caller)


def request(app, headers: dict[str, str]) -> None:
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update(headers)
    status = []
    body = b"".join(app(environ, lambda s, h, exc_info=None: status.append(s)))
    assert status == ["200 OK"] and body == b"ok"


FORGED = "customer.id=victim,workspace.id=ws_victim,plan=enterprise"


@pytest.mark.parametrize("otel_outside", [False, True])
def test_call_spans_carry_the_callers_identity_only(tracing, sim, otel_outside):  # noqa: F811
    app = make_app(sim.openai_base_url, tracing.provider, otel_outside)
    forged = FORGED
    request(app, {"HTTP_X_API_KEY": "key-initech", "HTTP_BAGGAGE": forged})
    request(app, {"HTTP_BAGGAGE": forged})  # anonymous caller

    calls = tracing.calls()
    assert len(calls) == 2
    known, anonymous = calls
    assert {k: known.attributes.get(k) for k in ("customer.id", "workspace.id", "plan")} == {
        "customer.id": "initech",
        "workspace.id": "ws_9",
        "plan": "pro",
    }
    assert not {"customer.id", "workspace.id", "plan"} & set(anonymous.attributes)
    for span in tracing.spans():
        if otel_outside and span.kind == SpanKind.SERVER:
            # Started by OpenTelemetry's middleware before ours ran: it keeps what the client
            # sent (why the docs put this middleware outside). Never billed: not an LLM span.
            continue
        assert "victim" not in str(dict(span.attributes or {})), span.name
    for recorded in sim.requests:
        assert "victim" not in str(recorded.headers)
