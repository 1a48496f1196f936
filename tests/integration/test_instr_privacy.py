"""Privacy: no baggage and no customer attribute ever reaches a provider host (both SDKs, with and
without the contrib httpx2 instrumentation, streams included); no prompt/completion text on spans
unless LLM_MARGIN_CAPTURE_CONTENT=true."""

from __future__ import annotations

import anthropic
import llm_margin
import openai
import pytest
from instr_fixtures import (  # noqa: F401
    PROVIDER,
    SECRET_CUSTOMER,
    customer_baggage,
    httpx2_instrumented,
    sim,
    tracing,
)
from llm_margin import attributes as A
from llm_margin.config import Config, reset_config

PROMPT = "Tell me about invoice INV-4242"
MESSAGES = [{"role": "user", "content": PROMPT}]


def exercise_both_sdks(sim):  # noqa: F811
    oai = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=2)
    oai._calculate_retry_timeout = lambda *a, **k: 0.01
    ant = anthropic.Anthropic(
        base_url=sim.anthropic_base_url,
        api_key="sk-ant-test",
        open_telemetry={"tracer_provider": PROVIDER},
    )
    with customer_baggage(
        customer__id=SECRET_CUSTOMER, workspace__id="ws-SECRET", plan="pro", user__id="user-SECRET"
    ):
        with llm_margin.task("privacy"):
            oai.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-sim-fault": "429:1"}
            )
            list(oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
            oai.responses.create(model="gpt-5-mini", input=PROMPT)
            oai.embeddings.create(model="text-embedding-3-small", input=PROMPT)
            ant.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES)
            with ant.messages.stream(
                model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES
            ) as s:
                s.until_done()


def assert_nothing_leaked(sim, at_least: int = 7):  # noqa: F811
    assert len(sim.requests) >= at_least
    for request in sim.requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert "baggage" not in headers, request.path
        blob = repr(headers) + (request.body or b"").decode("utf-8", "replace")
        for secret in (SECRET_CUSTOMER, "ws-SECRET", "user-SECRET", "customer.id", "task.id"):
            assert secret not in blob, (secret, request.path)


def assert_spans_carry_customer(tracing):  # noqa: F811
    calls = tracing.calls()
    assert len(calls) == 6
    for span in calls:
        assert span.attributes[A.CUSTOMER_ID] == SECRET_CUSTOMER


def test_no_baggage_to_providers_plain(tracing, sim):  # noqa: F811
    exercise_both_sdks(sim)
    assert_nothing_leaked(sim)
    assert_spans_carry_customer(tracing)


def test_no_baggage_to_providers_with_httpx2_instrumentation(httpx2_instrumented, sim):  # noqa: F811
    exercise_both_sdks(sim)
    assert_nothing_leaked(sim)
    # trace context is still propagated (it carries no customer data)...
    assert all("traceparent" in r.headers for r in sim.requests)
    # ...and the HTTP spans inside our calls still carry the customer for attribution.
    http = [s for s in httpx2_instrumented.spans() if s.name.startswith("POST")]
    assert http and all(s.attributes[A.CUSTOMER_ID] == SECRET_CUSTOMER for s in http)
    assert_spans_carry_customer(httpx2_instrumented)


def test_anthropic_native_propagation_kept_still_sends_no_baggage(httpx2_instrumented, sim):  # noqa: F811
    reset_config(Config(suppress_anthropic_native_spans=False))
    exercise_both_sdks(sim)
    assert_nothing_leaked(sim)


def test_no_content_on_spans_by_default(tracing, sim):  # noqa: F811
    exercise_both_sdks(sim)
    for span in tracing.spans():
        for value in span.attributes.values():
            assert "INV-4242" not in str(value)
            assert "Hello from" not in str(value)


@pytest.mark.parametrize("capture", [True])
def test_content_captured_only_when_enabled(tracing, sim, capture):  # noqa: F811
    reset_config(Config(capture_content=capture))
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (span,) = tracing.calls()
    assert "INV-4242" in span.attributes[A.GEN_AI_INPUT_MESSAGES]
    assert A.GEN_AI_OUTPUT_MESSAGES in span.attributes


@pytest.mark.parametrize("fixture", ["tracing", "httpx2_instrumented"])
def test_no_baggage_on_sdk_requests_we_do_not_record(fixture, request, sim):  # noqa: F811
    # Beta Messages, model listing, files, ...: calls without a span of ours still go out from
    # the SDK, where the httpx2 instrumentation and Anthropic's own propagation add baggage.
    request.getfixturevalue(fixture)
    oai = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    ant = anthropic.Anthropic(
        base_url=sim.anthropic_base_url,
        api_key="sk-ant-test",
        max_retries=0,
        open_telemetry={"tracer_provider": PROVIDER},
    )
    with customer_baggage(customer__id=SECRET_CUSTOMER, workspace__id="ws-SECRET"):
        ant.beta.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES)
        with pytest.raises(openai.NotFoundError):
            oai.models.list()
    assert_nothing_leaked(sim, at_least=2)
