"""Gemini-API-shaped bodies (``google-genai`` SDK): generateContent (plain and streamed),
batchEmbedContents, errors.

Paths are ``/v1/models/{model}:{method}`` (``v1beta`` too); the model comes from the path, not the body.
Usage follows the real API: ``promptTokenCount`` is the whole prompt, cached content included
(``cachedContentTokenCount`` is that part); ``candidatesTokenCount`` is the visible answer and
``thoughtsTokenCount`` the thinking, billed as output beside it. Zero counts are left out, as
the API's JSON does. There is no cache write in a generate call (a cache is created apart), so
``x-sim-cache-write`` headers are ignored here. Streams send one word per event, each carrying
the usage so far; the last event has the ``finishReason`` and the final usage. A request's
``serviceTier`` (google-genai sends ``config.service_tier`` top-level, lowercase) is answered
as the real API does: the ``x-gemini-service-tier`` header, and ``usageMetadata.serviceTier``.
A request with the Google Search tool (``googleSearch``, or ``googleSearchRetrieval``) is
answered grounded: the candidate's ``groundingMetadata`` lists ``x-sim-web-searches`` queries
(default 1) plus an empty string, as the real list sometimes holds (not billed), with one web
source per query. A stream repeats the metadata on its last two chunks, as the real API may.
A request with Vertex AI's request-type headers (``x-vertex-ai-llm-request-type: dedicated``
for Provisioned Throughput; see faults.py) is answered with the traffic type they select as
``usageMetadata.trafficType``, on every chunk of a stream, as Vertex AI does.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from . import tokens
from .faults import Overrides
from .openai_api import _vector
from .tokens import SSE, Plan, content_pieces, make_plan


def _parts_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, dict):
        return ""
    return "".join(
        p["text"] for p in content.get("parts") or () if isinstance(p, dict) and "text" in p
    )


def _input_tokens(body: dict[str, Any]) -> int:
    contents = body.get("contents")
    items = contents if isinstance(contents, list) else [contents] if contents else []
    total = sum(tokens.message_tokens(_parts_text(c)) for c in items)
    system = body.get("systemInstruction")
    if system:
        total += tokens.message_tokens(_parts_text(system))
    return total


def _function_name(body: dict[str, Any]) -> str | None:
    """The function to call, unless the conversation already ends with a function's answer
    (the SDK's automatic function calling then asks again: the model answers in text)."""
    contents = body.get("contents")
    if isinstance(contents, list) and contents:
        last = contents[-1]
        parts = last.get("parts") if isinstance(last, dict) else None
        if any(isinstance(p, dict) and "functionResponse" in p for p in parts or ()):
            return None
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    if mode == "NONE":
        return None
    for tool in body.get("tools") or ():
        for declaration in (tool or {}).get("functionDeclarations") or ():
            if isinstance(declaration, dict) and declaration.get("name"):
                return str(declaration["name"])
    return None


_SEARCH_TOOLS = (
    "googleSearch",
    "google_search",
    "googleSearchRetrieval",
    "google_search_retrieval",
)


def _searches(body: dict[str, Any], ov: Overrides) -> int:
    """The Google Search queries the answer is grounded by: none without the tool."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return 0
    asked = any(isinstance(t, dict) and any(k in t for k in _SEARCH_TOOLS) for t in tools)
    return max(ov.web_searches, 1) if asked else 0


def _grounding(searches: int) -> dict[str, Any]:
    """The grounding metadata of an answer grounded by ``searches`` queries."""
    queries = [f"simulated search {n + 1}" for n in range(searches)]
    return {
        "webSearchQueries": [queries[0], "", *queries[1:]],
        "searchEntryPoint": {"renderedContent": "<div>simulated search suggestions</div>"},
        "groundingChunks": [
            {"web": {"uri": f"https://example.com/{n + 1}", "title": "example.com"}}
            for n in range(searches)
        ],
    }


def _usage(
    plan: Plan, visible: int, tier: Any = None, traffic: str | None = None
) -> dict[str, Any]:
    prompt = plan.fresh_input + plan.cache_read
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if visible:
        usage["candidatesTokenCount"] = visible
    if plan.cache_read:
        usage["cachedContentTokenCount"] = plan.cache_read
    if plan.reasoning:
        usage["thoughtsTokenCount"] = plan.reasoning
    usage["totalTokenCount"] = prompt + visible + plan.reasoning
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if tier is not None:  # only when asked for: answers without it keep their old shape
        usage["serviceTier"] = tier
    if traffic is not None:  # Vertex AI's, when its request-type headers asked for one
        usage["trafficType"] = traffic
    return usage


def response_headers(body: Any) -> dict[str, str]:
    """The headers of a generateContent answer: the tier served, when one was asked for."""
    tier = body.get("serviceTier") if isinstance(body, dict) else None
    return {"x-gemini-service-tier": str(tier)} if tier is not None else {}


def generate_content(
    model: str, body: dict[str, Any], ov: Overrides, invalid_json: bool, stream: bool
) -> Any:
    """A GenerateContentResponse body, or the stream's events."""
    config = body.get("generationConfig") or {}
    limit = config.get("maxOutputTokens")
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    no_write = dataclasses.replace(ov, cache_write=0, cache_write_1h=0)
    plan = make_plan(_input_tokens(body), limit, no_write)
    function = _function_name(body)
    as_json = config.get("responseMimeType") == "application/json"
    parts = content_pieces(plan.visible, as_json, invalid_json)
    finish = "MAX_TOKENS" if plan.capped else "STOP"
    head = {"modelVersion": model, "responseId": f"sim{uuid.uuid4().hex[:20]}"}
    tier = body.get("serviceTier")
    searches = _searches(body, ov)

    def candidate(
        content_parts: list[dict[str, Any]], reason: str | None, grounded: bool = False
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"content": {"role": "model", "parts": content_parts}, "index": 0}
        if reason:
            out["finishReason"] = reason
        if grounded and searches:
            out["groundingMetadata"] = _grounding(searches)
        return out

    if function:
        answer = {"answer": " ".join(tokens.words(plan.visible))}
        call = [{"functionCall": {"name": function, "args": answer}}]
        reply = {**head, "candidates": [candidate(call, finish)]}
        reply["usageMetadata"] = _usage(plan, plan.visible, tier, ov.traffic_type)
        return [SSE(None, reply, True)] if stream else reply
    if not stream:
        reply = {**head, "candidates": [candidate([{"text": "".join(parts)}], finish, True)]}
        reply["usageMetadata"] = _usage(plan, plan.visible, tier, ov.traffic_type)
        return reply
    events = []
    for index, piece in enumerate(parts):
        last = index == len(parts) - 1
        grounded = index >= len(parts) - 2  # the metadata comes again on the last chunk
        reason = finish if last else None
        chunk = {**head, "candidates": [candidate([{"text": piece}], reason, grounded)]}
        # the usage so far (one token per word); the last event's is the call's
        chunk["usageMetadata"] = _usage(
            plan, plan.visible if last else index + 1, tier, ov.traffic_type
        )
        events.append(SSE(None, chunk, True))
    if not parts:  # nothing visible: one closing event with the usage
        reply = {**head, "candidates": [candidate([{"text": ""}], finish, True)]}
        reply["usageMetadata"] = _usage(plan, 0, tier, ov.traffic_type)
        events.append(SSE(None, reply))
    return events


def batch_embed_contents(model: str, body: dict[str, Any]) -> dict[str, Any]:
    """A BatchEmbedContentsResponse: one vector per request, ``ceil(chars / 4)`` tokens each."""
    requests = body.get("requests")
    texts = [_parts_text((r or {}).get("content")) for r in requests or ()]
    prompt = sum(tokens.text_tokens(t) for t in texts)
    return {
        "embeddings": [{"values": _vector(t, 8)} for t in texts],
        "usageMetadata": {"promptTokenCount": prompt, "totalTokenCount": prompt},
    }


_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """Google's error envelope: ``{"error": {code, message, status}}``."""
    name = _STATUS_NAMES.get(status, "INVALID_ARGUMENT" if status < 500 else "INTERNAL")
    return {"error": {"code": status, "message": message or f"{name} (simulated)", "status": name}}
