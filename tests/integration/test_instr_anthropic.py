"""The Anthropic instrumentation with the real anthropic SDK against the provider simulator."""

from __future__ import annotations

import asyncio

import anthropic
import llm_margin
import pytest
from instr_fixtures import PROVIDER, customer_baggage, sim, tracing  # noqa: F401
from llm_margin import attributes as A
from llm_margin.config import Config, reset_config
from pydantic import BaseModel

MESSAGES = [{"role": "user", "content": "Write a haiku about invoices."}]


@pytest.fixture
def client(sim):  # noqa: F811
    # the SDK's own spans go to the test provider too, so that suppression is really tested
    c = anthropic.Anthropic(
        base_url=sim.anthropic_base_url,
        api_key="sk-ant-test",
        max_retries=2,
        open_telemetry={"tracer_provider": PROVIDER},
    )
    c._calculate_retry_timeout = lambda *a, **k: 0.01
    return c


@pytest.fixture
def aclient(sim):  # noqa: F811
    return anthropic.AsyncAnthropic(
        base_url=sim.anthropic_base_url,
        api_key="sk-ant-test",
        open_telemetry={"tracer_provider": PROVIDER},
    )


def only_call(tracing):  # noqa: F811
    calls = tracing.calls()
    assert len(calls) == 1, [c.name for c in calls]
    return calls[0]


CACHE_HEADERS = {
    "x-sim-cache-read": "1000",
    "x-sim-cache-write": "200",
    "x-sim-cache-write-1h": "300",
    "x-sim-output-tokens": "12",
}


def test_create_usage_with_cache_buckets(tracing, client):  # noqa: F811
    with customer_baggage(customer__id="acme"):
        message = client.messages.create(
            model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, extra_headers=CACHE_HEADERS
        )
    span = only_call(tracing)
    a = span.attributes
    u = message.usage
    assert span.name == "chat claude-haiku-4-5"
    assert a[A.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert a[A.GEN_AI_RESPONSE_ID] == message.id
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == (
        u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens
    )
    assert a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1000
    assert a[A.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == 500
    assert a[A.CACHE_WRITE_5M_TOKENS] == 200 and a[A.CACHE_WRITE_1H_TOKENS] == 300
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert a[A.USAGE_SOURCE] == "provider" and a[A.CALL_STATUS] == "ok"
    assert a[A.CUSTOMER_ID] == "acme" and a[A.ROUTE] == "anthropic/claude-haiku-4-5"


def test_native_anthropic_span_suppressed_one_call_one_price(tracing, client, aclient):  # noqa: F811
    client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES)
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES) as s:
        s.until_done()
    asyncio.run(aclient.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES))
    names = [s.name for s in tracing.spans()]
    assert "anthropic.messages.create" not in names
    assert len(tracing.calls()) == 3


def test_native_span_kept_on_request_nested_under_ours(tracing, client):  # noqa: F811
    reset_config(Config(suppress_anthropic_native_spans=False))
    client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES)
    ours = only_call(tracing)
    native = [s for s in tracing.spans() if s.name == "anthropic.messages.create"]
    assert len(native) == 1 and native[0].parent.span_id == ours.context.span_id


def test_async_create_and_stream_true(tracing, aclient, client):  # noqa: F811
    async def main():
        await aclient.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES)

    asyncio.run(main())
    stream = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=10,
        messages=MESSAGES,
        stream=True,
        extra_headers=CACHE_HEADERS,
    )
    events = list(stream)
    assert events[0].type == "message_start"
    first, second = tracing.calls()
    assert first.attributes[A.CALL_STATUS] == "ok"
    a = second.attributes
    assert a[A.STREAM] is True and a[A.USAGE_SOURCE] == "provider"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert a[A.CACHE_WRITE_1H_TOKENS] == 300
    assert len(tracing.provisional()) == 1


def test_messages_stream_helper_sync_and_async(tracing, client, aclient):  # noqa: F811
    with client.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=10,
        messages=MESSAGES,
        extra_headers={"x-sim-output-tokens": "8"},
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.usage.output_tokens == 8

    async def main():
        async with aclient.messages.stream(
            model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES
        ) as s:
            return await s.get_final_message()

    asyncio.run(main())
    first, second = tracing.calls()
    assert first.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 8
    assert first.attributes[A.USAGE_SOURCE] == "provider"
    assert second.attributes[A.USAGE_SOURCE] == "provider"
    assert len(tracing.provisional()) == 2


def test_stream_helper_closed_early_is_estimated(tracing, client):  # noqa: F811
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES
    ) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break
    a = only_call(tracing).attributes
    assert a[A.USAGE_SOURCE] == "estimated" and a[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0


def test_stream_broken(tracing, client):  # noqa: F811
    stream = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=10,
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-sim-fault": "stream-cut:4"},
    )
    with pytest.raises(Exception):  # noqa: B017
        for _ in stream:
            pass
    a = only_call(tracing).attributes
    assert a[A.CALL_STATUS] == "error" and a[A.USAGE_SOURCE] == "estimated"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0 and a[A.GEN_AI_USAGE_INPUT_TOKENS] > 0
    # the tier message_start reported (the billed one) survives the cut
    assert a[A.GEN_AI_RESPONSE_SERVICE_TIER] == "standard"


def test_parse_and_invalid_json_retry_in_task(tracing, client):  # noqa: F811
    class Haiku(BaseModel):
        answer: str

    fmt = {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    with llm_margin.task("haiku"):
        client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=10,
            messages=MESSAGES,
            output_config=fmt,
            extra_headers={"x-sim-fault": "invalid-json"},
        )
        if hasattr(client.messages, "parse"):
            client.messages.parse(
                model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES, output_format=Haiku
            )
    calls = sorted(tracing.calls(), key=lambda s: s.attributes[A.ATTEMPT])
    assert calls[0].attributes[A.CALL_STATUS] == "invalid_output"
    assert calls[0].attributes[A.ERROR_TYPE] == "invalid_output"
    if len(calls) > 1:
        assert calls[1].attributes[A.ATTEMPT_KIND] == "retry"
        assert calls[1].attributes[A.CALL_STATUS] == "ok"


def test_sdk_retries_and_error(tracing, client):  # noqa: F811
    client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=10,
        messages=MESSAGES,
        extra_headers={"x-sim-fault": "429:1"},
    )
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=10,
            messages=MESSAGES,
            extra_headers={"x-sim-fault": "500"},
        )
    ok, failed = tracing.calls()
    assert ok.attributes[A.SDK_RETRIES] == 1
    assert failed.attributes[A.SDK_RETRIES] == 2
    assert failed.attributes[A.ERROR_TYPE] == "InternalServerError"


def test_with_raw_response_is_priced_from_the_body(tracing, client, aclient):  # noqa: F811
    raw = client.messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=100,
        messages=MESSAGES,
        extra_headers={"x-sim-cache-read": "40", "x-sim-cache-write-1h": "8"},
    )
    message = raw.parse()
    a = only_call(tracing).attributes
    assert a[A.USAGE_SOURCE] == "provider"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == message.usage.output_tokens
    assert a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 40
    assert a[A.CACHE_WRITE_1H_TOKENS] == 8
    tracing.clear()

    async def main():
        async with aclient.messages.with_streaming_response.create(
            model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, stream=True
        ) as raw:
            return [event async for event in await raw.parse()]

    events = asyncio.run(main())
    assert events
    a = only_call(tracing).attributes
    assert a[A.USAGE_SOURCE] == "provider" and a[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0


def test_beta_messages_create_stream_and_async(tracing, client, aclient):  # noqa: F811
    with llm_margin.task("beta") as t:
        message = client.beta.messages.create(
            model="claude-haiku-4-5",
            max_tokens=10,
            messages=MESSAGES,
            betas=["extended-cache-ttl-2025-04-11"],
            extra_headers=CACHE_HEADERS,
        )
        with client.beta.messages.stream(
            model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES
        ) as stream:
            stream.until_done()

        async def main():
            async with aclient.beta.messages.stream(
                model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES
            ) as s:
                await s.get_final_message()
            await aclient.beta.messages.create(
                model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES
            )

        asyncio.run(main())
    assert "anthropic.messages.create" not in [s.name for s in tracing.spans()]  # one price
    calls = tracing.calls()
    assert len(calls) == 4
    assert [c.attributes[A.ATTEMPT] for c in calls] == [1, 2, 3, 4]
    assert all(c.attributes[A.TASK_ID] == t.task_id for c in calls)
    assert all(c.attributes[A.USAGE_SOURCE] == "provider" for c in calls)
    a = calls[0].attributes
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == message.usage.output_tokens
    assert a[A.CACHE_WRITE_1H_TOKENS] == 300
    assert calls[1].attributes[A.STREAM] is True


def test_web_searches_recorded_created_and_streamed(tracing, client):  # noqa: F811
    # usage.server_tool_use.web_search_requests, billed per search beside the tokens; in a
    # stream, the final message_delta's (message_start's is 0: the count is cumulative)
    headers = {"x-sim-web-searches": "3"}
    message = client.messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, extra_headers=headers
    )
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, extra_headers=headers
    ) as stream:
        stream.until_done()
    client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES)
    created, streamed, plain = tracing.calls()
    assert message.usage.server_tool_use.web_search_requests == 3
    assert created.attributes[A.WEB_SEARCH_CALLS] == 3
    assert streamed.attributes[A.WEB_SEARCH_CALLS] == 3
    assert streamed.attributes[A.USAGE_SOURCE] == "provider"
    assert A.WEB_SEARCH_CALLS not in plain.attributes
    assert all(A.FILE_SEARCH_CALLS not in s.attributes for s in (created, streamed, plain))


# Fast mode: "fast" / "standard" as usage.speed reports it (the simulator echoes the request's
# speed), nothing for a call without one or with a speed the API does not know.
SPEEDS = [("fast", "fast"), ("standard", "standard"), (None, None), ("turbo", None)]


def _create(client, aclient, kw):
    client.messages.create(**kw)


def _create_stream(client, aclient, kw):
    for _ in client.messages.create(stream=True, **kw):
        pass


def _stream_helper(client, aclient, kw):
    with client.messages.stream(**kw) as stream:
        stream.until_done()


def _beta_create(client, aclient, kw):
    client.beta.messages.create(**kw)


def _beta_stream_helper(client, aclient, kw):
    with client.beta.messages.stream(**kw) as stream:
        stream.until_done()


def _async_create(client, aclient, kw):
    asyncio.run(aclient.messages.create(**kw))


def _async_create_stream(client, aclient, kw):
    async def main():
        async for _ in await aclient.messages.create(stream=True, **kw):
            pass

    asyncio.run(main())


def _async_beta_stream_helper(client, aclient, kw):
    async def main():
        async with aclient.beta.messages.stream(**kw) as stream:
            await stream.get_final_message()

    asyncio.run(main())


# Every way of making a Messages call, sync and async, streamed and not.
CALL_STYLES = [
    _create,
    _create_stream,
    _stream_helper,
    _beta_create,
    _beta_stream_helper,
    _async_create,
    _async_create_stream,
    _async_beta_stream_helper,
]


@pytest.mark.parametrize("call", CALL_STYLES)
def test_speed_recorded_sync_async_and_streamed(tracing, client, aclient, call):  # noqa: F811
    for speed, _ in SPEEDS:
        kw = {"model": "claude-opus-4-6", "max_tokens": 10, "messages": MESSAGES}
        call(client, aclient, kw if speed is None else {**kw, "speed": speed})
    calls = tracing.calls()
    assert [c.attributes.get(A.SPEED) for c in calls] == [expected for _, expected in SPEEDS]
    assert all(c.attributes[A.CALL_STATUS] == "ok" for c in calls)


def test_speed_the_response_reports_wins_over_the_request(tracing, client):  # noqa: F811
    # the body asks for fast mode (extra_body wins over the keyword): the response says fast
    kw = {"model": "claude-opus-4-6", "max_tokens": 10, "messages": MESSAGES}
    kw |= {"speed": "standard", "extra_body": {"speed": "fast"}}
    message = client.messages.create(**kw)
    for _ in client.messages.create(stream=True, **kw):
        pass
    assert message.usage.speed == "fast"
    assert [c.attributes[A.SPEED] for c in tracing.calls()] == ["fast", "fast"]
    # the stream-started record has the request's (the speed asked for, an estimate)
    (provisional,) = tracing.provisional()
    assert provisional.attributes[A.SPEED] == "standard"


# Data residency: usage.inference_geo as the response reports it (the simulator echoes the
# request's inference_geo), nothing for a call without one.
GEOS = [("us", "us"), ("global", "global"), (None, None), ("US", "us")]


@pytest.mark.parametrize("call", CALL_STYLES)
def test_inference_geo_recorded_sync_async_and_streamed(tracing, client, aclient, call):  # noqa: F811
    for geo, _ in GEOS:
        kw = {"model": "claude-opus-4-6", "max_tokens": 10, "messages": MESSAGES}
        call(client, aclient, kw if geo is None else {**kw, "inference_geo": geo})
    calls = tracing.calls()
    assert [c.attributes.get(A.INFERENCE_GEO) for c in calls] == [g for _, g in GEOS]
    assert all(c.attributes[A.CALL_STATUS] == "ok" for c in calls)


def test_inference_geo_the_response_reports_wins_over_the_request(tracing, client):  # noqa: F811
    # the body asks for US-only inference (extra_body wins over the keyword): the response
    # says us, the workspace default a response can report without a request asking for it
    kw = {"model": "claude-opus-4-6", "max_tokens": 10, "messages": MESSAGES}
    kw |= {"inference_geo": "global", "extra_body": {"inference_geo": "us"}}
    message = client.messages.create(**kw)
    for _ in client.messages.create(stream=True, **kw):
        pass
    assert message.usage.inference_geo == "us"
    assert [c.attributes[A.INFERENCE_GEO] for c in tracing.calls()] == ["us", "us"]
    # the stream-started record has the request's (the geography asked for, an estimate)
    (provisional,) = tracing.provisional()
    assert provisional.attributes[A.INFERENCE_GEO] == "global"
