"""Table-driven tests of the google-genai extract functions (_google_genai_extract.py)."""

from __future__ import annotations

import pytest
from google.genai import errors, types
from llm_margin.instrumentation import _google_genai_extract as GX
from llm_margin.instrumentation._types import RequestFacts, UsageTokens, usage_complete

GEN = RequestFacts(operation="generate_content", model="m")
GEN_JSON = RequestFacts(operation="generate_content", model="m", json_content=True)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, None),
        ({}, UsageTokens()),  # no counts at all: missing usage, estimated
        (
            {"prompt_token_count": 10, "candidates_token_count": 5, "total_token_count": 15},
            UsageTokens(10, 5),
        ),
        (  # thinking is billed as output (and is the reasoning count); cache read is a part
            {
                "prompt_token_count": 1000,
                "candidates_token_count": 40,
                "thoughts_token_count": 60,
                "cached_content_token_count": 800,
            },
            UsageTokens(1000, 100, cache_read_tokens=800, reasoning_tokens=60),
        ),
        (  # tool-use prompt tokens are input beside the prompt
            {
                "prompt_token_count": 10,
                "candidates_token_count": 2,
                "tool_use_prompt_token_count": 7,
            },
            UsageTokens(17, 2),
        ),
        ({"prompt_token_count": 9}, UsageTokens(9, 0)),  # the API leaves zero counts out
        ({"candidates_token_count": 4}, UsageTokens(None, 4)),  # no prompt count: estimated
        (  # raw JSON bodies are camelCase
            {"promptTokenCount": 12, "candidatesTokenCount": 3, "thoughtsTokenCount": 1},
            UsageTokens(12, 4, reasoning_tokens=1),
        ),
        (  # audio parts of the input and output, priced apart from text
            {
                "prompt_token_count": 500,
                "candidates_token_count": 30,
                "prompt_tokens_details": [
                    {"modality": "TEXT", "token_count": 100},
                    {"modality": "AUDIO", "token_count": 400},
                ],
                "candidates_tokens_details": [{"modality": "AUDIO", "token_count": 30}],
            },
            UsageTokens(500, 30, input_audio_tokens=400, output_audio_tokens=30),
        ),
        (  # garbage counts are unknown, never an exception
            {"prompt_token_count": "x", "candidates_token_count": -1, "prompt_tokens_details": 3},
            UsageTokens(),
        ),
        (  # the SDK's own model
            types.GenerateContentResponseUsageMetadata(
                prompt_token_count=20,
                candidates_token_count=5,
                thoughts_token_count=2,
                prompt_tokens_details=[types.ModalityTokenCount(modality="TEXT", token_count=20)],
            ),
            UsageTokens(20, 7, reasoning_tokens=2),
        ),
    ],
)
def test_generate_usage(usage, expected):
    assert GX.generate_usage(usage) == expected


@pytest.mark.parametrize(
    ("usage", "complete"),
    [
        (None, False),
        ({}, False),
        ({"prompt_token_count": 3}, True),
        ({"thoughts_token_count": 3}, False),
    ],
)
def test_generate_usage_complete(usage, complete):
    assert usage_complete(GX.generate_usage(usage)) is complete


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gemini-2.5-flash", "gemini-2.5-flash"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("projects/p/locations/l/publishers/google/models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("tunedModels/123", "tunedModels/123"),
        ("models/", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_model_name(value, expected):
    assert GX.model_name(value) == expected


@pytest.mark.parametrize(
    ("kwargs", "facts"),
    [
        (
            {"model": "models/gemini-2.5-flash", "contents": "hi"},
            GEN._replace(model="gemini-2.5-flash"),
        ),
        ({"contents": "hi"}, GEN._replace(model="unknown")),
        ({"model": "m", "config": {"response_mime_type": "application/json"}}, GEN_JSON),
        ({"model": "m", "config": types.GenerateContentConfig(response_json_schema={})}, GEN_JSON),
        ({"model": "m", "config": types.GenerateContentConfig(temperature=0.1)}, GEN),
        ({"model": "m", "config": {"responseMimeType": "application/json"}}, GEN_JSON),
        ({"model": "m", "config": None}, GEN),
    ],
)
def test_generate_request_facts(kwargs, facts):
    assert GX.generate_request_facts(kwargs) == facts
    assert GX.generate_stream_request_facts(kwargs) == facts._replace(stream=True)


@pytest.mark.parametrize(
    ("kwargs", "chars"),
    [
        ({"contents": "abcd"}, 4),
        ({"contents": ["ab", "cd"]}, 4),
        ({"contents": [{"role": "user", "parts": [{"text": "abc"}, {"inline_data": {}}]}]}, 3),
        ({"contents": [types.Content(role="user", parts=[types.Part(text="abcdef")])]}, 6),
        ({"contents": "ab", "config": {"system_instruction": "xyz"}}, 5),
        ({"contents": "ab", "config": types.GenerateContentConfig(system_instruction="xy")}, 4),
        ({"contents": 12}, 0),
        ({}, 0),
    ],
)
def test_generate_prompt_chars(kwargs, chars):
    assert GX.generate_prompt_chars(kwargs) == chars


def _response(parts, reason="STOP", usage=None, **fields):
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finish_reason": reason}],
        "usage_metadata": usage,
        **fields,
    }


@pytest.mark.parametrize(
    ("response", "request_facts", "invalid", "reasons"),
    [
        (_response([{"text": "hi"}]), GEN, False, ("stop",)),
        (_response([{"text": '{"a": 1}'}]), GEN_JSON, False, ("stop",)),
        (_response([{"text": '{"a": '}], "MAX_TOKENS"), GEN_JSON, True, ("max_tokens",)),
        # a thought summary is not the JSON answer
        (
            _response([{"text": "thinking", "thought": True}, {"text": "[]"}]),
            GEN_JSON,
            False,
            ("stop",),
        ),
        (_response([{"function_call": {"name": "f", "args": {}}}]), GEN_JSON, False, ("stop",)),
        ({"candidates": None}, GEN_JSON, False, ()),
        ({}, GEN, False, ()),
    ],
)
def test_generate_response_facts(response, request_facts, invalid, reasons):
    facts = GX.generate_response_facts(response, request_facts)
    assert (facts.invalid_output, facts.finish_reasons) == (invalid, reasons)


def test_generate_response_facts_of_the_sdk_model():
    response = types.GenerateContentResponse(
        model_version="models/gemini-2.5-flash",
        response_id="r1",
        candidates=[
            types.Candidate(
                content=types.Content(parts=[types.Part(text="ok")]), finish_reason="SAFETY"
            )
        ],
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=3, candidates_token_count=1
        ),
    )
    facts = GX.generate_response_facts(response, GEN)
    assert (facts.model, facts.response_id, facts.usage) == (
        "gemini-2.5-flash",
        "r1",
        UsageTokens(3, 1),
    )
    assert facts.finish_reasons == ("safety",)
    assert GX.response_output_chars(response) == 2 and GX.output_text(response) == ["ok"]


@pytest.mark.parametrize(
    ("response", "chars"),
    [
        (_response([{"text": "abcd"}, {"text": "ef", "thought": True}]), 6),
        (_response([{"function_call": {"name": "f", "args": {"k": "v"}}}]), len(str({"k": "v"}))),
        ({"candidates": [{}]}, 0),
        (None, 0),
    ],
)
def test_response_output_chars(response, chars):
    assert GX.response_output_chars(response) == chars


@pytest.mark.parametrize(
    ("response", "usage"),
    [
        ({"usage_metadata": {"prompt_token_count": 5, "total_token_count": 5}}, UsageTokens(5, 0)),
        ({"usageMetadata": {"promptTokenCount": 2}}, UsageTokens(2, 0)),
        ({"usage_metadata": None}, None),
        ({}, None),
    ],
)
def test_embed_usage(response, usage):
    assert GX.embed_response_facts(response, GEN).usage == usage


def test_embed_prompt_chars_and_facts():
    assert GX.embed_prompt_chars({"contents": ["ab", "cde"]}) == 5
    assert GX.embed_prompt_chars({"content": {"parts": [{"text": "abc"}]}}) == 3
    facts = GX.embed_request_facts({"model": "models/gemini-embedding-001"})
    assert (facts.operation, facts.model) == ("embeddings", "gemini-embedding-001")


def test_stream_accumulator_takes_the_last_usage():
    acc = GX.GenerateStreamAccumulator(GEN_JSON)
    acc.add(
        _response(
            [{"text": '{"a": '}], None, {"prompt_token_count": 9, "candidates_token_count": 1}
        )
    )
    assert not acc.usage_complete()
    acc.add({"candidates": [], "usage_metadata": None})  # a chunk without usage keeps the last
    last_usage = {"prompt_token_count": 9, "candidates_token_count": 2, "thoughts_token_count": 4}
    acc.add(_response([{"text": "1}"}], "STOP", last_usage, model_version="gemini-2.5-flash"))
    assert acc.usage_complete()
    facts = acc.facts()
    assert facts.usage == UsageTokens(9, 6, reasoning_tokens=4)
    assert (facts.model, facts.finish_reasons, facts.invalid_output) == (
        "gemini-2.5-flash",
        ("stop",),
        False,
    )
    assert acc.estimated_output_tokens() == 2  # 8 characters in 2 chunks


def test_stream_accumulator_odd_chunks_never_raise():
    acc = GX.GenerateStreamAccumulator(GEN_JSON)
    for chunk in (None, 3, "x", {"candidates": "nope"}, {"candidates": [None]}):
        assert acc.add(chunk) is False
    assert not acc.usage_complete() and acc.facts().usage is None
    assert acc.estimated_output_tokens() == 0


# --- the service tier ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (types.ServiceTier.FLEX, "flex"),
        (types.ServiceTier.PRIORITY, "priority"),
        (types.ServiceTier.STANDARD, "standard"),
        (types.ServiceTier.UNSPECIFIED, None),  # the default: says nothing
        ("flex", "flex"),
        ("PRIORITY", "priority"),  # the SDK takes enum names too
        ("SERVICE_TIER_FLEX", "flex"),  # the API's older spelling
        ("", None),
        (None, None),
        (3, None),
        (b"flex", None),
        (["flex"], None),
        ("x" * 100, None),
    ],
)
def test_service_tier(value, expected):
    assert GX.service_tier(value) == expected


def test_generate_request_service_tier():
    configs = [
        ({"service_tier": "flex"}, "flex"),
        ({"service_tier": "FLEX"}, "flex"),
        ({"serviceTier": "priority"}, "priority"),
        (types.GenerateContentConfig(service_tier=types.ServiceTier.PRIORITY), "priority"),
        (types.GenerateContentConfig(service_tier="standard"), "standard"),
        (types.GenerateContentConfig(temperature=0.1), None),
        ({"service_tier": 2}, None),
        ({}, None),
        (None, None),
        ("flex", None),  # not a config
    ]
    for stream in (False, True):
        read = GX.generate_stream_request_facts if stream else GX.generate_request_facts
        got = [read({"model": "m", "contents": "hi", "config": c}).service_tier for c, _ in configs]
        assert got == [tier for _, tier in configs]


def _served(usage_tier=None, headers=None):
    """An SDK response as google-genai 3.6 parses it: ``usage_metadata`` has no tier (the SDK
    drops it), the headers are kept."""
    response = types.GenerateContentResponse(
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=3, candidates_token_count=1
        ),
        sdk_http_response=types.HttpResponse(headers=headers),
    )
    if usage_tier is not None:  # an SDK that parses it
        object.__setattr__(response.usage_metadata, "service_tier", usage_tier)
    return response


def test_generate_response_service_tier():
    responses = [
        (_served(headers={"x-gemini-service-tier": "flex"}), "flex"),
        (_served(headers={"X-Gemini-Service-Tier": "PRIORITY"}), "priority"),  # aiohttp's keys
        (_served(headers={"x-gemini-service-tier": "standard"}), "standard"),  # downgraded
        (_served(headers={"content-type": "application/json"}), None),
        (_served(), None),
        (_served(types.ServiceTier.FLEX, {"x-gemini-service-tier": "standard"}), "flex"),
        (_served(types.ServiceTier.UNSPECIFIED, {"x-gemini-service-tier": "flex"}), "flex"),
        # the raw JSON body (an answer priced after the SDK raised)
        ({"usageMetadata": {"promptTokenCount": 3, "serviceTier": "priority"}}, "priority"),
        ({"usage_metadata": {"prompt_token_count": 3, "service_tier": "FLEX"}}, "flex"),
        ({"usageMetadata": {"promptTokenCount": 3}}, None),
        ({"usageMetadata": {"serviceTier": 5}, "sdk_http_response": {"headers": 7}}, None),
        ({"sdk_http_response": {"headers": {"x-gemini-service-tier": None}}}, None),
        ({}, None),
    ]
    got = [GX.generate_response_facts(response, GEN).service_tier for response, _ in responses]
    assert got == [tier for _, tier in responses]


def _tier_chunk(text, reason=None, usage_tier=None, header_tier=None):
    usage = {"prompt_token_count": 3, "candidates_token_count": 1}
    if usage_tier is not None:
        usage["service_tier"] = usage_tier
    chunk = _response([{"text": text}], reason, usage)
    if header_tier is not None:
        chunk["sdk_http_response"] = {"headers": {"x-gemini-service-tier": header_tier}}
    return chunk


@pytest.mark.parametrize(
    ("chunks", "tier"),
    [
        ([_tier_chunk("a", None, "flex"), _tier_chunk("b", "STOP", "flex")], "flex"),
        # the last chunk's usage wins
        ([_tier_chunk("a", None, "priority"), _tier_chunk("b", "STOP", "standard")], "standard"),
        # no tier in the usage: the response's header
        (
            [_tier_chunk("a", None, None, "priority"), _tier_chunk("b", "STOP", None, "priority")],
            "priority",
        ),
        ([_tier_chunk("a", None, None, "flex"), _tier_chunk("b", "STOP")], "flex"),
        # odd chunks: no usage tier, the header seen is kept
        ([_tier_chunk("a", None, None, "flex"), {"usage_metadata": "odd"}, None, 3], "flex"),
    ],
)
def test_stream_service_tier(chunks, tier):
    acc = GX.GenerateStreamAccumulator(GEN._replace(stream=True))
    for chunk in chunks:
        acc.add(chunk)
    assert acc.facts().service_tier == tier


# --- the Vertex AI traffic type -----------------------------------------------------------
_TRAFFIC_VALUES = [
    (types.TrafficType.ON_DEMAND, "on_demand"),
    (types.TrafficType.PROVISIONED_THROUGHPUT, "provisioned_throughput"),
    (types.TrafficType.ON_DEMAND_PRIORITY, "on_demand_priority"),
    (types.TrafficType.ON_DEMAND_FLEX, "on_demand_flex"),
    (types.TrafficType.TRAFFIC_TYPE_UNSPECIFIED, None),  # says nothing
    ("PROVISIONED_THROUGHPUT", "provisioned_throughput"),  # the raw JSON body's
    ("on_demand", "on_demand"),
    (" ON_DEMAND ", "on_demand"),
    ("ON_DEMAND_SOMETHING_NEW", "on_demand_something_new"),  # kept, to be priced or not
    ("x" * 40, "x" * 40),
    ("x" * 41, None),
    ("", None),
    ("on demand", None),
    ("on_demand\x1b[31m", None),
    ("_on_demand", None),
    (None, None),
    (1, None),
    (True, None),
    (["ON_DEMAND"], None),
    (b"ON_DEMAND", None),
]


@pytest.mark.parametrize(("value", "expected"), _TRAFFIC_VALUES)
def test_traffic_type(value, expected):
    assert GX.traffic_type(value) == expected


def _vertex(traffic=None, **usage):
    """An SDK response as Vertex AI's answer parses into google-genai 3.6's types."""
    return types.GenerateContentResponse(
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=3, candidates_token_count=1, traffic_type=traffic, **usage
        ),
    )


def test_generate_response_traffic_type():
    """Each value of the table as an SDK model's and a JSON body's usage traffic type."""
    bodies = [
        {"usageMetadata": {"promptTokenCount": 3, "trafficType": v}} for v, _ in _TRAFFIC_VALUES
    ]
    got = [GX.generate_response_facts(body, GEN).traffic_type for body in bodies]
    assert got == [kind for _, kind in _TRAFFIC_VALUES]
    models = [
        (_vertex(types.TrafficType.PROVISIONED_THROUGHPUT), "provisioned_throughput"),
        (_vertex("ON_DEMAND"), "on_demand"),
        (_vertex(), None),
        (types.GenerateContentResponse(), None),  # no usage at all
        ({"usage_metadata": {"prompt_token_count": 3, "traffic_type": "ON_DEMAND"}}, "on_demand"),
        ({"usageMetadata": "odd"}, None),
        ({}, None),
    ]
    got = [GX.generate_response_facts(response, GEN).traffic_type for response, _ in models]
    assert got == [kind for _, kind in models]


def test_traffic_type_names_the_tier_served():
    """Vertex AI reports Priority and Flex PayGo as traffic types: without a tier in the usage
    or the header, the traffic type's is the one served (and billed); a tier named wins."""
    responses = [
        (_vertex("ON_DEMAND"), "standard"),
        (_vertex("ON_DEMAND_PRIORITY"), "priority"),
        (_vertex("ON_DEMAND_FLEX"), "flex"),
        (_vertex("PROVISIONED_THROUGHPUT"), None),  # not a pay-as-you-go tier
        (_vertex("ON_DEMAND_OFFPEAK"), None),
        (_vertex("TRAFFIC_TYPE_UNSPECIFIED"), None),
        ({"usageMetadata": {"serviceTier": "priority", "trafficType": "ON_DEMAND"}}, "priority"),
        (
            {
                "usageMetadata": {"trafficType": "ON_DEMAND_FLEX"},
                "sdk_http_response": {"headers": {"x-gemini-service-tier": "standard"}},
            },
            "standard",
        ),
    ]
    got = [GX.generate_response_facts(response, GEN).service_tier for response, _ in responses]
    assert got == [tier for _, tier in responses]


def _traffic_chunk(text, reason=None, traffic=None):
    usage = {"prompt_token_count": 3, "candidates_token_count": 1}
    if traffic is not None:
        usage["traffic_type"] = traffic
    return _response([{"text": text}], reason, usage)


@pytest.mark.parametrize(
    ("chunks", "traffic"),
    [
        (
            [
                _traffic_chunk("a", None, "PROVISIONED_THROUGHPUT"),
                _traffic_chunk("b", "STOP", "PROVISIONED_THROUGHPUT"),
            ],
            "provisioned_throughput",
        ),
        # the last chunk carrying usage is the call's
        (
            [
                _traffic_chunk("a", None, "PROVISIONED_THROUGHPUT"),
                _traffic_chunk("b", "STOP", "ON_DEMAND"),
            ],
            "on_demand",
        ),
        ([_traffic_chunk("a", None, "ON_DEMAND"), _traffic_chunk("b", "STOP")], None),
        # a chunk without usage leaves the last usage seen
        (
            [_traffic_chunk("a", "STOP", "PROVISIONED_THROUGHPUT"), {"candidates": []}],
            "provisioned_throughput",
        ),
        ([_traffic_chunk("a"), {"usage_metadata": "odd"}, None, 3], None),
        (
            [_vertex("PROVISIONED_THROUGHPUT"), _vertex(types.TrafficType.PROVISIONED_THROUGHPUT)],
            "provisioned_throughput",
        ),
    ],
)
def test_stream_traffic_type(chunks, traffic):
    acc = GX.GenerateStreamAccumulator(GEN._replace(stream=True))
    for chunk in chunks:
        acc.add(chunk)
    assert acc.facts().traffic_type == traffic


@pytest.mark.parametrize(
    ("client_kwargs", "expected"),
    [
        ({"api_key": "k"}, ("generativelanguage.googleapis.com", 443, "gcp.gemini")),
        (
            {"vertexai": True, "api_key": "k"},
            ("aiplatform.googleapis.com", 443, "gcp.vertex_ai"),
        ),
        (  # elsewhere (a proxy, the simulator): still the SDK's provider
            {"api_key": "k", "http_options": {"base_url": "http://127.0.0.1:8080"}},
            ("127.0.0.1", 8080, "gcp.gemini"),
        ),
    ],
)
def test_server_names_the_provider(client_kwargs, expected):
    from google import genai
    from llm_margin.instrumentation import _common
    from llm_margin.instrumentation.google_genai import server

    _common.reset_server_cache()
    client = genai.Client(**client_kwargs)
    assert server(client.models) == server(client.aio.models) == expected
    assert server(object()) == (None, None, "gcp.gemini")


class _Coded(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (errors.ClientError(429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}), 429),
        (errors.ServerError(503, {"error": {"code": 503, "message": "overloaded"}}), 503),
        (errors.APIError(0, {"error": {"code": 400, "message": "bad"}}), 400),  # from the body
        (errors.ClientError(404, {}), 404),
        (errors.UnknownFunctionCallArgumentError("x"), None),  # the SDK's own, no answer
        (ConnectionError("refused"), None),  # never answered
        (_Coded("RESOURCE_EXHAUSTED"), None),  # a gRPC-style name, not an HTTP status
        (_Coded(True), None),
        (_Coded(42), None),
        (_Coded(None), None),
        (SystemExit(500), None),  # an exit status, however it looks
    ],
)
def test_error_status_code(exc, expected):
    assert GX.error_status_code(exc) == expected


# --- Grounding with Google Search -----------------------------------------------------------
SEARCH = GEN._replace(google_search=True)
SEARCH_TOOL = types.Tool(google_search=types.GoogleSearch())


@pytest.mark.parametrize(
    ("config", "asked"),
    [
        (types.GenerateContentConfig(tools=[SEARCH_TOOL]), True),
        ({"tools": [{"google_search": {}}]}, True),  # an empty dict is still the tool
        ({"tools": [{"googleSearch": {}}]}, True),
        ({"tools": [{"google_search_retrieval": {}}]}, True),  # Gemini 1.5's form
        ({"tools": [len, {"function_declarations": [{"name": "f"}]}, SEARCH_TOOL]}, True),
        # billed otherwise (Vertex AI web grounding for enterprise, Maps): not Google Search
        (types.GenerateContentConfig(tools=[types.Tool(enterprise_web_search={})]), False),
        ({"tools": [{"google_maps": {}}]}, False),
        ({"tools": [{"google_search": None}]}, False),
        (types.GenerateContentConfig(temperature=0.1), False),
        ({"tools": "google_search"}, False),
        ({"tools": [None, 3, "x"]}, False),
        (None, False),
    ],
)
def test_google_search_asked(config, asked):
    assert GX.google_search_asked(config) is asked
    facts = GX.generate_request_facts({"model": "m", "config": config})
    assert facts.google_search is asked


def _grounded(queries=None, chunks=None, usage=None, candidates=1):
    metadata = {"web_search_queries": queries, "grounding_chunks": chunks}
    candidate = {"content": {"parts": [{"text": "a"}]}, "grounding_metadata": metadata}
    return {"candidates": [candidate] * candidates, "usage_metadata": usage}


USAGE = {"prompt_token_count": 10, "candidates_token_count": 2}
WEB = [{"web": {"uri": "https://example.com", "title": "example.com"}}]


@pytest.mark.parametrize(
    ("response", "request_facts", "usage"),
    [
        (_grounded(["a", "b", "c"], WEB, USAGE), SEARCH, UsageTokens(10, 2, web_search_calls=3)),
        # empty queries are not billed; a query listed twice is one query
        (
            _grounded(["a", "", " ", "a", "b"], WEB, USAGE),
            SEARCH,
            UsageTokens(10, 2, web_search_calls=2),
        ),
        # the queries of several candidates, each counted once
        (
            _grounded(["a", "b"], WEB, USAGE, candidates=2),
            SEARCH,
            UsageTokens(10, 2, web_search_calls=2),
        ),
        # grounded on the web with no query listed: it searched at least once
        (_grounded(None, WEB, USAGE), SEARCH, UsageTokens(10, 2, web_search_calls=1)),
        (_grounded([""], WEB, USAGE), SEARCH, UsageTokens(10, 2, web_search_calls=1)),
        # the tool given but no search made (or a Maps source only): nothing to bill
        (_grounded(None, None, USAGE), SEARCH, UsageTokens(10, 2)),
        (
            _grounded([], [{"maps": {"uri": "https://maps.example"}}], USAGE),
            SEARCH,
            UsageTokens(10, 2),
        ),
        (_response([{"text": "a"}], "STOP", USAGE), SEARCH, UsageTokens(10, 2)),
        # without the Google Search tool, queries are not Google Search grounding
        (_grounded(["a"], WEB, USAGE), GEN, UsageTokens(10, 2)),
        # no usage (tokens estimated): the searches are billed all the same
        (_grounded(["a", "b"], WEB, None), SEARCH, UsageTokens(web_search_calls=2)),
        (_grounded(None, None, None), SEARCH, None),
        # the raw JSON's camelCase
        (
            {
                "candidates": [{"groundingMetadata": {"webSearchQueries": ["q1", "q2"]}}],
                "usageMetadata": USAGE,
            },
            SEARCH,
            UsageTokens(10, 2, web_search_calls=2),
        ),
        # garbage never raises
        (_grounded("abc", "web", USAGE), SEARCH, UsageTokens(10, 2)),
        (_grounded([1, None, ["x"]], [None, 3], USAGE), SEARCH, UsageTokens(10, 2)),
        ({"candidates": [None, 3, {"grounding_metadata": 5}]}, SEARCH, None),
        ({"candidates": "x"}, SEARCH, None),
    ],
)
def test_web_search_queries_of_a_response(response, request_facts, usage):
    assert GX.generate_response_facts(response, request_facts).usage == usage


def test_web_search_queries_of_the_sdk_model():
    response = types.GenerateContentResponse(
        candidates=[
            types.Candidate(
                content=types.Content(role="model", parts=[types.Part(text="Spain won.")]),
                finish_reason="STOP",
                grounding_metadata=types.GroundingMetadata(
                    web_search_queries=["euro 2024 winner", "", "euro 2024 final score"],
                    grounding_chunks=[
                        types.GroundingChunk(web=types.GroundingChunkWeb(uri="https://x.example"))
                    ],
                ),
            )
        ],
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=8, candidates_token_count=3
        ),
    )
    assert GX.generate_response_facts(response, SEARCH).usage == UsageTokens(
        8, 3, web_search_calls=2
    )


@pytest.mark.parametrize(
    ("chunks", "searches"),
    [
        # the metadata repeated on the last chunks: counted once
        ([_grounded(["a", "b"], WEB), _grounded(["a", "", "b"], WEB, USAGE)], 2),
        # split across chunks: the queries of both
        ([_grounded(["a"]), _grounded(None, WEB), _grounded(["b"], None, USAGE)], 2),
        # grounded on the web, no query listed in any chunk
        ([_grounded(None, WEB), _grounded(None, None, USAGE)], 1),
        ([_response([{"text": "a"}], None), _response([{"text": "b"}], "STOP", USAGE)], None),
    ],
)
def test_stream_counts_each_query_once(chunks, searches):
    acc = GX.GenerateStreamAccumulator(SEARCH)
    for chunk in chunks:
        acc.add(chunk)
    assert acc.facts().usage == UsageTokens(10, 2, web_search_calls=searches)
    # without the tool, nothing is read
    plain = GX.GenerateStreamAccumulator(GEN)
    for chunk in chunks:
        plain.add(chunk)
    assert plain.facts().usage == UsageTokens(10, 2)


def test_stream_keeps_searches_when_it_ends_without_usage():
    # a stream cut after its grounded chunk: the searches were made and are billed
    acc = GX.GenerateStreamAccumulator(SEARCH)
    acc.add(_grounded(["a", "b", "c"], WEB))
    assert acc.facts().usage == UsageTokens(web_search_calls=3)
