"""OpenAI-shaped bodies: Chat Completions, Responses, Embeddings, errors.

Pure functions from a parsed request to a JSON body (non-streaming) or a list of ``SSE``
events (streaming); the server frames and paces them. Field sets follow the installed
``openai`` SDK types so the SDK parses them exactly as it parses the real API.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
import time
import uuid
from typing import Any

from . import tokens
from .faults import Overrides
from .tokens import SSE, Plan, content_pieces, make_plan


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _wants_json(fmt: Any) -> bool:
    return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")


def _tool_name(tools: Any, tool_choice: Any, responses: bool) -> str | None:
    """Name of the function to call, or None when the answer is plain content."""
    if not isinstance(tools, list) or not tools or tool_choice == "none":
        return None
    if isinstance(tool_choice, dict):
        named = tool_choice.get("name") or (tool_choice.get("function") or {}).get("name")
        if named:
            return str(named)
    for tool in tools:
        if isinstance(tool, dict) and tool.get("type", "function") == "function":
            name = tool.get("name") if responses else (tool.get("function") or {}).get("name")
            if name:
                return str(name)
    return None


# --- Chat Completions --------------------------------------------------------------------


def _chat_usage(plan: Plan) -> dict[str, Any]:
    prompt_details: dict[str, Any] = {"cached_tokens": plan.cache_read, "audio_tokens": 0}
    if plan.cache_write:
        prompt_details["cache_write_tokens"] = plan.cache_write
    return {
        "prompt_tokens": plan.prompt_total,
        "completion_tokens": plan.output,
        "total_tokens": plan.prompt_total + plan.output,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": plan.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def served_tier(body: dict[str, Any]) -> str:
    """The tier the API answers with: the one asked for (flex, priority, scale), else default
    (auto and no tier are served at the default tier)."""
    tier = body.get("service_tier")
    return tier if isinstance(tier, str) and tier not in ("", "auto") else "default"


def chat_completion(body: dict[str, Any], ov: Overrides, invalid_json: bool) -> Any:
    """A ChatCompletion body, or the chunk events when ``stream`` is true."""
    limit = tokens.output_limit(body, "max_completion_tokens", "max_tokens")
    plan = make_plan(tokens.messages_tokens(body.get("messages")), limit, ov)
    tool = _tool_name(body.get("tools"), body.get("tool_choice"), responses=False)
    as_json = tool is not None or _wants_json(body.get("response_format"))
    parts = content_pieces(plan.visible, as_json, invalid_json)
    finish = "tool_calls" if tool else ("length" if plan.capped else "stop")
    head = {
        "id": _new_id("chatcmpl-sim"),
        "created": int(time.time()),
        "model": str(body.get("model", "")),
        "service_tier": served_tier(body),
        "system_fingerprint": "fp_simulator",
    }
    call_id = _new_id("call_")
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        message["annotations"] = []
        if tool:
            function = {"name": tool, "arguments": "".join(parts)}
            message["tool_calls"] = [{"id": call_id, "type": "function", "function": function}]
        else:
            message["content"] = "".join(parts)
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        return {
            **head,
            "object": "chat.completion",
            "choices": [choice],
            "usage": _chat_usage(plan),
        }
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        out = {**head, "object": "chat.completion.chunk"}
        out["choices"] = [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        ]
        if include_usage:
            out["usage"] = None
        return out

    if tool:
        first = {"index": 0, "id": call_id, "type": "function"}
        first["function"] = {"name": tool, "arguments": ""}
        events = [SSE(None, chunk({"role": "assistant", "content": None, "tool_calls": [first]}))]
        events += [
            SSE(None, chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}), True)
            for p in parts
        ]
    else:
        events = [SSE(None, chunk({"role": "assistant", "content": "", "refusal": None}))]
        events += [SSE(None, chunk({"content": p}), True) for p in parts]
    events.append(SSE(None, chunk({}, finish)))
    if include_usage:
        events.append(
            SSE(
                None,
                {
                    **head,
                    "object": "chat.completion.chunk",
                    "choices": [],
                    "usage": _chat_usage(plan),
                },
            )
        )
    events.append(SSE(None, "[DONE]"))
    return events


# --- Responses ---------------------------------------------------------------------------


def _responses_usage(plan: Plan) -> dict[str, Any]:
    return {
        "input_tokens": plan.prompt_total,
        "input_tokens_details": {
            "cached_tokens": plan.cache_read,
            "cache_write_tokens": plan.cache_write,
        },
        "output_tokens": plan.output,
        "output_tokens_details": {"reasoning_tokens": plan.reasoning},
        "total_tokens": plan.prompt_total + plan.output,
    }


def _responses_input_tokens(body: dict[str, Any]) -> int:
    total = tokens.messages_tokens(body.get("input"))
    if isinstance(body.get("instructions"), str):
        total += tokens.message_tokens(body["instructions"])
    return total


def response(body: dict[str, Any], ov: Overrides, invalid_json: bool) -> Any:
    """A Response object, or the Responses stream events when ``stream`` is true."""
    limit = tokens.output_limit(body, "max_output_tokens")
    plan = make_plan(_responses_input_tokens(body), limit, ov)
    tool = _tool_name(body.get("tools"), body.get("tool_choice"), responses=True)
    as_json = tool is not None or _wants_json((body.get("text") or {}).get("format"))
    parts = content_pieces(plan.visible, as_json, invalid_json)
    text = "".join(parts)
    now = int(time.time())
    snapshot: dict[str, Any] = {
        "id": _new_id("resp_sim"),
        "object": "response",
        "created_at": now,
        "status": "in_progress",
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": str(body.get("model", "")),
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "service_tier": served_tier(body),
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": None,
        "user": None,
    }
    if tool:
        item: dict[str, Any] = {
            "id": _new_id("fc_"),
            "type": "function_call",
            "status": "completed",
        }
        item.update(call_id=_new_id("call_"), name=tool, arguments=text)
    else:
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        item = {"id": _new_id("msg_"), "type": "message", "status": "completed"}
        item.update(role="assistant", content=[part])
    # Server-side tool calls (billed per call, not in usage) come before the answer.
    searches = [_search_item("web_search_call") for _ in range(ov.web_searches)]
    searches += [_search_item("file_search_call") for _ in range(ov.file_searches)]
    final = {**snapshot, "status": "completed", "completed_at": now}
    final["output"] = [*searches, item]
    final["usage"] = _responses_usage(plan)
    if not body.get("stream"):
        return final
    events: list[SSE] = []

    def emit(kind: str, content: bool = False, **fields: Any) -> None:
        payload = {"type": kind, "sequence_number": len(events), **fields}
        events.append(SSE(kind, payload, content))

    emit("response.created", response=snapshot)
    emit("response.in_progress", response=snapshot)
    for index, search in enumerate(searches):
        emit("response.output_item.added", output_index=index, item=search)
        emit("response.output_item.done", output_index=index, item=search)
    at = len(searches)  # the answer's output index
    where = {"item_id": item["id"], "output_index": at}
    if tool:
        emit(
            "response.output_item.added",
            output_index=at,
            item={**item, "status": "in_progress", "arguments": ""},
        )
        for piece in parts:
            emit("response.function_call_arguments.delta", True, **where, delta=piece)
        emit("response.function_call_arguments.done", **where, name=tool, arguments=text)
    else:
        emit(
            "response.output_item.added",
            output_index=at,
            item={**item, "status": "in_progress", "content": []},
        )
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        emit("response.content_part.added", **where, content_index=0, part=empty)
        for piece in parts:
            emit(
                "response.output_text.delta",
                True,
                **where,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
        emit("response.output_text.done", **where, content_index=0, text=text, logprobs=[])
        emit("response.content_part.done", **where, content_index=0, part=item["content"][0])
    emit("response.output_item.done", output_index=at, item=item)
    emit("response.completed", response=final)
    return events


def _search_item(kind: str) -> dict[str, Any]:
    """A completed ``web_search_call`` or ``file_search_call`` output item."""
    if kind == "web_search_call":
        action = {"type": "search", "query": "simulated search"}
        return {"id": _new_id("ws_"), "type": kind, "status": "completed", "action": action}
    item = {"id": _new_id("fs_"), "type": kind, "status": "completed"}
    item.update(queries=["simulated search"], results=None)
    return item


# --- Embeddings --------------------------------------------------------------------------


def _vector(text: str, dims: int) -> list[float]:
    """A small unit vector derived from the text's hash: same text, same vector."""
    raw = b""
    counter = 0
    while len(raw) < dims * 4:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    values = [(int.from_bytes(raw[i * 4 : i * 4 + 4], "big") / 2**32) * 2 - 1 for i in range(dims)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """A CreateEmbeddingResponse; base64 float32 when the SDK asks for it (its default)."""
    inputs = body.get("input")
    items = [inputs] if isinstance(inputs, str) else list(inputs or [])
    if items and all(isinstance(i, int) for i in items):
        items = [items]
    dims = body.get("dimensions") if isinstance(body.get("dimensions"), int) else 8
    data = []
    for index, item in enumerate(items):
        vector: Any = _vector(str(item), dims)
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    prompt = tokens.embedding_tokens(inputs)
    return {
        "object": "list",
        "data": data,
        "model": str(body.get("model", "")),
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    }


# --- Errors ------------------------------------------------------------------------------

_ERROR_TYPES = {
    429: ("requests", "rate_limit_exceeded", "Rate limit reached (simulated)."),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request (simulated).",
    ),
    503: ("server_error", None, "The engine is currently overloaded (simulated)."),
}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """OpenAI's error envelope: ``{"error": {message, type, param, code}}``."""
    kind, code, default = _ERROR_TYPES.get(
        status,
        (
            "invalid_request_error" if status < 500 else "server_error",
            None,
            f"HTTP {status} (simulated).",
        ),
    )
    return {"error": {"message": message or default, "type": kind, "param": None, "code": code}}
