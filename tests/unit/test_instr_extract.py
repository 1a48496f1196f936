"""Table-driven tests of the pure extract functions (OpenAI and Anthropic) and providers."""

from __future__ import annotations

import pytest
from anthropic import omit
from anthropic.types import Usage as AnthropicUsage
from llm_margin.instrumentation import _anthropic_extract as AX
from llm_margin.instrumentation import _openai_extract as OX
from llm_margin.instrumentation._common import provider_for_host
from llm_margin.instrumentation._types import (
    RequestFacts,
    UsageTokens,
    estimate_tokens,
    usage_complete,
)
from openai.types import CompletionUsage
from openai.types.responses import Response

CHAT = RequestFacts(operation="chat", model="m")
CHAT_JSON = RequestFacts(operation="chat", model="m", json_content=True)
CHAT_TOOLS = RequestFacts(operation="chat", model="m", tools=True)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, None),
        ({"prompt_tokens": 10, "completion_tokens": 5}, UsageTokens(10, 5)),
        (
            {
                "prompt_tokens": 100,
                "completion_tokens": 50,
                "prompt_tokens_details": {"cached_tokens": 80},
                "completion_tokens_details": {"reasoning_tokens": 30},
            },
            UsageTokens(100, 50, cache_read_tokens=80, reasoning_tokens=30),
        ),
        (
            {"prompt_tokens": 7, "completion_tokens": 1, "prompt_cache_hit_tokens": 4},
            UsageTokens(7, 1, cache_read_tokens=4),
        ),
        ({"prompt_tokens": "x", "completion_tokens": -1}, UsageTokens(None, None)),
        (  # cache writes are part of the prompt total, reported apart like cache reads
            {
                "prompt_tokens": 900,
                "completion_tokens": 3,
                "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 700},
            },
            UsageTokens(900, 3, cache_read_tokens=100, cache_write_tokens=700),
        ),
        (  # audio models (gpt-audio): audio parts of both totals, priced apart from text
            {
                "prompt_tokens": 1000,
                "completion_tokens": 400,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 800},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 350},
            },
            UsageTokens(
                1000,
                400,
                cache_read_tokens=0,
                reasoning_tokens=0,
                input_audio_tokens=800,
                output_audio_tokens=350,
            ),
        ),
        (  # the SDK's own model (read with attrgetter, not as a dict)
            CompletionUsage.model_validate(
                {
                    "prompt_tokens": 60,
                    "completion_tokens": 20,
                    "total_tokens": 80,
                    "prompt_tokens_details": {"audio_tokens": 50, "cached_tokens": 0},
                    "completion_tokens_details": {"audio_tokens": 15},
                }
            ),
            UsageTokens(60, 20, 0, input_audio_tokens=50, output_audio_tokens=15),
        ),
        (  # a text-only call's zero audio counts are left out (they price the same)
            {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "prompt_tokens_details": {"audio_tokens": 0},
                "completion_tokens_details": {"audio_tokens": 0},
            },
            UsageTokens(10, 5),
        ),
    ],
)
def test_chat_usage(usage, expected):
    assert OX.chat_usage(usage) == expected


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"input_tokens": 20, "output_tokens": 9}, UsageTokens(20, 9)),
        (
            {
                "input_tokens": 200,
                "output_tokens": 90,
                "input_tokens_details": {"cached_tokens": 150},
                "output_tokens_details": {"reasoning_tokens": 64},
            },
            UsageTokens(200, 90, cache_read_tokens=150, reasoning_tokens=64),
        ),
        (
            {
                "input_tokens": 1200,
                "output_tokens": 4,
                "input_tokens_details": {
                    "cached_tokens": 0,
                    "cache_write_tokens": 1024,
                    "cache_write_tokens_details": {"ttl_30m_tokens": 1024, "ttl_12h_tokens": 0},
                },
            },
            UsageTokens(1200, 4, cache_read_tokens=0, cache_write_tokens=1024),
        ),
    ],
)
def test_responses_usage(usage, expected):
    assert OX.responses_usage(usage) == expected


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, None),
        ({"input_tokens": 10, "output_tokens": 5}, UsageTokens(10, 5)),
        (
            {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_read_input_tokens": 1000,
                "cache_creation_input_tokens": 300,
            },
            UsageTokens(1310, 5, cache_read_tokens=1000, cache_write_tokens=300),
        ),
        (
            {
                "input_tokens": 3,
                "output_tokens": 2,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 500,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 200,
                    "ephemeral_1h_input_tokens": 300,
                },
            },
            UsageTokens(
                503,
                2,
                cache_read_tokens=0,
                cache_write_tokens=500,
                cache_write_5m_tokens=200,
                cache_write_1h_tokens=300,
            ),
        ),
        (
            {
                "input_tokens": 3,
                "output_tokens": 40,
                "output_tokens_details": {"thinking_tokens": 30},
            },
            UsageTokens(3, 40, reasoning_tokens=30),
        ),
        # only the split given: the total write is derived from it
        (
            {
                "input_tokens": 1,
                "output_tokens": 1,
                "cache_creation": {"ephemeral_5m_input_tokens": 4, "ephemeral_1h_input_tokens": 6},
            },
            UsageTokens(
                11, 1, cache_write_tokens=10, cache_write_5m_tokens=4, cache_write_1h_tokens=6
            ),
        ),
        (  # web searches, billed per search beside the tokens; web fetches are not billed
            {
                "input_tokens": 5,
                "output_tokens": 2,
                "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 2},
            },
            UsageTokens(5, 2, web_search_calls=3),
        ),
        (  # no search: the zero is left out (it prices the same)
            {"input_tokens": 5, "output_tokens": 2, "server_tool_use": {"web_search_requests": 0}},
            UsageTokens(5, 2),
        ),
        (  # the SDK's own model
            AnthropicUsage.model_validate(
                {
                    "input_tokens": 7,
                    "output_tokens": 1,
                    "server_tool_use": {"web_search_requests": 4, "web_fetch_requests": 0},
                }
            ),
            UsageTokens(7, 1, cache_read_tokens=None, web_search_calls=4),
        ),
    ],
)
def test_anthropic_usage_input_is_total(usage, expected):
    assert AX.messages_usage(usage) == expected


def _chat(content=None, tool_args=None):
    message = {"role": "assistant", "content": content}
    if tool_args is not None:
        message["tool_calls"] = [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": a}}
            for a in tool_args
        ]
    return {
        "id": "r1",
        "model": "m-2024",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }


@pytest.mark.parametrize(
    ("request_facts", "response", "invalid"),
    [
        (CHAT, _chat("not json"), False),
        (CHAT_JSON, _chat('{"a": 1}'), False),
        (CHAT_JSON, _chat("{oops"), True),
        (CHAT_TOOLS, _chat("plain text answer"), False),
        (CHAT_TOOLS, _chat(None, ['{"x": 1}']), False),
        (CHAT_TOOLS, _chat(None, ['{"x": 1}', "{broken"]), True),
        (CHAT_JSON, _chat(None), False),
    ],
)
def test_chat_invalid_output(request_facts, response, invalid):
    facts = OX.chat_response_facts(response, request_facts)
    assert facts.invalid_output is invalid
    assert facts.response_id == "r1" and facts.model == "m-2024"


@pytest.mark.parametrize(
    ("kwargs", "json_content", "tools"),
    [
        ({"model": "m", "messages": []}, False, False),
        ({"model": "m", "response_format": {"type": "json_object"}}, True, False),
        (
            {"model": "m", "response_format": {"type": "json_schema", "json_schema": {}}},
            True,
            False,
        ),
        ({"model": "m", "response_format": {"type": "text"}}, False, False),
        ({"model": "m", "tools": [{"type": "function"}]}, False, True),
        ({"model": "m", "tools": []}, False, False),
    ],
)
def test_chat_request_facts(kwargs, json_content, tools):
    facts = OX.chat_request_facts(kwargs)
    assert (facts.json_content, facts.tools) == (json_content, tools)


def test_chat_request_facts_parse_with_a_model_class():
    class Answer:
        pass

    assert OX.chat_request_facts({"model": "m", "response_format": Answer}).json_content


@pytest.mark.parametrize(
    ("kwargs", "added", "options"),
    [
        ({"stream": False}, False, None),
        ({"stream": True}, True, {"include_usage": True}),
        (
            {"stream": True, "stream_options": {"include_usage": True}},
            False,
            {"include_usage": True},
        ),
        (
            {"stream": True, "stream_options": {"include_obfuscation": False}},
            True,
            {"include_obfuscation": False, "include_usage": True},
        ),
        (
            {"stream": True, "stream_options": {"include_usage": False}},
            True,
            {"include_usage": True},
        ),
        # with_streaming_response: the app reads the SSE bytes, where no chunk can be hidden
        ({"stream": True, "extra_headers": {"X-Stainless-Raw-Response": "stream"}}, False, None),
        ({"stream": True, "extra_headers": {"x-stainless-raw-response": "stream"}}, False, None),
        # with_raw_response: the app gets the stream from .parse(), through our proxy
        (
            {"stream": True, "extra_headers": {"X-Stainless-Raw-Response": "true"}},
            True,
            {"include_usage": True},
        ),
    ],
)
def test_with_include_usage(kwargs, added, options):
    original = {k: (dict(v) if isinstance(v, dict) else v) for k, v in kwargs.items()}
    new, was_added = OX.with_include_usage(kwargs)
    assert was_added is added
    assert new.get("stream_options") == options
    assert kwargs == original  # never mutates the app's arguments


def test_chat_stream_accumulator_hides_only_the_usage_chunk_we_added():
    facts = RequestFacts(
        operation="chat", model="m", stream=True, json_content=True, usage_chunk_added=True
    )
    acc = OX.ChatStreamAccumulator(facts)
    chunks = [
        {"id": "c", "model": "m-1", "choices": [{"index": 0, "delta": {"content": '{"a":'}}]},
        {
            "id": "c",
            "model": "m-1",
            "choices": [{"index": 0, "delta": {"content": " 1}"}, "finish_reason": "stop"}],
        },
        {
            "id": "c",
            "model": "m-1",
            "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4},
        },
    ]
    assert [acc.add(c) for c in chunks] == [False, False, True]
    out = acc.facts()
    assert out.usage == UsageTokens(9, 4) and not out.invalid_output
    assert out.response_id == "c" and out.finish_reasons == ("stop",)
    assert acc.usage_complete()
    not_added = OX.ChatStreamAccumulator(RequestFacts(operation="chat", model="m", stream=True))
    assert not_added.add(chunks[2]) is False


def _tool_chunk(choice: int, args: str) -> dict:
    call = {"index": 0, "function": {"arguments": args}}
    return {"id": "c", "choices": [{"index": choice, "delta": {"tool_calls": [call]}}]}


@pytest.mark.parametrize(
    ("chunks", "invalid"),
    [
        # n=2: each choice calls its own tool 0; their arguments must not be joined
        ([(0, '{"x": '), (1, '{"y": '), (0, "1}"), (1, "2}")], False),
        ([(0, '{"x": 1}'), (1, '{"y": ')], True),
        ([(0, '{"x": '), (0, "1}")], False),
        ([(0, "{broken")], True),
    ],
)
def test_chat_stream_tool_arguments_checked_per_choice(chunks, invalid):
    facts = RequestFacts(operation="chat", model="m", stream=True, tools=True)
    acc = OX.ChatStreamAccumulator(facts)
    for choice, args in chunks:
        acc.add(_tool_chunk(choice, args))
    assert acc.facts().invalid_output is invalid


def test_chat_stream_estimate_from_received_text():
    acc = OX.ChatStreamAccumulator(RequestFacts(operation="chat", model="m", stream=True))
    acc.add({"id": "c", "choices": [{"index": 0, "delta": {"content": "x" * 41}}]})
    assert acc.estimated_output_tokens() == 11
    assert not acc.usage_complete()


def test_responses_stream_accumulator():
    acc = OX.ResponsesStreamAccumulator(RequestFacts(operation="chat", model="m", stream=True))
    acc.add({"type": "response.created", "response": {"id": "resp_1", "model": "m-1"}})
    acc.add({"type": "response.output_text.delta", "delta": "hello"})
    assert acc.facts().response_id == "resp_1" and not acc.usage_complete()
    acc.add(
        {
            "type": "response.completed",
            "response": {
                "id": "resp_1",
                "model": "m-1",
                "status": "completed",
                "usage": {"input_tokens": 5, "output_tokens": 2},
            },
        }
    )
    assert acc.usage_complete() and acc.facts().usage == UsageTokens(5, 2)


_SEARCHES = [
    {"type": "web_search_call", "id": "ws_1", "status": "completed",
     "action": {"type": "search", "query": "q"}},
    {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": ["q"]},
    {"type": "web_search_call", "id": "ws_2", "status": "completed",
     "action": {"type": "search", "query": "r"}},
    {"type": "message", "id": "m_1", "role": "assistant", "status": "completed",
     "content": [{"type": "output_text", "text": "hi", "annotations": []}]},
]  # fmt: skip


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ([], UsageTokens(5, 2)),
        (_SEARCHES, UsageTokens(5, 2, web_search_calls=2, file_search_calls=1)),
        (_SEARCHES[1:2], UsageTokens(5, 2, file_search_calls=1)),
        ([{"type": "function_call", "arguments": "{}"}], UsageTokens(5, 2)),
    ],
)
def test_responses_search_calls_are_counted_from_output_items(output, expected):
    # billed per call and not counted in usage: counted from the output items
    response = {"id": "r", "status": "completed", "output": output}
    response["usage"] = {"input_tokens": 5, "output_tokens": 2}
    assert OX.responses_response_facts(response, CHAT).usage == expected
    stream = OX.ResponsesStreamAccumulator(RequestFacts("chat", "m", stream=True))
    stream.add({"type": "response.completed", "response": response})
    assert stream.usage_complete() and stream.facts().usage == expected


def test_responses_search_calls_read_from_the_sdk_model():
    response = Response.model_validate(
        {
            "id": "resp_1",
            "object": "response",
            "created_at": 1,
            "model": "gpt-4o",
            "status": "completed",
            "output": _SEARCHES,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": 5,
                "output_tokens": 2,
                "total_tokens": 7,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }
    )
    usage = OX.responses_response_facts(response, CHAT).usage
    assert (usage.web_search_calls, usage.file_search_calls) == (2, 1)
    assert usage.attributes()["llm_margin.usage.web_search.calls"] == 2
    assert usage.attributes()["llm_margin.usage.file_search.calls"] == 1


@pytest.mark.parametrize(
    ("response", "error_type"),
    [
        ({"status": "completed"}, None),
        ({"status": "incomplete"}, None),  # e.g. max_output_tokens: an answer, cut short
        ({"status": "failed", "error": {"code": "server_error"}}, "server_error"),
        ({"status": "failed", "error": None}, "failed"),
        ({"status": "failed", "error": {"code": ""}}, "failed"),
    ],
)
def test_responses_failed_status_is_an_error(response, error_type):
    facts = OX.responses_response_facts({"id": "r", **response}, CHAT)
    assert facts.error_type == error_type
    acc = OX.ResponsesStreamAccumulator(RequestFacts(operation="chat", model="m", stream=True))
    kind = "response.failed" if response["status"] == "failed" else "response.completed"
    acc.add({"type": kind, "response": {"id": "r", **response}})
    assert acc.facts().error_type == error_type


@pytest.mark.parametrize(
    ("events", "error_type"),
    [
        ([{"type": "error", "code": "server_error", "message": "boom"}], "server_error"),
        ([{"type": "error", "code": None, "message": "boom"}], "error"),
        (  # a response.failed that follows says more: its code wins
            [
                {"type": "error", "code": None, "message": "boom"},
                {
                    "type": "response.failed",
                    "response": {
                        "id": "resp_1",
                        "status": "failed",
                        "error": {"code": "rate_limit_exceeded"},
                    },
                },
            ],
            "rate_limit_exceeded",
        ),
        ([{"type": "response.output_text.delta", "delta": "hi"}], None),
    ],
)
def test_responses_stream_error_event_is_an_error(events, error_type):
    acc = OX.ResponsesStreamAccumulator(RequestFacts(operation="chat", model="m", stream=True))
    acc.add({"type": "response.created", "response": {"id": "resp_1", "model": "m-1"}})
    for event in events:
        acc.add(event)
    assert acc.facts().error_type == error_type
    assert acc.facts().response_id == "resp_1"


def test_anthropic_stream_accumulator_merges_start_and_delta():
    facts = RequestFacts(operation="chat", model="claude", stream=True)
    acc = AX.MessageStreamAccumulator(facts)
    acc.add(
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "model": "claude-x",
                "usage": {
                    "input_tokens": 10,
                    "output_tokens": 1,
                    "cache_read_input_tokens": 100,
                    "cache_creation_input_tokens": 50,
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": 20,
                        "ephemeral_1h_input_tokens": 30,
                    },
                    "service_tier": "priority",
                },
            },
        }
    )
    acc.add(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hey"}}
    )
    assert not acc.usage_complete()
    acc.add(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 7},
        }
    )
    acc.add({"type": "message_stop"})
    assert acc.usage_complete()
    assert acc.facts().usage == UsageTokens(
        160,
        7,
        cache_read_tokens=100,
        cache_write_tokens=50,
        cache_write_5m_tokens=20,
        cache_write_1h_tokens=30,
    )
    assert acc.facts().finish_reasons == ("end_turn",)
    assert acc.facts().usage.web_search_calls is None
    # the tier the provider billed, as for a Message (an overlay's service_tiers multiply it)
    assert acc.facts().service_tier == "priority"


@pytest.mark.parametrize(
    ("content", "facts", "invalid"),
    [
        ([{"type": "text", "text": "hello"}], RequestFacts("chat", "c"), False),
        ([{"type": "text", "text": "hello"}], RequestFacts("chat", "c", json_content=True), True),
        (
            [{"type": "text", "text": '{"a": 1}'}],
            RequestFacts("chat", "c", json_content=True),
            False,
        ),
        ([{"type": "tool_use", "input": {"a": 1}}], RequestFacts("chat", "c", tools=True), False),
        ([{"type": "tool_use", "input": "{bad"}], RequestFacts("chat", "c", tools=True), True),
    ],
)
def test_anthropic_invalid_output(content, facts, invalid):
    message = {
        "id": "m",
        "model": "c",
        "content": content,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    assert AX.message_facts(message, facts).invalid_output is invalid


def test_anthropic_request_facts():
    facts = AX.messages_request_facts(
        {"model": "claude", "output_config": {"format": {"type": "json_schema"}}, "stream": True}
    )
    assert facts.json_content and facts.stream and facts.model == "claude"


@pytest.mark.parametrize(
    ("host", "port", "default", "overrides", "expected"),
    [
        ("api.openai.com", 443, "openai", None, "openai"),
        ("myres.openai.azure.com", 443, "openai", None, "azure.ai.openai"),
        ("api.deepseek.com", 443, "openai", None, "deepseek"),
        ("api.groq.com", 443, "openai", None, "groq"),
        ("api.together.xyz", 443, "openai", None, "together"),
        ("openrouter.ai", 443, "openai", None, "openrouter"),
        ("127.0.0.1", 8000, "openai", None, "openai"),
        ("localhost", 8000, "anthropic", None, "anthropic"),
        ("vllm.internal", 8000, "openai", None, "openai"),
        ("vllm.internal", 8000, "openai", {"vllm.internal": "vllm"}, "vllm"),
        ("localhost", 8000, "openai", {"localhost:8000": "vllm"}, "vllm"),
        ("localhost", 9000, "openai", {"localhost:8000": "vllm"}, "openai"),
        ("a.b.example.com", 443, "openai", {"*.example.com": "ex"}, "ex"),
        ("api.groq.com", 443, "openai", {"api.groq.com": "groq-proxy"}, "groq-proxy"),
        ("API.OpenAI.com.", 443, "openai", None, "openai"),
        (None, None, "openai", None, "openai"),
    ],
)
def test_provider_for_host(host, port, default, overrides, expected):
    assert provider_for_host(host, port, default, overrides) == expected


@pytest.mark.parametrize(("chars", "tokens"), [(0, 0), (1, 1), (4, 1), (5, 2), (400, 100)])
def test_estimate_tokens(chars, tokens):
    assert estimate_tokens(chars) == tokens


def test_anthropic_stream_web_searches_come_from_the_final_delta():
    # server_tool_use is cumulative, like output_tokens: message_start's zero, then the
    # final message_delta's count
    acc = AX.MessageStreamAccumulator(RequestFacts("chat", "claude", stream=True))
    start_usage = {"input_tokens": 10, "output_tokens": 1}
    start_usage["server_tool_use"] = {"web_search_requests": 0, "web_fetch_requests": 0}
    acc.add({"type": "message_start", "message": {"id": "m", "usage": start_usage}})
    delta_usage = {"output_tokens": 9, "server_tool_use": {"web_search_requests": 2}}
    acc.add({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage})
    assert acc.facts().usage == UsageTokens(10, 9, web_search_calls=2)
    assert acc.facts().usage.attributes()["llm_margin.usage.web_search.calls"] == 2


# Anthropic fast mode: only the API's two speeds are recorded, anything else is ignored.
_SPEED_VALUES = [
    ("fast", "fast"),
    ("standard", "standard"),
    (None, None),
    ("FAST", None),
    ("turbo", None),
    ("", None),
    (1, None),
    (True, None),
    (["fast"], None),
    ({"speed": "fast"}, None),
    (omit, None),
]


@pytest.mark.parametrize(("value", "expected"), _SPEED_VALUES)
def test_anthropic_speed_mode(value, expected):
    assert AX.speed_mode(value) == expected


def test_anthropic_speed_asked_and_reported():
    """Each value of the table as a request's ``speed`` and as a Message's ``usage.speed``."""
    values = [value for value, _ in _SPEED_VALUES]
    asked = [AX.messages_request_facts({"model": "c", "speed": v}).speed for v in values]
    usages = [{"input_tokens": 3, "output_tokens": 1, "speed": v} for v in values]
    reported = [AX.message_facts({"id": "m", "usage": u}, CHAT).speed for u in usages]
    expected = [speed for _, speed in _SPEED_VALUES]
    assert asked == expected
    assert reported == expected
    assert AX.messages_request_facts({"model": "c"}).speed is None


def test_anthropic_message_speed_shapes():
    shapes = [
        ({"usage": AnthropicUsage(input_tokens=3, output_tokens=1, speed="fast")}, "fast"),
        ({"usage": AnthropicUsage(input_tokens=3, output_tokens=1, speed="standard")}, "standard"),
        ({"usage": AnthropicUsage(input_tokens=3, output_tokens=1)}, None),
        ({"usage": {"input_tokens": 3, "output_tokens": 1}}, None),
        ({"usage": None}, None),
        ({"usage": "fast"}, None),
        ({}, None),
        (None, None),
    ]
    assert [AX.message_facts(m, CHAT).speed for m, _ in shapes] == [s for _, s in shapes]


def _speed_stream(start_speed, delta_speed):
    """Message events whose message_start / message_delta usage say these speeds (None: no
    ``speed`` key)."""
    start = {"input_tokens": 10, "output_tokens": 1}
    delta = {"output_tokens": 5}
    if start_speed is not None:
        start["speed"] = start_speed
    if delta_speed is not None:
        delta["speed"] = delta_speed
    return [
        {"type": "message_start", "message": {"id": "m", "model": "claude", "usage": start}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta},
        {"type": "message_stop"},
    ]


@pytest.mark.parametrize(
    ("start_speed", "delta_speed", "expected"),
    [
        ("fast", None, "fast"),  # message_start's usage, like a Message's
        (None, "fast", "fast"),  # message_delta's
        ("standard", None, "standard"),
        ("fast", "fast", "fast"),
        ("fast", "standard", "standard"),  # the final value wins
        ("standard", "fast", "fast"),
        ("fast", "turbo", "fast"),  # garbage does not override a speed seen
        ("fast", 7, "fast"),
        (["fast"], "standard", "standard"),
    ],
)
def test_anthropic_stream_speed(start_speed, delta_speed, expected):
    acc = AX.MessageStreamAccumulator(RequestFacts("chat", "claude", stream=True))
    for event in _speed_stream(start_speed, delta_speed):
        acc.add(event)
    assert acc.usage_complete()
    assert acc.facts().speed == expected


@pytest.mark.parametrize(
    ("usage", "complete"),
    [
        (None, False),
        (UsageTokens(), False),  # usage: {} or nulls
        (UsageTokens(12, None), False),
        (UsageTokens(None, 3), False),
        (UsageTokens(12, 0), True),  # a reported zero is a count
        (UsageTokens(0, 0), True),
        (OX.chat_usage({"total_tokens": 40}), False),
        (OX.embeddings_usage({"prompt_tokens": 5}), True),  # embeddings have no output
        (AX.messages_usage({"input_tokens": None, "output_tokens": 3}), False),
        (AX.messages_usage({"cache_read_input_tokens": 9, "output_tokens": 3}), True),
    ],
)
def test_usage_complete(usage, complete):
    assert usage_complete(usage) is complete


@pytest.mark.parametrize(
    ("response", "chars"),
    [
        (None, 0),
        ({"choices": None}, 0),
        ({"choices": [None, {"message": None}]}, 0),
        ({"choices": [{"message": {"content": "abcd"}}, {"message": {"content": "ef"}}]}, 6),
        ({"choices": [{"message": {"content": None, "refusal": "no"}}]}, 2),
        (
            {
                "choices": [
                    {
                        "message": {
                            "content": "hi",
                            "tool_calls": [
                                {"function": {"arguments": '{"a":1}'}},
                                {"function": None},
                            ],
                        }
                    }
                ]
            },
            9,
        ),
    ],
)
def test_chat_output_chars(response, chars):
    assert OX.chat_output_chars(response) == chars


@pytest.mark.parametrize(
    ("response", "chars"),
    [
        ({"output": None}, 0),
        (
            {
                "output": [
                    {"type": "message", "content": [{"type": "output_text", "text": "abc"}]},
                    {"type": "function_call", "arguments": "{}"},
                    {"type": "reasoning", "summary": []},
                ]
            },
            5,
        ),
    ],
)
def test_responses_output_chars(response, chars):
    assert OX.responses_output_chars(response) == chars


@pytest.mark.parametrize(
    ("message", "chars"),
    [
        ({"content": None}, 0),
        ({"content": [{"type": "text", "text": "abcd"}, {"type": "brand_new", "text": "x"}]}, 4),
        ({"content": [{"type": "thinking", "thinking": "hmm"}]}, 3),
        ({"content": [{"type": "tool_use", "input": {"x": 1}}]}, len('{"x": 1}')),
        ({"content": [{"type": "tool_use", "input": '{"x":1}'}, None]}, 7),
    ],
)
def test_anthropic_message_output_chars(message, chars):
    assert AX.message_output_chars(message) == chars
