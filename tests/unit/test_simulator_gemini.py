"""The simulator's Gemini API (simulator/gemini_api.py) against the real google-genai SDK."""

from __future__ import annotations

import json

import pytest
from google import genai
from google.genai import errors, types
from llm_margin.simulator import start_simulator

MODEL = "gemini-2.5-flash"
PROMPT = "hello world"  # ceil(11/4) + 3 = 6 input tokens
OUTPUT = 20 + 6 % 17


@pytest.fixture
def sim():
    simulator = start_simulator()
    try:
        yield simulator
    finally:
        simulator.stop()


def client(sim, **headers: str) -> genai.Client:
    options = types.HttpOptions(base_url=sim.gemini_base_url, headers=headers or None)
    return genai.Client(api_key="test-key", http_options=options)


def test_generate_content_usage_and_shape(sim):
    headers = {"x-sim-reasoning": "5", "x-sim-cache-read": "4", "x-sim-cache-write": "9"}
    c = client(sim, **headers)  # kept: a Client closes its connections when collected
    r = c.models.generate_content(model=MODEL, contents=PROMPT)
    u = r.usage_metadata
    # the prompt count includes the cached part; thinking is apart from the visible answer
    assert (u.prompt_token_count, u.cached_content_token_count) == (6 + 4, 4)
    assert (u.candidates_token_count, u.thoughts_token_count) == (OUTPUT - 5, 5)
    assert u.total_token_count == 10 + OUTPUT
    assert len(r.text.split()) == OUTPUT - 5
    assert r.model_version == MODEL and r.response_id.startswith("sim")
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert sim.requests[-1].path == f"/v1/models/{MODEL}:generateContent"


def test_stream_last_event_has_the_final_usage(sim):
    c = client(sim, **{"x-sim-output-tokens": "3"})
    stream = c.models.generate_content_stream(
        model=MODEL, contents=[PROMPT], config={"system_instruction": "be brief"}
    )
    chunks = list(stream)
    assert [c.text for c in chunks] == ["alpha", " bravo", " charlie"]
    assert [c.usage_metadata.candidates_token_count for c in chunks] == [1, 2, 3]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.prompt_token_count == 6 + (3 + 2)  # system: one message


def test_service_tier_answered_in_the_header_and_usage_only_when_asked(sim):
    c = client(sim)
    config = {"service_tier": "flex"}
    r = c.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    assert sim.requests[-1].json["serviceTier"] == "flex"  # top-level, as google-genai sends it
    assert r.sdk_http_response.headers["x-gemini-service-tier"] == "flex"
    raw = c.models.generate_content(
        model=MODEL, contents=PROMPT, config={**config, "should_return_http_response": True}
    )
    assert json.loads(raw.sdk_http_response.body)["usageMetadata"]["serviceTier"] == "flex"
    chunks = list(c.models.generate_content_stream(model=MODEL, contents=PROMPT, config=config))
    assert chunks[-1].sdk_http_response.headers["x-gemini-service-tier"] == "flex"
    plain = c.models.generate_content(model=MODEL, contents=PROMPT)
    assert "x-gemini-service-tier" not in plain.sdk_http_response.headers
    assert "serviceTier" not in sim.requests[-1].json


@pytest.mark.parametrize(
    ("headers", "traffic"),
    [
        ({"X-Vertex-AI-LLM-Request-Type": "dedicated"}, types.TrafficType.PROVISIONED_THROUGHPUT),
        ({"X-Vertex-AI-LLM-Request-Type": "shared"}, types.TrafficType.ON_DEMAND),
        ({"X-Vertex-AI-LLM-Shared-Request-Type": "priority"}, types.TrafficType.ON_DEMAND_PRIORITY),
        (
            {
                "X-Vertex-AI-LLM-Request-Type": "shared",
                "X-Vertex-AI-LLM-Shared-Request-Type": "flex",
            },
            types.TrafficType.ON_DEMAND_FLEX,
        ),
        ({}, None),  # the Gemini API reports none
    ],
)
def test_traffic_type_answered_as_vertex_selects_it(sim, headers, traffic):
    c = client(sim, **headers)
    r = c.models.generate_content(model=MODEL, contents=PROMPT)
    assert r.usage_metadata.traffic_type == traffic
    chunks = list(c.models.generate_content_stream(model=MODEL, contents=PROMPT))
    assert {chunk.usage_metadata.traffic_type for chunk in chunks} == {traffic}


def test_unknown_request_type_is_refused(sim):
    c = client(sim, **{"X-Vertex-AI-LLM-Request-Type": "elsewhere"})
    with pytest.raises(errors.ClientError) as raised:
        c.models.generate_content(model=MODEL, contents=PROMPT)
    assert raised.value.code == 400


def test_json_output_max_tokens_and_function_calls(sim):
    c = client(sim)
    r = c.models.generate_content(
        model=MODEL,
        contents=PROMPT,
        config={"response_mime_type": "application/json", "max_output_tokens": 3},
    )
    assert json.loads(r.text) == {"answer": "alpha bravo charlie"}
    assert r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS

    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    # automatic function calling: a function call, then a text answer to its result
    r = c.models.generate_content(
        model=MODEL, contents="weather?", config=types.GenerateContentConfig(tools=[weather])
    )
    assert r.text and len(sim.requests) == 3
    assert "functionResponse" in json.dumps(sim.requests[-1].json)


def test_embeddings(sim):
    c = client(sim)
    r = c.models.embed_content(model="gemini-embedding-001", contents=["abcdefgh", "x"])
    assert [len(e.values) for e in r.embeddings] == [8, 8]
    assert r.usage_metadata.prompt_token_count == 2 + 1


def test_errors_and_attempts_counted_by_request_id(sim):
    c = client(sim)
    with pytest.raises(errors.ClientError) as info:
        c.models.generate_content(
            model=MODEL,
            contents=PROMPT,
            config={"http_options": {"headers": {"x-sim-fault": "429"}}},
        )
    assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"
    # google-genai numbers no attempts: the simulator counts those of one x-sim-request-id
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.001, max_delay=0.01, jitter=0)
    headers = {"x-sim-fault": "503:1,500:1", "x-sim-request-id": "one"}
    options = {"headers": headers, "retry_options": retry}
    r = c.models.generate_content(model=MODEL, contents=PROMPT, config={"http_options": options})
    assert r.usage_metadata.prompt_token_count == 6
    assert len([q for q in sim.requests if q.headers.get("x-sim-request-id") == "one"]) == 3


def test_google_search_tool_answers_grounded(sim):
    c = client(sim, **{"x-sim-web-searches": "2"})
    search = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    metadata = (
        c.models.generate_content(model=MODEL, contents=PROMPT, config=search)
        .candidates[0]
        .grounding_metadata
    )
    # the queries and an empty string, as the real list sometimes holds; one source per query
    assert metadata.web_search_queries == ["simulated search 1", "", "simulated search 2"]
    assert [chunk.web.uri for chunk in metadata.grounding_chunks] == [
        "https://example.com/1",
        "https://example.com/2",
    ]
    # a stream repeats the metadata on its last two chunks
    chunks = list(c.models.generate_content_stream(model=MODEL, contents=PROMPT, config=search))
    grounded = [bool(chunk.candidates[0].grounding_metadata) for chunk in chunks]
    assert grounded == [False] * (len(chunks) - 2) + [True, True]
    # without the tool the answer is not grounded, whatever the header says
    plain = c.models.generate_content(model=MODEL, contents=PROMPT)
    assert plain.candidates[0].grounding_metadata is None
    default = client(sim)  # kept: a Client closes its connections when collected
    one = default.models.generate_content(model=MODEL, contents=PROMPT, config=search)
    assert one.candidates[0].grounding_metadata.web_search_queries == ["simulated search 1", ""]
