"""The google-genai instrumentation with the real google-genai SDK against the provider simulator."""

from __future__ import annotations

import asyncio

import httpx2
import llm_margin
import pytest
from google import genai
from google.genai import errors, types
from instr_fixtures import (  # noqa: F401
    SECRET_CUSTOMER,
    customer_baggage,
    httpx2_instrumented,
    sim,
    tracing,
)
from llm_margin import attributes as A
from llm_margin.instrumentation import _common

pytestmark = pytest.mark.integration

MODEL = "gemini-2.5-flash"
PROMPT = "Write a haiku about invoices."  # ceil(29/4) + 3 = 11 input tokens


@pytest.fixture
def client(sim):  # noqa: F811
    options = types.HttpOptions(base_url=sim.gemini_base_url)
    return genai.Client(api_key="test-key", http_options=options)


def headers(**entries: str) -> dict:
    """Per-request config carrying simulator directives (``x_sim_fault`` -> ``x-sim-fault``)."""
    return {"http_options": {"headers": {k.replace("_", "-"): v for k, v in entries.items()}}}


def only_call(tracing):  # noqa: F811
    calls = tracing.calls()
    assert len(calls) == 1, [c.name for c in calls]
    return calls[0]


def test_generate_content_usage_and_attributes(tracing, client, sim):  # noqa: F811
    config = headers(x_sim_reasoning="7", x_sim_cache_read="100", x_sim_output_tokens="30")
    with customer_baggage(customer__id="acme", plan="pro"):
        response = client.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    span = only_call(tracing)
    a = span.attributes
    u = response.usage_metadata
    assert span.name == f"generate_content {MODEL}"
    assert a[A.GEN_AI_OPERATION_NAME] == "generate_content"
    assert a[A.GEN_AI_PROVIDER_NAME] == "gcp.gemini" and a[A.ROUTE] == f"gcp.gemini/{MODEL}"
    assert a[A.GEN_AI_REQUEST_MODEL] == MODEL and a[A.GEN_AI_RESPONSE_MODEL] == MODEL
    assert a[A.GEN_AI_RESPONSE_ID] == response.response_id
    assert (a[A.SERVER_ADDRESS], a[A.SERVER_PORT]) == ("127.0.0.1", sim.port)
    # input: the whole prompt (cached part included); output: the answer plus the thinking
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == u.prompt_token_count == 11 + 100
    assert a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 100
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == u.candidates_token_count + 7 == 30
    assert a[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 7
    assert a[A.USAGE_SOURCE] == "provider" and a[A.CALL_STATUS] == "ok"
    assert a[A.SDK_RETRIES] == 0 and a[A.STREAM] is False
    assert a[A.CUSTOMER_ID] == "acme" and a[A.PLAN] == "pro"


RETRY = types.HttpRetryOptions(attempts=3, initial_delay=0.001, max_delay=0.01, jitter=0)


def test_stream_priced_from_the_last_chunk(tracing, client):  # noqa: F811
    config = headers(x_sim_reasoning="3", x_sim_output_tokens="8")
    # the SDK's retry runs when the stream is first read: still inside the call
    config["http_options"]["headers"].update({"x-sim-fault": "503:1", "x-sim-request-id": "s"})
    config["http_options"]["retry_options"] = RETRY
    stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT, config=config)
    assert tracing.calls(include_provisional=True) == []  # the request is sent when iterated
    chunks = list(stream)
    a = only_call(tracing).attributes
    assert a[A.STREAM] is True and a[A.USAGE_SOURCE] == "provider"
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == chunks[-1].usage_metadata.prompt_token_count == 11
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 8 and a[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 3
    assert a[A.SDK_RETRIES] == 1
    (provisional,) = tracing.provisional()
    assert provisional.attributes[A.CALL_ID] == a[A.CALL_ID]


def test_stream_refused_at_first_read_is_a_failed_call_not_a_cost(tracing, client):  # noqa: F811
    # the sync stream sends its request when first read: a 429 then is the request refused
    # (not billed), as when generate_content raises, not a stream broken after the prompt
    stream = client.models.generate_content_stream(
        model=MODEL, contents=PROMPT * 100, config=headers(x_sim_fault="429")
    )
    with pytest.raises(errors.ClientError) as info:
        next(stream)
    a = only_call(tracing).attributes
    assert a[A.CALL_STATUS] == "error" and a[A.ERROR_TYPE] == "ClientError"
    assert a[A.HTTP_RESPONSE_STATUS_CODE] == info.value.code == 429
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in a and A.USAGE_SOURCE not in a
    (provisional,) = tracing.provisional()  # marked at the start, replaced by the error span
    assert provisional.attributes[A.CALL_ID] == a[A.CALL_ID]


def test_stream_cut_and_closed_early_are_estimated(tracing, client):  # noqa: F811
    stream = client.models.generate_content_stream(
        model=MODEL, contents=PROMPT, config=headers(x_sim_fault="stream-cut:3")
    )
    with pytest.raises(Exception):  # noqa: B017 - the SDK's own transport error
        for _ in stream:
            pass
    stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
    next(stream)
    stream.close()
    broken, early = tracing.calls()
    assert broken.attributes[A.CALL_STATUS] == "error"
    for span in (broken, early):
        a = span.attributes
        assert a[A.USAGE_SOURCE] == "estimated" and a[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert early.attributes[A.CALL_STATUS] == "ok"
    assert early.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] == 11  # the chunk's prompt count


def test_async_generate_stream_and_embed(tracing, client):  # noqa: F811
    async def run():
        await client.aio.models.generate_content(model=MODEL, contents=PROMPT)
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents=PROMPT)
        async for _ in stream:
            pass
        await client.aio.models.embed_content(model="gemini-embedding-001", contents=["abcdefgh"])

    asyncio.run(run())
    plain, streamed, embedded = tracing.calls()
    assert plain.attributes[A.STREAM] is False and streamed.attributes[A.STREAM] is True
    for span in (plain, streamed):
        assert span.attributes[A.USAGE_SOURCE] == "provider"
        assert span.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] == 11
    e = embedded.attributes
    assert e[A.GEN_AI_OPERATION_NAME] == "embeddings" and e[A.USAGE_SOURCE] == "provider"
    assert (e[A.GEN_AI_USAGE_INPUT_TOKENS], e[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (2, 0)


def test_errors_pass_through_unchanged_and_sdk_retries_counted(tracing, client, monkeypatch):  # noqa: F811
    _common.reset_internal_errors()  # the count is per process: tests before may provoke some
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(
            model=MODEL, contents=PROMPT, config=headers(x_sim_fault="429")
        )
    assert info.value.code == 429
    # the very exception object the SDK raised reaches the app
    raised = errors.ServerError(503, {"error": {"code": 503, "message": "x"}})

    def fail(*args, **kwargs):
        raise raised

    with monkeypatch.context() as patch:
        patch.setattr(client.models._api_client, "request", fail)
        with pytest.raises(errors.ServerError) as info:
            client.models.generate_content(model=MODEL, contents=PROMPT)
    assert info.value is raised
    config = headers(x_sim_fault="429:1", x_sim_request_id="r1")
    config["http_options"]["retry_options"] = RETRY
    client.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    rate_limited, failed, retried = tracing.calls()
    for span, error_type, status in (
        (rate_limited, "ClientError", 429),
        (failed, "ServerError", 503),
    ):
        assert span.attributes[A.CALL_STATUS] == "error"
        assert span.attributes[A.ERROR_TYPE] == error_type
        # the APIError's code, as openai's and anthropic's error spans carry their status_code
        assert span.attributes[A.HTTP_RESPONSE_STATUS_CODE] == status
    assert retried.attributes[A.SDK_RETRIES] == 1 and retried.attributes[A.CALL_STATUS] == "ok"
    assert A.HTTP_RESPONSE_STATUS_CODE not in retried.attributes
    assert _common.internal_error_count() == 0


def test_sdk_retries_counted_whatever_http_client_sends_them(tracing, client):  # noqa: F811
    # aiohttp (the async client when it is installed), httpx and google-auth's requests session
    # are not hooked as httpx2 is: with the httpx2 hooks off, each attempt of the SDK's retry
    # loop is still counted once (and, hooked, once too: the test above)
    _common.reset_internal_errors()

    def config(request_id, fault="503:2"):  # the first two attempts refused
        config = headers(x_sim_fault=fault, x_sim_request_id=request_id)
        config["http_options"]["retry_options"] = RETRY
        return config

    users = _common._http_users  # one per instrumentor
    for _ in range(users):
        _common.release_http_hooks()
    try:
        assert not hasattr(httpx2.Client.send, "__wrapped__")  # the hooks are off
        client.models.generate_content(model=MODEL, contents=PROMPT, config=config("u1"))
        asyncio.run(
            client.aio.models.generate_content(model=MODEL, contents=PROMPT, config=config("u2"))
        )
        with pytest.raises(errors.ServerError):  # 3 attempts, all refused
            list(
                client.models.generate_content_stream(
                    model=MODEL, contents=PROMPT, config=config("u3", fault="503")
                )
            )
    finally:
        for _ in range(users):
            _common.acquire_http_hooks()
    assert [span.attributes[A.SDK_RETRIES] for span in tracing.calls()] == [2, 2, 2]
    assert _common.internal_error_count() == 0


def test_function_calling_chats_and_task_attempts(tracing, client, sim):  # noqa: F811
    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    json_config = {"response_mime_type": "application/json", **headers(x_sim_fault="invalid-json")}
    with llm_margin.task("forecast"):
        # automatic function calling: one public call, two billed requests, two spans
        client.models.generate_content(
            model=MODEL, contents="weather?", config=types.GenerateContentConfig(tools=[weather])
        )
        client.models.generate_content(model=MODEL, contents=PROMPT, config=json_config)
        chat = client.chats.create(model=MODEL)
        chat.send_message("hello")
        list(chat.send_message_stream("again"))
    calls = sorted(tracing.calls(), key=lambda s: s.attributes[A.ATTEMPT])
    assert len(calls) == len(sim.requests) == 5
    assert [s.attributes[A.CALL_STATUS] for s in calls] == [
        "ok",
        "ok",
        "invalid_output",
        "ok",
        "ok",
    ]
    assert calls[3].attributes[A.ATTEMPT_KIND] == "retry"  # same route after an invalid answer
    assert len({s.attributes[A.TASK_ID] for s in calls}) == 1


def test_no_baggage_reaches_google(httpx2_instrumented, client, sim):  # noqa: F811
    with customer_baggage(customer__id=SECRET_CUSTOMER, workspace__id="ws-SECRET"):
        client.models.generate_content(model=MODEL, contents=PROMPT)
        list(client.models.generate_content_stream(model=MODEL, contents=PROMPT))
        with pytest.raises(errors.ClientError):  # not recorded (free), still sent by the SDK
            client.models.count_tokens(model=MODEL, contents=PROMPT)
    assert len(sim.requests) == 3
    for request in sim.requests:
        assert "baggage" not in request.headers, request.path
        assert "traceparent" in request.headers  # trace context still goes
        assert SECRET_CUSTOMER not in repr(request.headers)
    for span in httpx2_instrumented.calls():
        assert span.attributes[A.CUSTOMER_ID] == SECRET_CUSTOMER


# Asked for (the request's config) and served (what the response reports: the simulator
# answers the tier asked for); the SDK sends an enum name lowercase.
TIERS = [
    ({"service_tier": "flex"}, "flex"),
    (types.GenerateContentConfig(service_tier=types.ServiceTier.PRIORITY), "priority"),
    ({"service_tier": "STANDARD"}, "standard"),
    ({}, None),
]


def _generate(client, config):
    client.models.generate_content(model=MODEL, contents=PROMPT, config=config)


def _generate_stream(client, config):
    list(client.models.generate_content_stream(model=MODEL, contents=PROMPT, config=config))


def _async_generate(client, config):
    asyncio.run(client.aio.models.generate_content(model=MODEL, contents=PROMPT, config=config))


def _async_generate_stream(client, config):
    async def run():
        stream = await client.aio.models.generate_content_stream(
            model=MODEL, contents=PROMPT, config=config
        )
        async for _ in stream:
            pass

    asyncio.run(run())


@pytest.mark.parametrize(
    "call", [_generate, _generate_stream, _async_generate, _async_generate_stream]
)
def test_service_tier_recorded_plain_and_streamed(tracing, client, sim, call):  # noqa: F811
    for config, _ in TIERS:
        call(client, config)
    tiers = [tier for _, tier in TIERS]
    assert [r.json.get("serviceTier") for r in sim.requests] == tiers
    calls = tracing.calls()
    assert [c.attributes.get(A.GEN_AI_REQUEST_SERVICE_TIER) for c in calls] == tiers
    assert [c.attributes.get(A.GEN_AI_RESPONSE_SERVICE_TIER) for c in calls] == tiers
    for span in calls:
        assert span.attributes[A.CALL_STATUS] == "ok"
        assert span.attributes[A.USAGE_SOURCE] == "provider"


# Vertex AI's request-type headers -> the traffic type recorded (and the tier it bills at).
TRAFFIC = [
    (headers(**{"X-Vertex-AI-LLM-Request-Type": "dedicated"}), "provisioned_throughput", None),
    (headers(**{"X-Vertex-AI-LLM-Request-Type": "shared"}), "on_demand", "standard"),
    (
        headers(**{"X-Vertex-AI-LLM-Shared-Request-Type": "priority"}),
        "on_demand_priority",
        "priority",
    ),
    ({}, None, None),  # the Gemini API reports none
]


@pytest.mark.parametrize(
    "call", [_generate, _generate_stream, _async_generate, _async_generate_stream]
)
def test_traffic_type_recorded_plain_and_streamed(tracing, client, call):  # noqa: F811
    for config, _, _ in TRAFFIC:
        call(client, config)
    calls = tracing.calls()
    assert [c.attributes.get(A.TRAFFIC_TYPE) for c in calls] == [t for _, t, _ in TRAFFIC]
    assert [c.attributes.get(A.GEN_AI_RESPONSE_SERVICE_TIER) for c in calls] == [
        tier for _, _, tier in TRAFFIC
    ]
    assert all(c.attributes[A.USAGE_SOURCE] == "provider" for c in calls)
