"""The OpenAI instrumentation with the real openai SDK against the provider simulator."""

from __future__ import annotations

import asyncio
import json

import llm_margin
import openai
import pytest
from instr_fixtures import customer_baggage, httpx2_instrumented, sim, tracing  # noqa: F401
from llm_margin import attributes as A
from llm_margin.config import Config, reset_config
from pydantic import BaseModel

MESSAGES = [{"role": "user", "content": "Summarize the quarterly report in one line."}]


def fast_retries(client):
    client._calculate_retry_timeout = lambda *a, **k: 0.01
    return client


@pytest.fixture
def client(sim):  # noqa: F811
    return fast_retries(
        openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=2)
    )


@pytest.fixture
def aclient(sim):  # noqa: F811
    return fast_retries(
        openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=2)
    )


def only_call(tracing):  # noqa: F811
    calls = tracing.calls()
    assert len(calls) == 1, [c.name for c in calls]
    return calls[0]


def test_chat_create_span(tracing, client, sim):  # noqa: F811
    with customer_baggage(customer__id="acme", plan="pro"):
        response = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            service_tier="default",
            extra_headers={
                "x-sim-cache-read": "64",
                "x-sim-reasoning": "7",
                "x-sim-output-tokens": "9",
            },
        )
    span = only_call(tracing)
    a = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert span.kind.name == "CLIENT"
    assert a[A.GEN_AI_OPERATION_NAME] == "chat"
    assert a[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[A.GEN_AI_RESPONSE_MODEL] == response.model
    assert a[A.GEN_AI_RESPONSE_ID] == response.id
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens == 9
    assert a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 64
    assert a[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 7
    assert a[A.GEN_AI_REQUEST_SERVICE_TIER] == "default"
    assert a[A.SERVER_ADDRESS] == "127.0.0.1" and isinstance(a[A.SERVER_PORT], int)
    assert a[A.CALL_STATUS] == "ok" and A.ERROR_TYPE not in a
    assert a[A.USAGE_SOURCE] == "provider"
    assert a[A.STREAM] is False
    assert a[A.SDK_RETRIES] == 0
    assert a[A.ROUTE] == "openai/gpt-4o-mini"
    assert (a[A.ATTEMPT], a[A.ATTEMPT_KIND]) == (1, "first")
    assert a[A.INSTRUMENTATION] == "llm_margin"
    assert a[A.CALL_ID] == format(span.context.span_id, "016x")
    assert a[A.CUSTOMER_ID] == "acme" and a[A.PLAN] == "pro"
    assert A.GEN_AI_INPUT_MESSAGES not in a and A.GEN_AI_OUTPUT_MESSAGES not in a


def test_cache_writes_recorded_chat_stream_and_responses(tracing, client):  # noqa: F811
    headers = {"x-sim-cache-read": "30", "x-sim-cache-write": "500"}
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers
    )
    list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=headers
        )
    )
    response = client.responses.create(model="gpt-5-mini", input="Say hi", extra_headers=headers)
    chat, stream, responses = (s.attributes for s in tracing.calls())
    assert completion.usage.prompt_tokens_details.cache_write_tokens == 500
    assert response.usage.input_tokens_details.cache_write_tokens == 500
    for a, total in (
        (chat, completion.usage.prompt_tokens),
        (stream, completion.usage.prompt_tokens),
        (responses, response.usage.input_tokens),
    ):
        assert a[A.USAGE_SOURCE] == "provider"
        assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == total  # the total, reads and writes included
        assert a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 30
        assert a[A.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == 500


def test_chat_async_and_parse(tracing, aclient, client):  # noqa: F811
    class Answer(BaseModel):
        answer: str

    async def main():
        return await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    asyncio.run(main())
    parsed = client.chat.completions.parse(
        model="gpt-4o", messages=MESSAGES, response_format=Answer
    )
    assert parsed.choices[0].message.parsed.answer
    first, second = tracing.calls()
    assert first.attributes[A.CALL_STATUS] == "ok"
    assert second.attributes[A.CALL_STATUS] == "ok"
    assert second.attributes[A.GEN_AI_OUTPUT_TYPE] == "json"
    assert second.attributes[A.USAGE_SOURCE] == "provider"


def test_sdk_retries_counted(tracing, client):  # noqa: F811
    client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-sim-fault": "429:1"}
    )
    assert only_call(tracing).attributes[A.SDK_RETRIES] == 1


def test_sdk_retries_with_httpx2_spans_as_children(httpx2_instrumented, client):  # noqa: F811
    client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-sim-fault": "429:2"}
    )
    call = only_call(httpx2_instrumented)
    assert call.attributes[A.SDK_RETRIES] == 2
    http = [
        s
        for s in httpx2_instrumented.spans()
        if s.parent and s.parent.span_id == call.context.span_id and A.CALL_ID not in s.attributes
    ]
    assert len(http) == 3  # one span per HTTP attempt, children of our call span


def test_exception_reraised_unchanged(tracing, client, monkeypatch):  # noqa: F811
    sentinel = openai.APIConnectionError(request=None)  # type: ignore[arg-type]

    def explode(*args, **kwargs):
        raise sentinel

    monkeypatch.setattr(openai._base_client.SyncAPIClient, "request", explode)
    with pytest.raises(openai.APIConnectionError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value is sentinel
    a = only_call(tracing).attributes
    assert a[A.CALL_STATUS] == "error" and a[A.ERROR_TYPE] == "APIConnectionError"


def test_http_error_span(tracing, client):  # noqa: F811
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            max_tokens=5,
            extra_headers={"x-sim-fault": "500"},
        )
    span = only_call(tracing)
    assert span.attributes[A.ERROR_TYPE] == "InternalServerError"
    assert span.attributes[A.SDK_RETRIES] == 2
    assert span.status.status_code.name == "ERROR"


def test_invalid_output_then_retry_then_fallback_in_a_task(tracing, client):  # noqa: F811
    fmt = {"type": "json_object"}
    with llm_margin.task("extract") as t:
        bad = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            response_format=fmt,
            extra_headers={"x-sim-fault": "invalid-json"},
        )
        with pytest.raises(ValueError):
            json.loads(bad.choices[0].message.content)  # the app gets the response unchanged
        with pytest.raises(openai.InternalServerError):
            client.with_options(max_retries=0).chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                response_format=fmt,
                extra_headers={"x-sim-fault": "500"},
            )
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, response_format=fmt)
    calls = sorted(tracing.calls(), key=lambda s: s.attributes[A.ATTEMPT])
    got = [
        (s.attributes[A.ATTEMPT], s.attributes[A.ATTEMPT_KIND], s.attributes[A.CALL_STATUS])
        for s in calls
    ]
    assert got == [(1, "first", "invalid_output"), (2, "retry", "error"), (3, "fallback", "ok")]
    assert calls[0].attributes[A.ERROR_TYPE] == "invalid_output"
    assert all(s.attributes[A.TASK_ID] == t.task_id for s in calls)
    assert calls[2].attributes[A.ROUTE] == "openai/gpt-4o"


def test_invalid_tool_arguments(tracing, client):  # noqa: F811
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        tools=tools,
        extra_headers={"x-sim-fault": "invalid-json"},
    )
    assert only_call(tracing).attributes[A.CALL_STATUS] == "invalid_output"


def _chunks_seen_by_app(stream):
    return [c for c in stream]


def test_stream_usage_added_and_hidden(tracing, client, sim):  # noqa: F811
    with customer_baggage(customer__id="acme"):
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        chunks = _chunks_seen_by_app(stream)
    sent = [r for r in sim.requests if r.path.endswith("/chat/completions")][-1].json
    assert sent["stream_options"]["include_usage"] is True
    assert chunks and all(c.choices for c in chunks)  # the usage chunk was hidden
    assert all(c.usage is None for c in chunks)
    call = only_call(tracing)
    a = call.attributes
    assert a[A.STREAM] is True and a[A.USAGE_SOURCE] == "provider"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0 and a[A.CALL_STATUS] == "ok"
    (prov,) = tracing.provisional()
    p = prov.attributes
    assert p[A.CALL_ID] == a[A.CALL_ID] == format(call.context.span_id, "016x")
    assert p[A.USAGE_SOURCE] == "estimated" and p[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 0
    assert p[A.GEN_AI_USAGE_INPUT_TOKENS] == -(-len(MESSAGES[0]["content"]) // 4)
    assert p[A.CUSTOMER_ID] == "acme" and p[A.ROUTE] == a[A.ROUTE]
    assert prov.end_time <= call.end_time
    # same start as the call: the stored versions of one call share ts (and hour)
    assert prov.start_time == call.start_time < prov.end_time


def test_stream_app_asked_for_usage_sees_it(tracing, client):  # noqa: F811
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert only_call(tracing).attributes[A.USAGE_SOURCE] == "provider"


def test_stream_closed_early_is_estimated_never_zero(tracing, client):  # noqa: F811
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-sim-output-tokens": "200"},
    )
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()
    a = only_call(tracing).attributes
    assert a[A.USAGE_SOURCE] == "estimated"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0 and a[A.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert a[A.CALL_STATUS] == "ok"


def test_stream_broken_is_estimated_and_error(tracing, client):  # noqa: F811
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-sim-fault": "stream-cut:3"},
    )
    received = []
    with pytest.raises(Exception):  # noqa: B017 - whatever the SDK raises reaches the app
        for chunk in stream:
            received.append(chunk)
    assert received
    a = only_call(tracing).attributes
    assert a[A.USAGE_SOURCE] == "estimated" and a[A.CALL_STATUS] == "error"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0


def test_stream_broken_keeps_the_tier_it_was_served_at(tracing, client):  # noqa: F811
    # The keyword asks auto, the body flex (extra_body wins): the chunks say flex, the tier
    # billed for what was streamed before the cut, not the one the keyword asked for.
    stream = client.chat.completions.create(
        model="gpt-5",
        messages=MESSAGES,
        stream=True,
        service_tier="auto",
        extra_body={"service_tier": "flex"},
        extra_headers={"x-sim-fault": "stream-cut:3"},
    )
    with pytest.raises(Exception):  # noqa: B017
        for _ in stream:
            pass
    a = only_call(tracing).attributes
    assert a[A.CALL_STATUS] == "error" and a[A.GEN_AI_REQUEST_SERVICE_TIER] == "auto"
    assert a[A.GEN_AI_RESPONSE_SERVICE_TIER] == "flex"


def test_stream_garbage_collected_ends_span(tracing, client):  # noqa: F811
    import gc

    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    assert only_call(tracing).attributes[A.USAGE_SOURCE] == "estimated"


def test_async_stream(tracing, aclient):  # noqa: F811
    async def main():
        stream = await aclient.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        return [c async for c in stream]

    chunks = asyncio.run(main())
    assert all(c.choices for c in chunks)
    a = only_call(tracing).attributes
    assert a[A.USAGE_SOURCE] == "provider" and a[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert len(tracing.provisional()) == 1


def test_chat_stream_helper(tracing, client):  # noqa: F811
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.content
    a = only_call(tracing).attributes
    assert a[A.USAGE_SOURCE] == "provider" and a[A.STREAM] is True


def test_responses_create_stream_and_async(tracing, client, aclient):  # noqa: F811
    response = client.responses.create(
        model="gpt-5-mini",
        input="Say hi",
        extra_headers={"x-sim-reasoning": "11", "x-sim-cache-read": "3"},
    )
    with client.responses.stream(model="gpt-5-mini", input="Say hi") as stream:
        for _ in stream:
            pass

    async def main():
        return await aclient.responses.create(model="gpt-5-mini", input="Say hi")

    asyncio.run(main())
    first, second, third = tracing.calls()
    assert first.attributes[A.GEN_AI_RESPONSE_ID] == response.id
    assert first.attributes[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 11
    assert first.attributes[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 3
    assert second.attributes[A.STREAM] is True and second.attributes[A.USAGE_SOURCE] == "provider"
    assert third.attributes[A.CALL_STATUS] == "ok"


def test_beta_responses_are_calls_too(tracing, client, aclient):  # noqa: F811
    """client.beta.responses posts to the same endpoint (with ?beta=true) and is billed."""
    response = client.beta.responses.create(model="gpt-5-mini", input="Say hi")
    stream = client.beta.responses.create(model="gpt-5-mini", input="Say hi", stream=True)
    for _ in stream:
        pass

    async def main():
        return await aclient.beta.responses.create(model="gpt-5-mini", input="Say hi")

    asyncio.run(main())
    first, second, third = tracing.calls()
    assert first.attributes[A.GEN_AI_RESPONSE_ID] == response.id
    assert first.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert second.attributes[A.STREAM] is True and second.attributes[A.USAGE_SOURCE] == "provider"
    assert third.attributes[A.CALL_STATUS] == "ok"


def test_embeddings_sync_and_async(tracing, client, aclient):  # noqa: F811
    client.embeddings.create(model="text-embedding-3-small", input="hello world")

    async def main():
        await aclient.embeddings.create(model="text-embedding-3-small", input=["a", "b"])

    asyncio.run(main())
    spans = tracing.calls()
    assert [s.name for s in spans] == ["embeddings text-embedding-3-small"] * 2
    assert spans[0].attributes[A.GEN_AI_OPERATION_NAME] == "embeddings"
    assert spans[0].attributes[A.GEN_AI_USAGE_INPUT_TOKENS] > 0


def test_provider_inferred_and_overridden(tracing, sim):  # noqa: F811
    port = sim.openai_base_url.split(":")[2].split("/")[0]
    reset_config(Config(provider_hosts={f"127.0.0.1:{port}": "vllm"}))
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="k")
    client.chat.completions.create(model="llama-3-8b", messages=MESSAGES)
    a = only_call(tracing).attributes
    assert a[A.GEN_AI_PROVIDER_NAME] == "vllm" and a[A.ROUTE] == "vllm/llama-3-8b"


def test_stream_helpers_closed_early_end_the_call_at_close(tracing, client, aclient):  # noqa: F811
    # The helpers close the HTTP response, not the stream we gave them: the call must still end
    # (and free its attempt) then, not whenever the stream object is garbage-collected.
    kept = []
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        next(iter(stream))
        kept.append(stream)
    assert len(tracing.calls()) == 1
    with client.responses.stream(model="gpt-5-mini", input="Say hi") as stream:
        next(iter(stream))
        kept.append(stream)
    assert len(tracing.calls()) == 2

    async def main():
        async with aclient.chat.completions.stream(
            model="gpt-4o-mini", messages=MESSAGES
        ) as stream:
            await stream.__anext__()
            kept.append(stream)
        return len(tracing.calls())

    assert asyncio.run(main()) == 3
    for call in tracing.calls():
        assert call.attributes[A.USAGE_SOURCE] == "estimated"
        assert call.attributes[A.STREAM_CLOSED_EARLY] is True


def test_with_raw_response_is_priced_from_the_body(tracing, client, aclient):  # noqa: F811
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-sim-output-tokens": "9"}
    )
    assert raw.headers is not None  # why apps use it: the headers
    completion = raw.parse()
    a = only_call(tracing).attributes
    assert a[A.USAGE_SOURCE] == "provider"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens == 9
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == completion.usage.prompt_tokens
    assert a[A.GEN_AI_RESPONSE_ID] == completion.id
    tracing.clear()

    async def main():
        raw = await aclient.responses.with_raw_response.create(model="gpt-5-mini", input="Hi")
        return raw.parse()

    response = asyncio.run(main())
    a = only_call(tracing).attributes
    assert a[A.USAGE_SOURCE] == "provider"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == response.usage.output_tokens


def test_with_streaming_response_is_priced_when_parsed(tracing, client, aclient):  # noqa: F811
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-sim-output-tokens": "7"}
    ) as raw:
        completion = raw.parse()
    a = only_call(tracing).attributes
    assert a[A.USAGE_SOURCE] == "provider"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens == 7
    tracing.clear()

    async def main():
        async with aclient.embeddings.with_streaming_response.create(
            model="text-embedding-3-small", input="hello world"
        ) as raw:
            return await raw.parse()

    embedding = asyncio.run(main())
    a = only_call(tracing).attributes
    assert a[A.USAGE_SOURCE] == "provider"
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == embedding.usage.prompt_tokens


def test_with_raw_response_stream_hides_usage_chunk_and_is_priced(tracing, client):  # noqa: F811
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    chunks = list(raw.parse())
    assert chunks and all(c.choices for c in chunks)  # our usage chunk stays hidden
    a = only_call(tracing).attributes
    assert a[A.USAGE_SOURCE] == "provider" and a[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0


def test_with_streaming_response_raw_sse_is_left_untouched(tracing, client, sim):  # noqa: F811
    # The app reads the SSE bytes itself: nothing can hide an extra chunk there, so the request
    # is sent as the app wrote it, and the call is estimated when the response closes.
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    ) as raw:
        lines = [line for line in raw.iter_lines() if line]
    sent = [r for r in sim.requests if r.path.endswith("/chat/completions")][-1].json
    assert "stream_options" not in sent
    assert not any('"choices": []' in line or '"choices":[]' in line for line in lines)
    a = only_call(tracing).attributes
    assert a[A.USAGE_SOURCE] == "estimated" and a[A.GEN_AI_USAGE_INPUT_TOKENS] > 0


def _sse_client(events):
    """An OpenAI client whose every request is answered with these server-sent events."""
    import httpx2

    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)

    def handler(request):
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, text=body)

    return openai.OpenAI(
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-test",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


def test_responses_stream_error_event_is_a_failed_attempt(tracing):  # noqa: F811
    # The Responses API reports a failure mid-stream as an `error` event; the SDK hands it to
    # the app as an event (it raises nothing), and the stream ends.
    created = {"id": "resp_e", "object": "response", "model": "gpt-5-mini", "output": []}
    client = _sse_client(
        [
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": {**created, "status": "in_progress"},
            },
            {
                "type": "response.output_text.delta",
                "sequence_number": 1,
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": "Hel",
                "logprobs": [],
            },
            {
                "type": "error",
                "sequence_number": 2,
                "code": "server_error",
                "message": "The model failed to generate a response.",
                "param": None,
            },
        ]
    )
    with llm_margin.task("erroring-stream"):
        events = list(client.responses.create(model="gpt-5-mini", input="Hi", stream=True))
        list(client.responses.create(model="gpt-5-mini", input="Hi", stream=True))
    assert [e.type for e in events][-1] == "error"  # the app sees the event unchanged
    first, second = tracing.calls()
    assert first.attributes[A.CALL_STATUS] == "error"
    assert first.attributes[A.ERROR_TYPE] == "server_error"
    assert first.attributes[A.USAGE_SOURCE] == "estimated"
    assert first.status.status_code.name == "ERROR"
    assert second.attributes[A.ATTEMPT_KIND] == "retry"


def test_responses_stream_failed_is_a_failed_attempt(tracing):  # noqa: F811
    import httpx2

    failed = {
        "id": "resp_f",
        "object": "response",
        "model": "gpt-5-mini",
        "status": "failed",
        "error": {"code": "server_error", "message": "boom"},
        "output": [],
        "usage": {"input_tokens": 5, "output_tokens": 0},
    }
    events = [
        {
            "type": "response.created",
            "sequence_number": 0,
            "response": {**failed, "status": "in_progress"},
        },
        {"type": "response.failed", "sequence_number": 1, "response": failed},
    ]
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)

    def handler(request):
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, text=body)

    client = openai.OpenAI(
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-test",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    with llm_margin.task("failing-stream"):
        list(client.responses.create(model="gpt-5-mini", input="Hi", stream=True))
        list(client.responses.create(model="gpt-5-mini", input="Hi", stream=True))
    first, second = tracing.calls()
    assert first.attributes[A.CALL_STATUS] == "error"
    assert first.attributes[A.ERROR_TYPE] == "server_error"
    assert first.attributes[A.USAGE_SOURCE] == "provider"
    assert second.attributes[A.ATTEMPT_KIND] == "retry"


def test_responses_search_calls_recorded_created_and_streamed(tracing, client, aclient):  # noqa: F811
    # web_search_call / file_search_call output items: billed per call, not in usage
    headers = {"x-sim-web-searches": "2", "x-sim-file-searches": "3"}
    client.responses.create(model="gpt-5-mini", input="Say hi", extra_headers=headers)
    with client.responses.stream(model="gpt-5-mini", input="Say hi", extra_headers=headers) as s:
        for _ in s:
            pass
    for _ in client.responses.create(
        model="gpt-5-mini", input="Say hi", stream=True, extra_headers=headers
    ):
        pass

    async def main():
        return await aclient.responses.create(
            model="gpt-5-mini", input="Say hi", extra_headers=headers
        )

    asyncio.run(main())
    client.responses.create(model="gpt-5-mini", input="Say hi")
    *searched, plain = tracing.calls()
    assert len(searched) == 4
    for span in searched:
        assert span.attributes[A.WEB_SEARCH_CALLS] == 2
        assert span.attributes[A.FILE_SEARCH_CALLS] == 3
        assert span.attributes[A.USAGE_SOURCE] == "provider"
    assert A.WEB_SEARCH_CALLS not in plain.attributes
    assert A.FILE_SEARCH_CALLS not in plain.attributes
