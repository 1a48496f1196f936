"""Pure functions reading the google-genai SDK's ``generate_content`` and ``embed_content``
requests and responses (Gemini API and Vertex AI alike).

``usage_metadata`` (SDK models, or the raw camelCase JSON of a body) maps as genai-prices reads
Gemini usage: input is ``prompt_token_count`` (the whole prompt, cached content included) plus
``tool_use_prompt_token_count``; output is ``candidates_token_count`` plus
``thoughts_token_count`` (thinking is billed as output), the thoughts also being the reasoning
count; ``cached_content_token_count`` is the cache read. The API's JSON leaves zero counts out,
so once the prompt count is known an absent output count is a zero, not a missing one.
A stream's usage is its last chunk's.

The service tier (``flex`` at a discount, ``priority`` at a premium) is asked for with
``config.service_tier``. The tier served, which is the one billed (priority is downgraded to
standard when over its limit), is ``usage_metadata.service_tier``, else the
``x-gemini-service-tier`` response header: google-genai 3.6 drops the usage field when it
parses a response but keeps the headers (``sdk_http_response``).

Vertex AI reports how it served a call as ``usage_metadata.traffic_type`` (a stream: its last
chunk carrying usage): ``ON_DEMAND`` (pay as you go, also a call over the Provisioned
Throughput quota), ``ON_DEMAND_PRIORITY`` and ``ON_DEMAND_FLEX`` (Priority and Flex PayGo),
``ON_DEMAND_OFFPEAK``, or ``PROVISIONED_THROUGHPUT`` (paid by the subscription, not per token).
It is recorded lower-cased. Vertex reports its PayGo tiers there rather than as a service tier,
so when neither the usage nor the header names the tier, the traffic type's tier is the one
served (``on_demand`` standard, ``on_demand_priority`` priority, ``on_demand_flex`` flex): a
priority request downgraded to standard says ``on_demand``.

Grounding with Google Search (the ``google_search`` tool, or the older
``google_search_retrieval``) is billed beside the tokens. Each candidate's
``grounding_metadata.web_search_queries`` lists the queries the model ran; the web search count
recorded is the number of distinct non-empty queries of the response (Google bills Gemini 3 per
unique query and ignores the empty strings the list sometimes holds). A stream's grounding
metadata may come in several chunks, repeated or split: the distinct queries over all its chunks
are counted, so a repeated list counts once. A response grounded on web pages
(``grounding_chunks[].web``) that lists no query counts one. Gemini 2.x bills per grounded
prompt rather than per query: the processor prices those models' searches as one (see
docs/pricing-and-linking.md). Only requests that gave the Google Search tool are counted:
Vertex AI's ``enterprise_web_search`` and Google Maps grounding are billed otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

from ._types import (
    RequestFacts,
    ResponseFacts,
    UsageTokens,
    as_int,
    estimate_tokens,
    get,
    given,
    is_json,
)

_CAMEL: dict[str, str] = {}


def _get(obj: Any, name: str) -> Any:
    """``obj.name`` for an SDK model, or the snake_case or camelCase key of a JSON dict."""
    value = get(obj, name)
    if value is None and isinstance(obj, Mapping):
        camel = _CAMEL.get(name)
        if camel is None:
            head, *rest = name.split("_")
            camel = _CAMEL[name] = head + "".join(word.title() for word in rest)
        value = obj.get(camel)
    return value


def model_name(value: Any) -> str | None:
    """The bare model id: ``models/gemini-2.5-flash`` and Vertex resource names
    (``projects/.../publishers/google/models/gemini-2.5-flash``) name ``gemini-2.5-flash``,
    the id genai-prices knows."""
    if not isinstance(value, str) or not value:
        return None
    _, _, tail = value.rpartition("models/")
    return tail or None


def contents_chars(value: Any, _depth: int = 0) -> int:
    """Characters of text in ``contents`` (a string, Parts, Contents, their dicts, lists)."""
    if _depth > 6 or value is None:
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(contents_chars(item, _depth + 1) for item in value)
    parts = _get(value, "parts")
    if parts is not None:
        return contents_chars(parts, _depth + 1)
    text = _get(value, "text")
    return len(text) if isinstance(text, str) else 0


def _json_asked(config: Any) -> bool:
    if not given(config):
        return False
    return _get(config, "response_mime_type") == "application/json" or any(
        given(_get(config, name)) for name in ("response_schema", "response_json_schema")
    )


def service_tier(value: Any) -> str | None:
    """A tier as a lowercase name (``flex``, ``standard``, ``priority``): a ``ServiceTier``,
    a dict config's string, the header's, or an enum name (``FLEX``, ``SERVICE_TIER_FLEX``).
    None for ``unspecified`` (the default, standard: it says nothing) and for anything else."""
    if isinstance(value, Enum):
        value = value.value
    if not isinstance(value, str) or len(value) > 40:
        return None
    tier = value.strip().lower().removeprefix("service_tier_")
    return tier if tier and tier != "unspecified" else None


_TIER_HEADER = "x-gemini-service-tier"


def _header(headers: Any, name: str) -> Any:
    """A response header by its lowercase name: httpx2 lowercases the keys, aiohttp and
    requests keep the server's spelling."""
    if not isinstance(headers, Mapping):
        return None
    value = headers.get(name)
    if value is None:
        for key, item in headers.items():
            if isinstance(key, str) and key.lower() == name:
                return item
    return value


def _usage_field(usage: Any, name: str) -> Any:
    """``name`` (``service_tier``, ``traffic_type``) of a JSON dict's usage, or of an SDK
    model's fields. Read from the model's ``__dict__``: google-genai 3.6's usage has no
    ``service_tier`` field (older ones no ``traffic_type``), and asking pydantic for a missing
    attribute raises inside, 3 µs per response."""
    if isinstance(usage, Mapping):
        return _get(usage, name)
    fields = getattr(usage, "__dict__", None)
    return fields.get(name) if isinstance(fields, dict) else None


def traffic_type(value: Any) -> str | None:
    """A Vertex AI traffic type as a lowercase name (``on_demand``, ``provisioned_throughput``,
    ...): a ``TrafficType``, or its string in a JSON body. None for
    ``TRAFFIC_TYPE_UNSPECIFIED`` (it says nothing) and for anything but a name."""
    if isinstance(value, Enum):
        value = value.value
    if not isinstance(value, str):
        return None
    kind = value.strip().lower()
    if _TRAFFIC.fullmatch(kind) is None or kind.startswith("traffic_type_"):
        return None
    return kind


# A traffic type as the API spells them (ON_DEMAND, PROVISIONED_THROUGHPUT, ...), lower-cased.
_TRAFFIC = re.compile(r"[a-z][a-z0-9_]{0,39}")


# The service tier each Vertex AI pay-as-you-go traffic type is billed at.
_TRAFFIC_TIERS = {
    "on_demand": "standard",
    "on_demand_priority": "priority",
    "on_demand_flex": "flex",
}


def served_tier(usage: Any, http_response: Any, traffic: str | None = None) -> str | None:
    """The tier a response was served (and billed) at, from its ``usage_metadata``, else from
    the headers of its ``sdk_http_response``, else from its Vertex AI traffic type."""
    tier = service_tier(_usage_field(usage, "service_tier"))
    if tier is None and http_response is not None:
        tier = service_tier(_header(_get(http_response, "headers"), _TIER_HEADER))
    if tier is None and traffic is not None:
        tier = _TRAFFIC_TIERS.get(traffic)
    return tier


def error_status_code(exc: BaseException) -> int | None:
    """The HTTP status of the answer a google-genai exception reports: ``code`` of an
    ``APIError`` (``ClientError`` 4xx, ``ServerError`` 5xx), which names it ``code``, not
    ``status_code`` as openai and anthropic do. None for anything else: a transport error, the
    SDK's own ``ValueError`` s, a ``SystemExit`` (whose ``code`` is an exit status), a code that
    is not an HTTP status."""
    if not isinstance(exc, Exception):
        return None
    code = getattr(exc, "code", None)
    return code if type(code) is int and 100 <= code <= 599 else None  # no bool, no enum


# The tools whose grounding is Google Search's (the GoogleSearch tool; GoogleSearchRetrieval
# for Gemini 1.5). enterprise_web_search (Vertex AI) and google_maps are billed otherwise.
_SEARCH_TOOLS = ("google_search", "google_search_retrieval")


def google_search_asked(config: Any) -> bool:
    """Whether ``config.tools`` gives the Google Search tool (``types.Tool`` s or their dicts,
    snake_case or camelCase; Python functions given as tools are skipped)."""
    if not given(config):
        return False
    tools = _get(config, "tools")
    if not isinstance(tools, (list, tuple)):
        return False
    return any(_get(tool, name) is not None for tool in tools[:64] for name in _SEARCH_TOOLS)


def generate_request_facts(kwargs: Mapping[str, Any]) -> RequestFacts:
    """Facts of one ``generate_content`` request."""
    config = kwargs.get("config")
    if not given(config):
        return RequestFacts(
            operation="generate_content", model=model_name(kwargs.get("model")) or "unknown"
        )
    return RequestFacts(
        operation="generate_content",
        model=model_name(kwargs.get("model")) or "unknown",
        json_content=_json_asked(config),
        service_tier=service_tier(_get(config, "service_tier")),
        google_search=google_search_asked(config),
    )


def generate_stream_request_facts(kwargs: Mapping[str, Any]) -> RequestFacts:
    """Facts of one ``generate_content_stream`` request."""
    return generate_request_facts(kwargs)._replace(stream=True)


def embed_request_facts(kwargs: Mapping[str, Any]) -> RequestFacts:
    return RequestFacts(operation="embeddings", model=model_name(kwargs.get("model")) or "unknown")


def generate_prompt_chars(kwargs: Mapping[str, Any]) -> int:
    config = kwargs.get("config")
    system = _get(config, "system_instruction") if given(config) else None
    return contents_chars(kwargs.get("contents")) + contents_chars(system)


def embed_prompt_chars(kwargs: Mapping[str, Any]) -> int:
    # Vertex's embedding calls name one ``content`` or ``batch_contents`` instead
    return sum(contents_chars(kwargs.get(k)) for k in ("contents", "content", "batch_contents"))


def _modality_tokens(details: Any, modality: str) -> int | None:
    """The count of one modality in a ``*_tokens_details`` list (None when absent or zero:
    a text-only call prices the same without it)."""
    if not isinstance(details, (list, tuple)):
        return None
    total = 0
    for item in details:
        kind = _get(item, "modality")
        if getattr(kind, "value", kind) == modality:
            total += as_int(_get(item, "token_count")) or 0
    return total or None


def generate_usage(usage: Any) -> UsageTokens | None:
    """``usage_metadata`` of a GenerateContentResponse (or of a stream's last chunk)."""
    if usage is None:
        return None
    prompt = as_int(_get(usage, "prompt_token_count"))
    tool_prompt = as_int(_get(usage, "tool_use_prompt_token_count"))
    candidates = as_int(_get(usage, "candidates_token_count"))
    thoughts = as_int(_get(usage, "thoughts_token_count"))
    total_input = None if prompt is None else prompt + (tool_prompt or 0)
    output = None
    if total_input is not None or candidates is not None or thoughts is not None:
        output = (candidates or 0) + (thoughts or 0)
    return UsageTokens(
        input_tokens=total_input,
        output_tokens=output,
        cache_read_tokens=as_int(_get(usage, "cached_content_token_count")),
        reasoning_tokens=thoughts,
        input_audio_tokens=_modality_tokens(_get(usage, "prompt_tokens_details"), "AUDIO"),
        output_audio_tokens=_modality_tokens(_get(usage, "candidates_tokens_details"), "AUDIO"),
    )


def add_search_queries(response: Any, queries: set[str]) -> bool:
    """Adds to ``queries`` the non-empty web search queries of every candidate's grounding
    metadata; True when a candidate was grounded on a web page (``grounding_chunks[].web``)."""
    web = False
    candidates = _get(response, "candidates")
    if not isinstance(candidates, (list, tuple)):
        return False
    for candidate in candidates:
        metadata = _get(candidate, "grounding_metadata")
        if metadata is None:
            continue
        found = _get(metadata, "web_search_queries")
        if isinstance(found, (list, tuple)):
            queries.update(q for q in found if isinstance(q, str) and q.strip())
        chunks = _get(metadata, "grounding_chunks")
        if not web and isinstance(chunks, (list, tuple)):
            web = any(_get(chunk, "web") is not None for chunk in chunks)
    return web


def web_search_count(queries: set[str], web_grounded: bool) -> int | None:
    """The searches to record: the distinct queries, or one for an answer grounded on the web
    that lists none (None: no search, which prices the same as 0)."""
    return len(queries) or (1 if web_grounded else None)


def with_searches(usage: UsageTokens | None, searches: int | None) -> UsageTokens | None:
    """``usage`` with its web search count. The searches are billed whatever the tokens: a
    response without usage (its tokens estimated) keeps them too."""
    if not searches:
        return usage
    return (usage or UsageTokens())._replace(web_search_calls=searches)


def embed_usage(usage: Any) -> UsageTokens | None:
    """``usage_metadata`` of an EmbedContentResponse: input only."""
    prompt = as_int(_get(usage, "prompt_token_count"))
    return None if prompt is None else UsageTokens(input_tokens=prompt, output_tokens=0)


def _answer_parts(response: Any) -> list[Any]:
    """The parts of the first candidate (the one ``response.text`` reads)."""
    candidates = _get(response, "candidates")
    if not isinstance(candidates, (list, tuple)) or not candidates:
        return []
    parts = _get(_get(candidates[0], "content"), "parts")
    return list(parts) if isinstance(parts, (list, tuple)) else []


def _answer_text(parts: list[Any]) -> str:
    return "".join(
        text
        for part in parts
        if not _get(part, "thought") and isinstance(text := _get(part, "text"), str)
    )


def _finish_reasons(response: Any) -> tuple[str, ...]:
    reasons = []
    for candidate in _get(response, "candidates") or ():
        reason = _get(candidate, "finish_reason")
        reason = getattr(reason, "value", reason)
        if isinstance(reason, str) and reason:
            reasons.append(reason.lower())
    return tuple(reasons)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def generate_response_facts(response: Any, request: RequestFacts) -> ResponseFacts:
    """Facts of a GenerateContentResponse."""
    invalid = False
    if request.json_content:
        text = _answer_text(_answer_parts(response))
        invalid = bool(text) and not is_json(text)
    usage = _get(response, "usage_metadata")
    tokens = generate_usage(usage)
    traffic = traffic_type(_usage_field(usage, "traffic_type"))
    if request.google_search:
        queries: set[str] = set()
        web = add_search_queries(response, queries)
        tokens = with_searches(tokens, web_search_count(queries, web))
    return ResponseFacts(
        model=model_name(_get(response, "model_version")),
        response_id=_str(_get(response, "response_id")),
        usage=tokens,
        invalid_output=invalid,
        finish_reasons=_finish_reasons(response),
        service_tier=served_tier(usage, _get(response, "sdk_http_response"), traffic),
        traffic_type=traffic,
    )


def embed_response_facts(response: Any, request: RequestFacts) -> ResponseFacts:
    return ResponseFacts(usage=embed_usage(_get(response, "usage_metadata")))


def _part_chars(part: Any) -> int:
    text = _get(part, "text")
    if isinstance(text, str):
        return len(text)
    call = _get(part, "function_call")
    args = _get(call, "args") if call is not None else None
    return len(str(args)) if args else 0


def response_output_chars(response: Any) -> int:
    """Characters of the answer (text, thoughts, function-call arguments): the output estimate
    when the response carried no usage."""
    return sum(_part_chars(part) for part in _answer_parts(response))


def output_text(response: Any) -> list[str]:
    return [t for p in _answer_parts(response) if isinstance(t := _get(p, "text"), str) and t]


class GenerateStreamAccumulator:
    """Follows a ``generate_content_stream``: the last usage seen (each chunk carries the usage
    so far; the last one, with the finish reason, is the call's), the text for estimates and
    the JSON check, and the distinct Google Search queries of all chunks (grounding metadata
    may be repeated or split across chunks)."""

    __slots__ = ("request", "model", "response_id", "usage", "chars", "chunks", "reasons",
                 "texts", "http_response", "queries", "web_grounded")  # fmt: skip

    def __init__(self, request: RequestFacts) -> None:
        self.request = request
        self.model: str | None = None
        self.response_id: str | None = None
        self.usage: Any = None
        self.chars = 0
        self.chunks = 0
        self.reasons: tuple[str, ...] = ()
        self.texts: list[str] | None = [] if request.json_content else None
        self.http_response: Any = None
        self.queries: set[str] | None = set() if request.google_search else None
        self.web_grounded = False

    def add(self, chunk: Any) -> bool:
        usage = _get(chunk, "usage_metadata")
        if usage is not None:
            self.usage = usage
        # read at the end only (the tier header is the same on every chunk of the response)
        http_response = _get(chunk, "sdk_http_response")
        if http_response is not None:
            self.http_response = http_response
        self.model = model_name(_get(chunk, "model_version")) or self.model
        self.response_id = _str(_get(chunk, "response_id")) or self.response_id
        reasons = _finish_reasons(chunk)
        if reasons:
            self.reasons = reasons
        parts = _answer_parts(chunk)
        chars = sum(_part_chars(part) for part in parts)
        if chars:
            self.chars += chars
            self.chunks += 1
        if self.texts is not None:
            self.texts.append(_answer_text(parts))
        if self.queries is not None and add_search_queries(chunk, self.queries):
            self.web_grounded = True
        return False  # never hides a chunk

    def usage_complete(self) -> bool:
        """The stream's last chunk (the one with a finish reason) was seen."""
        return bool(self.reasons)

    def facts(self) -> ResponseFacts:
        text = "".join(self.texts or ())
        usage = generate_usage(self.usage)
        traffic = traffic_type(_usage_field(self.usage, "traffic_type"))
        if self.queries is not None:
            usage = with_searches(usage, web_search_count(self.queries, self.web_grounded))
        return ResponseFacts(
            model=self.model,
            response_id=self.response_id,
            usage=usage,
            invalid_output=bool(text) and not is_json(text),
            finish_reasons=self.reasons,
            service_tier=served_tier(self.usage, self.http_response, traffic),
            traffic_type=traffic,
        )

    def estimated_output_tokens(self) -> int:
        return max(estimate_tokens(self.chars), self.chunks)
