"""Anthropic-shaped bodies: Messages (plain and streaming) and errors.

Like the real API, ``input_tokens`` excludes cache reads and writes, which are reported in
their own fields; streams follow Anthropic's event order (message_start with input and cache
usage, content block events, message_delta with the final output_tokens, message_stop).
A request's ``speed`` (fast mode) is answered as ``usage.speed``, in message_start's usage and
message_delta's alike. A request's ``inference_geo`` is answered as ``usage.inference_geo`` in
the Message's usage and message_start's (message_delta's usage has no such field).

Beta ``usage.iterations``: a request with the advisor tool (a ``tools`` entry of type
``advisor_20260301``) or with compaction (a ``context_management.edits`` entry of type
``compact_20260112``) is answered with ``usage.iterations`` (streams: in message_delta's usage):
a ``compaction`` entry (on every such request: there is no trigger threshold here), an
``advisor_message`` entry on the tool's model, then one ``message`` entry with the top-level
counts. Their token counts follow fixed rules (``compaction_usage``, ``advisor_usage``); the
content blocks of compaction and of the advisor are not simulated.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import tokens
from .faults import Overrides
from .tokens import SSE, Plan, content_pieces, make_plan


def _input_tokens(body: dict[str, Any]) -> int:
    total = tokens.messages_tokens(body.get("messages"))
    system = body.get("system")
    if system:
        total += tokens.message_tokens(tokens.extract_text(system))
    return total


def _tool_name(body: dict[str, Any]) -> str | None:
    tools = body.get("tools")
    choice = body.get("tool_choice") or {}
    if not isinstance(tools, list) or not tools or choice.get("type") == "none":
        return None
    if choice.get("type") == "tool" and choice.get("name"):
        return str(choice["name"])
    for tool in tools:
        # the advisor is a server tool: the API runs it, the answer is not a call of it
        if isinstance(tool, dict) and tool.get("name") and tool.get("type") != "advisor_20260301":
            return str(tool["name"])
    return None


def _wants_json(body: dict[str, Any]) -> bool:
    fmt = body.get("output_format") or (body.get("output_config") or {}).get("format") or {}
    return isinstance(fmt, dict) and bool(fmt) and fmt.get("type") != "text"


def _usage(
    plan: Plan, ov: Overrides, output_tokens: int, speed: Any = None, geo: Any = None
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": plan.fresh_input,
        "cache_creation_input_tokens": ov.cache_write + ov.cache_write_1h,
        "cache_read_input_tokens": ov.cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": ov.cache_write,
            "ephemeral_1h_input_tokens": ov.cache_write_1h,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    if plan.reasoning:
        usage["output_tokens_details"] = {"thinking_tokens": plan.reasoning}
    if ov.web_searches:
        usage["server_tool_use"] = _server_tool_use(ov.web_searches)
    if speed is not None:  # only when asked for: answers without it keep their old shape
        usage["speed"] = speed
    if geo is not None:  # likewise: where inference ran, as asked
        usage["inference_geo"] = geo
    return usage


# Output of a compaction summary and of one advisor consultation (the docs: 400-700 text
# tokens, 1,400-1,800 with thinking), and the advisor's prompt beyond the transcript.
COMPACTION_OUTPUT_TOKENS = 320
ADVISOR_OUTPUT_TOKENS = 1500
ADVISOR_PROMPT_TOKENS = 250


def _advisor_model(body: dict[str, Any]) -> str | None:
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and tool.get("type") == "advisor_20260301":
            return str(tool.get("model") or "")
    return None


def _compacts(body: dict[str, Any]) -> bool:
    edits = (body.get("context_management") or {}).get("edits") or ()
    return any(isinstance(e, dict) and e.get("type") == "compact_20260112" for e in edits)


def compaction_usage(input_tokens: int) -> dict[str, Any]:
    """The compaction step reads the whole context and writes a summary (uncached)."""
    return {
        "type": "compaction",
        "input_tokens": input_tokens,
        "output_tokens": COMPACTION_OUTPUT_TOKENS,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }


def advisor_usage(model: str, input_tokens: int, ov: Overrides) -> dict[str, Any]:
    """One advisor consultation: the transcript plus its prompt, cache reads and 1-hour cache
    writes as the request's cache overrides say (the advisor caches its own prompt)."""
    return {
        "type": "advisor_message",
        "model": model,
        "input_tokens": input_tokens + ADVISOR_PROMPT_TOKENS,
        "output_tokens": ADVISOR_OUTPUT_TOKENS,
        "cache_read_input_tokens": ov.cache_read,
        "cache_creation_input_tokens": ov.cache_write_1h,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0,
            "ephemeral_1h_input_tokens": ov.cache_write_1h,
        },
    }


def _iterations(body: dict[str, Any], plan: Plan, ov: Overrides) -> list[dict[str, Any]] | None:
    advisor = _advisor_model(body)
    compacts = _compacts(body)
    if advisor is None and not compacts:
        return None
    entries = [compaction_usage(plan.fresh_input)] if compacts else []
    if advisor is not None:
        entries.append(advisor_usage(advisor, plan.fresh_input, ov))
    entries.append(
        {
            "type": "message",
            "input_tokens": plan.fresh_input,
            "output_tokens": plan.output,
            "cache_read_input_tokens": ov.cache_read,
            "cache_creation_input_tokens": ov.cache_write + ov.cache_write_1h,
        }
    )
    return entries


def _server_tool_use(web_searches: int) -> dict[str, int]:
    return {"web_search_requests": web_searches, "web_fetch_requests": 0}


def message(body: dict[str, Any], ov: Overrides, invalid_json: bool) -> Any:
    """A Message body, or the Messages stream events when ``stream`` is true."""
    plan = make_plan(_input_tokens(body), tokens.output_limit(body, "max_tokens"), ov)
    speed = body.get("speed")
    geo = body.get("inference_geo")
    tool = _tool_name(body)
    iterations = _iterations(body, plan, ov)
    parts = content_pieces(plan.visible, tool is not None or _wants_json(body), invalid_json)
    text = "".join(parts)
    stop = "tool_use" if tool else ("max_tokens" if plan.capped else "end_turn")
    block: dict[str, Any]
    if tool:
        block = {"type": "tool_use", "id": f"toolu_sim{uuid.uuid4().hex[:20]}", "name": tool}
        # A non-streamed tool input is an object, so the invalid-json fault cannot apply.
        block["input"] = {"answer": " ".join(tokens.words(plan.visible))}
    else:
        block = {"type": "text", "text": text}
    msg: dict[str, Any] = {
        "id": f"msg_sim{uuid.uuid4().hex[:20]}",
        "type": "message",
        "role": "assistant",
        "model": str(body.get("model", "")),
        "content": [block],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": _usage(plan, ov, plan.output, speed, geo),
    }
    if iterations is not None:
        msg["usage"]["iterations"] = iterations
    if not body.get("stream"):
        return msg
    start = {**msg, "content": [], "stop_reason": None, "usage": _usage(plan, ov, 1, speed, geo)}
    if ov.web_searches:  # cumulative, like output_tokens: none yet at the start
        start["usage"]["server_tool_use"] = _server_tool_use(0)
    events = [SSE("message_start", {"type": "message_start", "message": start})]
    if tool:
        opening = {**block, "input": {}}
        delta_of = lambda p: {"type": "input_json_delta", "partial_json": p}  # noqa: E731
    else:
        opening = {"type": "text", "text": ""}
        delta_of = lambda p: {"type": "text_delta", "text": p}  # noqa: E731
    events.append(
        SSE(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": opening},
        )
    )
    events.append(SSE("ping", {"type": "ping"}))
    events += [
        SSE(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": delta_of(p)},
            True,
        )
        for p in parts
    ]
    events.append(SSE("content_block_stop", {"type": "content_block_stop", "index": 0}))
    delta = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}}
    delta["usage"] = {"output_tokens": plan.output}
    if ov.web_searches:
        delta["usage"]["server_tool_use"] = _server_tool_use(ov.web_searches)
    if speed is not None:
        delta["usage"]["speed"] = speed
    if iterations is not None:  # the whole list, final, with the final output count
        delta["usage"]["iterations"] = iterations
    events.append(SSE("message_delta", delta))
    events.append(SSE("message_stop", {"type": "message_stop"}))
    return events


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """Anthropic's error envelope: ``{"type": "error", "error": {type, message}}``."""
    kind = _ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": message or f"{kind} (simulated)"},
        "request_id": f"req_sim{uuid.uuid4().hex[:20]}",
    }
