"""Anthropic-shaped bodies: Messages (plain and streaming) and errors.

Like the real API, ``input_tokens`` excludes cache reads and writes, which are reported in
their own fields; streams follow Anthropic's event order (message_start with input and cache
usage, content block events, message_delta with the final output_tokens, message_stop).
A request's ``speed`` (fast mode) is answered as ``usage.speed``, in message_start's usage and
message_delta's alike.
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
        if isinstance(tool, dict) and tool.get("name"):
            return str(tool["name"])
    return None


def _wants_json(body: dict[str, Any]) -> bool:
    fmt = body.get("output_format") or (body.get("output_config") or {}).get("format") or {}
    return isinstance(fmt, dict) and bool(fmt) and fmt.get("type") != "text"


def _usage(plan: Plan, ov: Overrides, output_tokens: int, speed: Any = None) -> dict[str, Any]:
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
    return usage


def _server_tool_use(web_searches: int) -> dict[str, int]:
    return {"web_search_requests": web_searches, "web_fetch_requests": 0}


def message(body: dict[str, Any], ov: Overrides, invalid_json: bool) -> Any:
    """A Message body, or the Messages stream events when ``stream`` is true."""
    plan = make_plan(_input_tokens(body), tokens.output_limit(body, "max_tokens"), ov)
    speed = body.get("speed")
    tool = _tool_name(body)
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
        "usage": _usage(plan, ov, plan.output, speed),
    }
    if not body.get("stream"):
        return msg
    start = {**msg, "content": [], "stop_reason": None, "usage": _usage(plan, ov, 1, speed)}
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
