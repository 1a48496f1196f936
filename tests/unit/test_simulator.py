"""The provider simulator (llm_margin.simulator) against the real openai and anthropic SDKs,
plus table-driven checks of its pure token and fault-directive rules."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import urllib.error
import urllib.request

import anthropic
import httpx2
import openai
import pytest
from llm_margin.simulator import start_simulator
from llm_margin.simulator.faults import (
    Faults,
    Overrides,
    attempt_number,
    parse_faults,
    parse_overrides,
    status_for_attempt,
)
from llm_margin.simulator.tokens import (
    embedding_tokens,
    messages_tokens,
    output_tokens,
    pieces,
)

MODEL = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
USER = [{"role": "user", "content": "hello world"}]  # ceil(11/4) + 3 = 6 input tokens
USER_OUTPUT = 20 + 6 % 17


@pytest.fixture
def sim():
    simulator = start_simulator()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def oai(sim):
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=2)
    yield client
    client.close()


@pytest.fixture
def claude(sim):
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-test", max_retries=2)
    yield client
    client.close()


# --- pure rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([], 0),
        ("hello", 2 + 3),
        ([{"role": "user", "content": ""}], 3),
        ([{"role": "user", "content": "abcd"}], 1 + 3),
        ([{"role": "user", "content": "abcde"}], 2 + 3),
        (USER, 6),
        (
            [{"role": "system", "content": "x" * 8}, {"role": "user", "content": "y" * 9}],
            (2 + 3) + (3 + 3),
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "ab"}, {"type": "text", "text": "cd"}],
                }
            ],
            4,
        ),
        ([{"role": "tool", "tool_call_id": "c1", "content": "12345678"}], 5),
    ],
)
def test_messages_tokens(messages, expected):
    assert messages_tokens(messages) == expected


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [("abcd", 1), (["abcd", "abcde"], 3), ([1, 2, 3], 3), ([[1, 2], [3]], 3), ([], 0)],
)
def test_embedding_tokens(inputs, expected):
    assert embedding_tokens(inputs) == expected


@pytest.mark.parametrize(
    ("input_tokens", "limit", "override", "expected"),
    [
        (0, None, None, 20),
        (6, None, None, 26),
        (16, None, None, 36),
        (17, None, None, 20),
        (6, 10, None, 10),
        (6, 100, None, 26),
        (6, 10, 50, 50),
        (6, None, 0, 0),
    ],
)
def test_output_tokens(input_tokens, limit, override, expected):
    assert output_tokens(input_tokens, limit, override) == expected


@pytest.mark.parametrize(
    ("count", "prefix", "suffix", "joined", "n"),
    [
        (0, "", "", "", 0),
        (1, "", "", "alpha", 1),
        (3, "", "", "alpha bravo charlie", 3),
        (2, '{"answer": "', '"}', '{"answer": "alpha bravo"}', 2),
        (0, '{"answer": "', '"}', '{"answer": ""}', 1),
    ],
)
def test_pieces(count, prefix, suffix, joined, n):
    out = pieces(count, prefix, suffix)
    assert "".join(out) == joined and len(out) == n


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Faults()),
        ("", Faults()),
        ("429:1", Faults(statuses=((429, 1),))),
        ("500", Faults(statuses=((500, None),))),
        (" 429:1 , 503:2 ", Faults(statuses=((429, 1), (503, 2)))),
        ("slow:50,stream-slow:5", Faults(slow_ms=50, stream_slow_ms=5)),
        ("invalid-json,stream-cut:0", Faults(invalid_json=True, stream_cut=0)),
        ("STREAM-CUT:3", Faults(stream_cut=3)),
    ],
)
def test_parse_faults(header, expected):
    assert parse_faults(header) == expected


@pytest.mark.parametrize(
    "header", ["bogus", "429:x", "429:-1", "200:1", "slow", "stream-cut:", "invalid-json:1"]
)
def test_parse_faults_rejects_typos(header):
    with pytest.raises(ValueError):
        parse_faults(header)


@pytest.mark.parametrize(
    ("header", "attempts"),
    [
        ("", [None, None]),
        ("429:1", [429, None, None]),
        ("429", [429, 429, 429]),
        ("500:2", [500, 500, None]),
        ("429:1,500:1", [429, 500, None]),
        ("429:1,503", [429, 503, 503]),
    ],
)
def test_status_for_attempt(header, attempts):
    faults = parse_faults(header)
    assert [status_for_attempt(faults, a) for a in range(len(attempts))] == attempts


@pytest.mark.parametrize(("value", "expected"), [(None, 0), ("0", 0), ("2", 2), ("junk", 0)])
def test_attempt_number(value, expected):
    assert attempt_number(value) == expected


def test_parse_overrides():
    assert parse_overrides({}) == Overrides()
    got = parse_overrides(
        {
            "x-sim-output-tokens": "7",
            "x-sim-cache-read": "5",
            "x-sim-cache-write": "3",
            "x-sim-cache-write-1h": "2",
            "x-sim-reasoning": "4",
            "x-sim-web-searches": "6",
            "x-sim-file-searches": "1",
        }
    )
    assert got == Overrides(7, 5, 3, 2, 4, 6, 1)
    with pytest.raises(ValueError):
        parse_overrides({"x-sim-output-tokens": "many"})


# --- OpenAI SDK ----------------------------------------------------------------------------


def test_chat_completion_usage_and_echo(oai, sim):
    r = oai.chat.completions.create(model=MODEL, messages=USER)
    assert r.model == MODEL and r.id and r.created
    assert r.choices[0].finish_reason == "stop"
    assert len(r.choices[0].message.content.split()) == USER_OUTPUT
    u = r.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (
        6,
        USER_OUTPUT,
        6 + USER_OUTPUT,
    )
    assert u.prompt_tokens_details.cached_tokens == 0
    assert u.completion_tokens_details.reasoning_tokens == 0
    (req,) = sim.requests
    assert req.method == "POST" and req.path == "/v1/chat/completions"
    assert req.json["model"] == MODEL and req.headers["authorization"] == "Bearer sk-test"


def test_chat_overrides_cache_and_reasoning(oai):
    headers = {"x-sim-output-tokens": "12", "x-sim-cache-read": "100", "x-sim-reasoning": "4"}
    r = oai.chat.completions.create(model=MODEL, messages=USER, extra_headers=headers)
    u = r.usage
    assert u.prompt_tokens == 106 and u.prompt_tokens_details.cached_tokens == 100
    assert u.completion_tokens == 12 and u.completion_tokens_details.reasoning_tokens == 4
    assert len(r.choices[0].message.content.split()) == 12 - 4


def test_chat_max_tokens_caps_with_length(oai):
    r = oai.chat.completions.create(model=MODEL, messages=USER, max_completion_tokens=5)
    assert r.usage.completion_tokens == 5 and r.choices[0].finish_reason == "length"


@pytest.mark.parametrize("include_usage", [True, False])
def test_chat_stream(oai, include_usage):
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(oai.chat.completions.create(model=MODEL, messages=USER, stream=True, **kwargs))
    content = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(content) == USER_OUTPUT  # one token per chunk
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = [c.usage for c in chunks if c.usage is not None]
    if include_usage:
        assert chunks[-1].choices == [] and usage == [chunks[-1].usage]
        assert (usage[0].prompt_tokens, usage[0].completion_tokens) == (6, USER_OUTPUT)
    else:
        assert usage == [] and all(c.choices for c in chunks)


def test_async_client(sim):
    async def run():
        async with openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="k") as client:
            r = await client.chat.completions.create(model=MODEL, messages=USER)
            stream = await client.chat.completions.create(
                model=MODEL, messages=USER, stream=True, stream_options={"include_usage": True}
            )
            chunks = [c async for c in stream]
            return r, chunks

    r, chunks = asyncio.run(run())
    assert r.usage.completion_tokens == USER_OUTPUT
    assert chunks[-1].usage.completion_tokens == USER_OUTPUT


def test_json_mode_and_invalid_json(oai):
    fmt = {"type": "json_object"}
    r = oai.chat.completions.create(model=MODEL, messages=USER, response_format=fmt)
    assert set(json.loads(r.choices[0].message.content)) == {"answer"}
    bad = oai.chat.completions.create(
        model=MODEL,
        messages=USER,
        response_format=fmt,
        extra_headers={"x-sim-fault": "invalid-json"},
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad.choices[0].message.content)


def test_tool_calls(oai):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    r = oai.chat.completions.create(model=MODEL, messages=USER, tools=tools)
    (call,) = r.choices[0].message.tool_calls
    assert call.function.name == "lookup" and r.choices[0].finish_reason == "tool_calls"
    assert "answer" in json.loads(call.function.arguments)
    plain = oai.chat.completions.create(model=MODEL, messages=USER, tools=tools, tool_choice="none")
    assert plain.choices[0].message.tool_calls is None and plain.choices[0].message.content
    bad = oai.chat.completions.create(
        model=MODEL, messages=USER, tools=tools, extra_headers={"x-sim-fault": "invalid-json"}
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad.choices[0].message.tool_calls[0].function.arguments)
    chunks = list(oai.chat.completions.create(model=MODEL, messages=USER, tools=tools, stream=True))
    args = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert "answer" in json.loads(args)


def test_responses_create_and_stream(oai):
    headers = {"x-sim-cache-read": "7", "x-sim-reasoning": "5"}
    r = oai.responses.create(model=MODEL, input="hello", extra_headers=headers)  # 2 + 3 = 5
    u = r.usage
    assert r.status == "completed" and r.model == MODEL
    assert (u.input_tokens, u.input_tokens_details.cached_tokens) == (12, 7)
    assert (u.output_tokens, u.output_tokens_details.reasoning_tokens) == (25, 5)
    assert u.total_tokens == 37 and len(r.output_text.split()) == 20
    with oai.responses.stream(model=MODEL, input="hello", instructions="be brief") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 20 + (5 + 5) % 17
    assert final.usage.input_tokens == 10 and final.output_text.startswith(r.output_text)


SEARCHES = {"x-sim-web-searches": "2", "x-sim-file-searches": "1"}


def test_responses_search_calls_are_output_items(oai):
    r = oai.responses.create(model=MODEL, input="hello", extra_headers=SEARCHES)
    kinds = [item.type for item in r.output]
    assert kinds == ["web_search_call", "web_search_call", "file_search_call", "message"]
    with oai.responses.stream(model=MODEL, input="hello", extra_headers=SEARCHES) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert [item.type for item in final.output] == kinds
    assert final.output_text.split() == r.output_text.split()


def test_anthropic_web_searches_in_usage(claude):
    headers = {"x-sim-web-searches": "3"}
    m = claude.messages.create(model=CLAUDE, max_tokens=100, messages=USER, extra_headers=headers)
    assert m.usage.server_tool_use.web_search_requests == 3
    with claude.messages.stream(
        model=CLAUDE, max_tokens=100, messages=USER, extra_headers=headers
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    start = next(e for e in events if e.type == "message_start")
    assert start.message.usage.server_tool_use.web_search_requests == 0  # cumulative
    assert final.usage.server_tool_use.web_search_requests == 3
    plain = claude.messages.create(model=CLAUDE, max_tokens=100, messages=USER)
    assert plain.usage.server_tool_use is None


def test_embeddings(oai):
    e = oai.embeddings.create(model="text-embedding-3-small", input=["abcd", "abcdefgh"])
    assert (e.usage.prompt_tokens, e.usage.total_tokens) == (3, 3)
    assert [d.index for d in e.data] == [0, 1] and len(e.data[0].embedding) == 8
    again = oai.embeddings.create(model="m", input="abcd", encoding_format="float", dimensions=4)
    assert len(again.data[0].embedding) == 4
    assert math.isclose(sum(v * v for v in e.data[0].embedding), 1.0, rel_tol=1e-4)


def test_429_once_then_success(oai, sim):
    r = oai.chat.completions.create(
        model=MODEL, messages=USER, extra_headers={"x-sim-fault": "429:1"}
    )
    assert r.usage.completion_tokens == USER_OUTPUT
    attempts = [q.headers["x-stainless-retry-count"] for q in sim.requests]
    assert attempts == ["0", "1"]


def test_500_always_exhausts_retries(oai, sim):
    with pytest.raises(openai.InternalServerError) as info:
        oai.chat.completions.create(
            model=MODEL, messages=USER, extra_headers={"x-sim-fault": "500"}
        )
    assert info.value.status_code == 500 and info.value.body["type"] == "server_error"
    assert len(sim.requests) == 3  # first attempt + max_retries=2


def test_stream_cut(oai):
    seen = []
    with pytest.raises(openai.APIConnectionError):
        stream = oai.chat.completions.create(
            model=MODEL, messages=USER, stream=True, extra_headers={"x-sim-fault": "stream-cut:3"}
        )
        for chunk in stream:
            seen.append(chunk)
    assert len([c for c in seen if c.choices and c.choices[0].delta.content]) == 3
    assert all(c.usage is None for c in seen)


def test_slow_and_stream_slow(oai):
    headers = {"x-sim-fault": "slow:30,stream-slow:1", "x-sim-output-tokens": "3"}
    chunks = list(
        oai.chat.completions.create(model=MODEL, messages=USER, stream=True, extra_headers=headers)
    )
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 3


def test_unknown_fault_is_a_400(oai):
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model=MODEL, messages=USER, extra_headers={"x-sim-fault": "42"})


# --- Anthropic SDK -------------------------------------------------------------------------


def test_anthropic_create_with_cache(claude, sim):
    headers = {"x-sim-cache-read": "10", "x-sim-cache-write": "4", "x-sim-cache-write-1h": "2"}
    m = claude.messages.create(model=CLAUDE, max_tokens=100, messages=USER, extra_headers=headers)
    u = m.usage
    assert (u.input_tokens, u.output_tokens) == (6, USER_OUTPUT)  # excludes cache tokens
    assert (u.cache_read_input_tokens, u.cache_creation_input_tokens) == (10, 6)
    assert (
        u.cache_creation.ephemeral_5m_input_tokens,
        u.cache_creation.ephemeral_1h_input_tokens,
    ) == (4, 2)
    assert m.stop_reason == "end_turn" and m.model == CLAUDE
    assert len(m.content[0].text.split()) == USER_OUTPUT
    assert sim.requests[0].path == "/v1/messages"


def test_anthropic_stream(claude):
    headers = {"x-sim-cache-read": "10"}
    with claude.messages.stream(
        model=CLAUDE, max_tokens=100, messages=USER, extra_headers=headers
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds.count("text") == USER_OUTPUT
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens) == (6, 10)
    assert final.usage.output_tokens == USER_OUTPUT


def test_anthropic_speed_echoed_in_usage_only_when_asked(claude):
    m = claude.messages.create(model=CLAUDE, max_tokens=100, messages=USER, speed="fast")
    assert m.usage.speed == "fast"
    with claude.messages.stream(model=CLAUDE, max_tokens=100, messages=USER, speed="fast") as s:
        events = list(s)
    start = next(e for e in events if e.type == "message_start")
    delta = next(e for e in events if e.type == "message_delta")
    assert start.message.usage.speed == "fast" and delta.usage.speed == "fast"
    assert claude.messages.create(model=CLAUDE, max_tokens=100, messages=USER).usage.speed is None


_ADVISOR_TOOL = {"type": "advisor_20260301", "name": "advisor", "model": "claude-opus-4-6"}
_COMPACT = {"edits": [{"type": "compact_20260112"}]}


@pytest.mark.parametrize(
    ("extra", "kinds"),
    [
        ({}, None),
        ({"tools": [_ADVISOR_TOOL]}, ["advisor_message", "message"]),
        ({"context_management": _COMPACT}, ["compaction", "message"]),
        (
            {"tools": [_ADVISOR_TOOL], "context_management": _COMPACT},
            ["compaction", "advisor_message", "message"],
        ),
    ],
)
def test_anthropic_iterations_only_when_asked(claude, extra, kinds):
    m = claude.beta.messages.create(model=CLAUDE, max_tokens=100, messages=USER, **extra)
    assert [e.type for e in m.usage.iterations or ()] == (kinds or [])
    assert m.content[0].type == "text"  # the advisor is a server tool, not called by the answer
    if kinds:
        last = m.usage.iterations[-1]  # the message step is the top-level usage
        assert (last.input_tokens, last.output_tokens) == (
            m.usage.input_tokens,
            m.usage.output_tokens,
        )
    if "tools" in extra:
        assert m.usage.iterations[-2].model == "claude-opus-4-6"
    with claude.beta.messages.stream(
        model=CLAUDE, max_tokens=100, messages=USER, **extra
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    start = next(e for e in events if e.type == "message_start")
    delta = next(e for e in events if e.type == "message_delta")
    assert start.message.usage.iterations is None  # the final list comes with message_delta
    assert [e.type for e in delta.usage.iterations or ()] == (kinds or [])
    assert [e.type for e in final.usage.iterations or ()] == (kinds or [])


def test_anthropic_inference_geo_echoed_in_usage_only_when_asked(claude):
    m = claude.messages.create(model=CLAUDE, max_tokens=100, messages=USER, inference_geo="us")
    assert m.usage.inference_geo == "us"
    kw = {"model": CLAUDE, "max_tokens": 100, "messages": USER, "inference_geo": "us"}
    with claude.messages.stream(**kw) as s:
        events = list(s)
    start = next(e for e in events if e.type == "message_start")
    assert start.message.usage.inference_geo == "us"
    assert s.get_final_message().usage.inference_geo == "us"
    plain = claude.messages.create(model=CLAUDE, max_tokens=100, messages=USER)
    assert plain.usage.inference_geo is None


def test_anthropic_stream_cut_and_errors(claude, sim):
    # The anthropic SDK lets httpx2's incomplete-chunked-read error through unwrapped.
    with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):
        with claude.messages.stream(
            model=CLAUDE,
            max_tokens=100,
            messages=USER,
            extra_headers={"x-sim-fault": "stream-cut:2"},
        ) as stream:
            for _ in stream:
                pass
    sim.clear()
    m = claude.messages.create(
        model=CLAUDE, max_tokens=8, messages=USER, extra_headers={"x-sim-fault": "429:1"}
    )
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 8
    assert [q.headers["x-stainless-retry-count"] for q in sim.requests] == ["0", "1"]
    with pytest.raises(anthropic.NotFoundError):
        claude.models.retrieve("nope")


def test_anthropic_tool_use(claude):
    tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
    m = claude.messages.create(model=CLAUDE, max_tokens=100, messages=USER, tools=tools)
    assert m.stop_reason == "tool_use" and m.content[0].name == "lookup"
    with claude.messages.stream(model=CLAUDE, max_tokens=100, messages=USER, tools=tools) as stream:
        final = stream.get_final_message()
    assert final.content[0].input == m.content[0].input


# --- HTTP surface and process --------------------------------------------------------------


def test_healthz_404_and_recording(sim):
    with urllib.request.urlopen(sim.base_url + "/healthz") as resp:
        assert resp.status == 200 and resp.read() == b"ok"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(sim.base_url + "/v1/nope")
    assert info.value.code == 404 and "error" in json.loads(info.value.read())
    assert [q.path for q in sim.requests] == ["/healthz", "/v1/nope"]
    sim.clear()
    assert sim.requests == []


def test_non_loopback_refused():
    with pytest.raises(ValueError):
        start_simulator(host="0.0.0.0")
    proc = subprocess.run(
        [sys.executable, "-m", "llm_margin.simulator", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode != 0 and "allow-remote" in proc.stderr


def test_main_prints_url_and_exits_on_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "llm_margin.simulator", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("llm-margin simulator listening on http://127.0.0.1:")
        with urllib.request.urlopen(line.rsplit(" ", 1)[1] + "/healthz") as resp:
            assert resp.read() == b"ok"
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_anthropic_json_output_only_when_asked(claude):
    fmt = {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    m = claude.messages.create(
        model=CLAUDE, max_tokens=100, messages=USER, extra_body={"output_config": fmt}
    )
    assert set(json.loads(m.content[0].text)) == {"answer"}
    plain = claude.messages.create(model=CLAUDE, max_tokens=100, messages=USER)
    assert not plain.content[0].text.startswith("{")
