"""Answers without usable usage (OpenAI-compatible servers that send none, ``{}`` or nulls),
through the real SDKs: the call is recorded as ``usage_source=estimated`` with a non-zero
estimate, never as a provider-reported call of zero tokens."""

from __future__ import annotations

import json
import math

import anthropic
import httpx2
import openai
import pytest
from instr_fixtures import tracing  # noqa: F401
from llm_margin import attributes as A

MESSAGES = [{"role": "user", "content": "Summarize the quarterly report in one line."}]
ANSWER = "Revenue grew 12% while costs stayed flat, so margins widened. " * 3


def _transport(body, sse: bool = False):
    def handler(request):
        if sse:
            text = "".join(
                (f"event: {e['type']}\n" if isinstance(e, dict) and "type" in e else "")
                + f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n"
                for e in body
            )
            return httpx2.Response(200, headers={"content-type": "text/event-stream"}, text=text)
        return httpx2.Response(200, json=body)

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def openai_client(body, sse: bool = False) -> openai.OpenAI:
    return openai.OpenAI(
        base_url="http://127.0.0.1:9/v1", api_key="sk-test", http_client=_transport(body, sse)
    )


def anthropic_client(body, sse: bool = False) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url="http://127.0.0.1:9", api_key="sk-test", http_client=_transport(body, sse)
    )


def only_call(tracing):  # noqa: F811
    calls = tracing.calls()
    assert len(calls) == 1, [c.name for c in calls]
    return calls[0].attributes


def chat(usage, **message) -> dict:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "llama-3-8b",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER, **message},
                "finish_reason": "stop",
            }
        ],
    }
    if usage != "absent":
        body["usage"] = usage
    return body


def message(usage) -> dict:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": ANSWER}],
        "stop_reason": "end_turn",
        "usage": usage,
    }


@pytest.mark.parametrize(
    "usage",
    [
        pytest.param({}, id="empty"),
        pytest.param({"prompt_tokens": None, "completion_tokens": None}, id="nulls"),
        pytest.param({"prompt_tokens": 12, "completion_tokens": None}, id="no-output"),
        pytest.param({"total_tokens": 40}, id="total-only"),
    ],
)
def test_chat_usage_without_counts_is_estimated_not_zero(tracing, usage):  # noqa: F811
    openai_client(chat(usage)).chat.completions.create(model="llama-3-8b", messages=MESSAGES)
    a = only_call(tracing)
    assert a[A.USAGE_SOURCE] == "estimated"
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == math.ceil(len(ANSWER) / 4)


def test_chat_usage_with_counts_is_the_providers(tracing):  # noqa: F811
    openai_client(chat({"prompt_tokens": 12, "completion_tokens": 0})).chat.completions.create(
        model="llama-3-8b", messages=MESSAGES
    )
    a = only_call(tracing)
    assert a[A.USAGE_SOURCE] == "provider"  # a reported zero is a count, not a gap
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (12, 0)


def test_chat_stream_usage_chunk_with_nulls_is_estimated(tracing):  # noqa: F811
    head = {"id": "c1", "object": "chat.completion.chunk", "model": "llama-3-8b", "created": 1}
    events = [
        {**head, "choices": [{"index": 0, "delta": {"content": ANSWER}}]},
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**head, "choices": [], "usage": {"prompt_tokens": None, "completion_tokens": None}},
        "[DONE]",
    ]
    stream = openai_client(events, sse=True).chat.completions.create(
        model="llama-3-8b", messages=MESSAGES, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream) == ANSWER
    a = only_call(tracing)
    assert a[A.USAGE_SOURCE] == "estimated"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == math.ceil(len(ANSWER) / 4)


@pytest.mark.parametrize(
    "usage",
    [
        pytest.param({"input_tokens": None, "output_tokens": 3}, id="no-input"),
        pytest.param({"input_tokens": 7}, id="no-output"),
    ],
)
def test_anthropic_usage_without_counts_is_estimated(tracing, usage):  # noqa: F811
    anthropic_client(message(usage)).messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES
    )
    a = only_call(tracing)
    assert a[A.USAGE_SOURCE] == "estimated"
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] > 0 and a[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0


def tokens(chars: int) -> int:
    return math.ceil(chars / 4)


def test_chat_without_usage_estimates_output_from_every_choice(tracing):  # noqa: F811
    body = chat("absent")
    args = '{"city": "Paris", "unit": "celsius"}'
    tool_call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": args}}
    body["choices"].append(
        {
            "index": 1,
            "message": {"role": "assistant", "content": None, "tool_calls": [tool_call]},
            "finish_reason": "tool_calls",
        }
    )
    openai_client(body).chat.completions.create(model="llama-3-8b", messages=MESSAGES, n=2)
    a = only_call(tracing)
    assert a[A.USAGE_SOURCE] == "estimated"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == tokens(len(ANSWER) + len(args))


def test_responses_without_usage_estimates_output(tracing):  # noqa: F811
    body = {
        "id": "resp_1",
        "object": "response",
        "model": "gpt-5-mini",
        "status": "completed",
        "output": [
            {
                "type": "message",
                "id": "m1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": ANSWER, "annotations": []}],
            }
        ],
        "usage": None,
    }
    openai_client(body).responses.create(model="gpt-5-mini", input="Summarize it.")
    a = only_call(tracing)
    assert a[A.USAGE_SOURCE] == "estimated"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == tokens(len(ANSWER))


def test_anthropic_without_usage_estimates_output(tracing):  # noqa: F811
    body = message(None)
    body["content"].append({"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}})
    anthropic_client(body).messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES
    )
    a = only_call(tracing)
    assert a[A.USAGE_SOURCE] == "estimated"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == tokens(len(ANSWER) + len('{"x": 1}'))
