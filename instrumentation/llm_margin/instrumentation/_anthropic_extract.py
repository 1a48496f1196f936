"""Pure functions reading the Anthropic SDK's Messages requests and responses.

Anthropic reports ``input_tokens`` WITHOUT the cached part; ``UsageTokens.input_tokens`` is the
total (``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``) so that both
providers mean the same thing. Cache writes are split into 5-minute and 1-hour buckets when the
response carries ``usage.cache_creation``. Web searches (``usage.server_tool_use``), billed per
search beside the tokens, are counted; web fetches are not billed beyond their tokens.
Fast mode (``speed="fast"``, billed at a premium per token) is read from ``usage.speed``, else
from the request. So is the inference geography (``usage.inference_geo``, else the request's
``inference_geo``: ``"us"`` is billed at a premium on newer models, ``"global"`` is standard).

Beta ``usage.iterations`` entries billed outside the top-level usage fields are recorded as
sub-usage (``SubUsage``): ``compaction`` (the summarising step of context compaction, on the
call's own model; the API says its tokens are not in the top-level fields) and
``advisor_message`` (the advisor tool's sub-inference, on the advisor's model, billed at that
model's price). ``message`` entries are the top-level usage split per step, and a
``fallback_message`` entry takes the place of the last ``message`` entry, so neither is added.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ._types import (
    RequestFacts,
    ResponseFacts,
    SubUsage,
    UsageTokens,
    as_int,
    estimate_tokens,
    get,
    given,
    is_json,
    text_chars,
)

# The speed modes the API knows; anything else is ignored, never recorded.
_SPEEDS = {"fast": "fast", "standard": "standard"}


def speed_mode(value: Any) -> str | None:
    """``"fast"`` or ``"standard"`` for a request's ``speed`` or a usage's ``speed``, else None."""
    return _SPEEDS.get(value) if isinstance(value, str) else None


# A geography name as the API spells them ("global", "us"); anything else is not recorded.
_GEO = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def inference_geo(value: Any) -> str | None:
    """A request's or a usage's ``inference_geo``, lower-cased; None when absent or not a name."""
    if not isinstance(value, str):
        return None
    geo = value.strip().lower()
    return geo if _GEO.fullmatch(geo) else None


def messages_request_facts(kwargs: Mapping[str, Any]) -> RequestFacts:
    """Facts of ``messages.create`` / ``.stream`` / ``.parse``."""
    model = kwargs.get("model")
    output_config = kwargs.get("output_config")
    json_content = given(kwargs.get("output_format")) or (
        given(output_config) and given(get(output_config, "format"))
    )
    tier = kwargs.get("service_tier")
    return RequestFacts(
        operation="chat",
        model=model if isinstance(model, str) and model else "unknown",
        stream=kwargs.get("stream") is True,
        json_content=bool(json_content),
        tools=given(kwargs.get("tools")) and bool(kwargs.get("tools")),
        service_tier=tier if isinstance(tier, str) else None,
        speed=speed_mode(kwargs.get("speed")),
        inference_geo=inference_geo(kwargs.get("inference_geo")),
    )


def messages_prompt_chars(kwargs: Mapping[str, Any]) -> int:
    return text_chars(kwargs.get("messages")) + text_chars(kwargs.get("system"))


def messages_usage(usage: Any) -> UsageTokens | None:
    """``usage`` of a Message (or the merged usage of a stream)."""
    if usage is None:
        return None
    uncached = as_int(get(usage, "input_tokens"))
    cache_read = as_int(get(usage, "cache_read_input_tokens"))
    cache_write = as_int(get(usage, "cache_creation_input_tokens"))
    split = get(usage, "cache_creation")
    write_5m = as_int(get(split, "ephemeral_5m_input_tokens"))
    write_1h = as_int(get(split, "ephemeral_1h_input_tokens"))
    if cache_write is None and (write_5m is not None or write_1h is not None):
        cache_write = (write_5m or 0) + (write_1h or 0)
    total = None
    if uncached is not None or cache_read is not None or cache_write is not None:
        total = (uncached or 0) + (cache_read or 0) + (cache_write or 0)
    return UsageTokens(
        input_tokens=total,
        output_tokens=as_int(get(usage, "output_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=as_int(get(get(usage, "output_tokens_details"), "thinking_tokens")),
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        # Billed per search ($10 per 1,000); a zero (every call without the tool) is left out
        # like an absent count: it prices the same.
        web_search_calls=as_int(get(get(usage, "server_tool_use"), "web_search_requests")) or None,
    )


# ``usage.iterations`` entry types billed outside the top-level usage -> whether the entry names
# the model it ran on (an advisor does; a compaction runs on the call's own model).
_BILLED_APART = {"compaction": False, "advisor_message": True}


def billed_iterations(iterations: Any) -> tuple[SubUsage, ...]:
    """The entries of a usage's ``iterations`` billed outside its top-level fields, in order.
    An advisor entry that names no model gets ``"unknown"``: the processor leaves the call
    unpriced rather than price the advisor's tokens at nothing."""
    if not isinstance(iterations, (list, tuple)):
        return ()
    found: list[SubUsage] = []
    for entry in iterations:
        names_model = _BILLED_APART.get(get(entry, "type"))
        if names_model is None:
            continue
        model = ""
        if names_model:
            model = _str(get(entry, "model")) or "unknown"
        uncached = as_int(get(entry, "input_tokens")) or 0
        read = as_int(get(entry, "cache_read_input_tokens")) or 0
        write = as_int(get(entry, "cache_creation_input_tokens"))
        split = get(entry, "cache_creation")
        write_1h = as_int(get(split, "ephemeral_1h_input_tokens")) or 0
        if write is None:
            write = (as_int(get(split, "ephemeral_5m_input_tokens")) or 0) + write_1h
        found.append(
            SubUsage(
                get(entry, "type"),
                model,
                uncached + read + write,
                as_int(get(entry, "output_tokens")) or 0,
                read,
                write,
                min(write_1h, write),
            )
        )
    return tuple(found)


def content_invalid(content: Any, request: RequestFacts) -> bool:
    """Whether the message content breaks the JSON the request asked for."""
    for block in content or ():
        kind = get(block, "type")
        if kind == "tool_use" and request.tools:
            value = get(block, "input")
            if isinstance(value, str) and not is_json(value):
                return True
        elif kind == "text" and request.json_content and not is_json(get(block, "text")):
            return True
    return False


def message_facts(message: Any, request: RequestFacts) -> ResponseFacts:
    """Facts of a ``Message`` (or ``ParsedMessage``)."""
    reason = get(message, "stop_reason")
    usage = get(message, "usage")
    tier = get(usage, "service_tier")
    return ResponseFacts(
        model=_str(get(message, "model")),
        response_id=_str(get(message, "id")),
        usage=messages_usage(usage),
        invalid_output=request.expects_json and content_invalid(get(message, "content"), request),
        finish_reasons=(reason,) if isinstance(reason, str) else (),
        service_tier=tier if isinstance(tier, str) else None,
        speed=speed_mode(get(usage, "speed")),
        sub_usage=billed_iterations(get(usage, "iterations")),
        inference_geo=inference_geo(get(usage, "inference_geo")),
    )


def message_output_chars(message: Any) -> int:
    """Characters a ``Message`` answered with (text, thinking, tool input): the output estimate
    when the response carried no usage."""
    total = 0
    for block in get(message, "content") or ():
        kind = get(block, "type")
        if kind == "text":
            value = get(block, "text")
        elif kind == "thinking":
            value = get(block, "thinking")
        elif kind == "tool_use":
            value = get(block, "input")
            if value is not None and not isinstance(value, str):
                value = json.dumps(value, default=str)
        else:
            continue
        total += len(value) if isinstance(value, str) else 0
    return total


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


class MessageStreamAccumulator:
    """Follows a raw Messages event stream: usage from ``message_start`` (input, cache) merged
    with ``message_delta`` (cumulative output), text received for estimates and the JSON check."""

    __slots__ = ("request", "model", "response_id", "usage", "cache_split", "thinking",
                 "chars", "chunks", "reasons", "texts", "tool_inputs", "saw_delta", "stopped",
                 "service_tier", "server_tools", "speed", "iterations",
                 "inference_geo")  # fmt: skip

    def __init__(self, request: RequestFacts) -> None:
        self.request = request
        self.model: str | None = None
        self.response_id: str | None = None
        self.usage: dict[str, int] = {}
        self.cache_split: Any = None
        self.thinking: int | None = None
        self.chars = 0
        self.chunks = 0
        self.reasons: list[str] = []
        self.texts: dict[int, list[str]] | None = {} if request.expects_json else None
        self.tool_inputs: dict[int, list[str]] = {}
        self.saw_delta = False
        self.stopped = False
        self.service_tier: str | None = None
        self.server_tools: Any = None
        self.speed: str | None = None
        self.iterations: Any = None
        self.inference_geo: str | None = None

    def _merge_usage(self, usage: Any) -> None:
        for name in _USAGE_FIELDS:
            value = as_int(get(usage, name))
            if value is not None:
                self.usage[name] = value
        split = get(usage, "cache_creation")
        if split is not None:
            self.cache_split = split
        thinking = as_int(get(get(usage, "output_tokens_details"), "thinking_tokens"))
        if thinking is not None:
            self.thinking = thinking
        # Cumulative, like output_tokens: the last one (message_delta's) is the call's count.
        server_tools = get(usage, "server_tool_use")
        if server_tools is not None:
            self.server_tools = server_tools
        tier = get(usage, "service_tier")  # in message_start's usage, as in a Message's
        if isinstance(tier, str) and tier:
            self.service_tier = tier
        # message_start's usage has it like a Message's; a later message_delta's, if any, wins
        ran_at = speed_mode(get(usage, "speed"))
        if ran_at is not None:
            self.speed = ran_at
        # The whole list, not a delta: message_delta's (the final one) replaces message_start's.
        iterations = get(usage, "iterations")
        if iterations is not None:
            self.iterations = iterations
        geo = inference_geo(get(usage, "inference_geo"))  # like speed: the last one reported
        if geo is not None:
            self.inference_geo = geo

    def add(self, event: Any) -> bool:
        kind = get(event, "type")
        if kind == "content_block_delta":
            delta = get(event, "delta")
            index = get(event, "index") or 0
            dtype = get(delta, "type")
            text = None
            if dtype == "text_delta":
                text = get(delta, "text")
                if self.texts is not None and isinstance(text, str):
                    self.texts.setdefault(index, []).append(text)
            elif dtype == "input_json_delta":
                text = get(delta, "partial_json")
                if self.texts is not None and isinstance(text, str):
                    self.tool_inputs.setdefault(index, []).append(text)
            elif dtype == "thinking_delta":
                text = get(delta, "thinking")
            if isinstance(text, str):
                self.chars += len(text)
                self.chunks += 1
        elif kind == "message_start":
            message = get(event, "message")
            self.model = _str(get(message, "model"))
            self.response_id = _str(get(message, "id"))
            self._merge_usage(get(message, "usage"))
        elif kind == "message_delta":
            self.saw_delta = True
            self._merge_usage(get(event, "usage"))
            reason = get(get(event, "delta"), "stop_reason")
            if isinstance(reason, str):
                self.reasons.append(reason)
        elif kind == "message_stop":
            self.stopped = True
        return False

    def usage_complete(self) -> bool:
        return self.saw_delta and bool(self.usage)

    def invalid_output(self) -> bool:
        if self.texts is None:
            return False
        if self.request.tools:
            for parts in self.tool_inputs.values():
                joined = "".join(parts)
                if joined and not is_json(joined):
                    return True
        if self.request.json_content:
            for parts in self.texts.values():
                if not is_json("".join(parts)):
                    return True
        return False

    def facts(self) -> ResponseFacts:
        usage = None
        if self.usage:
            merged: dict[str, Any] = dict(self.usage)
            if self.cache_split is not None:
                merged["cache_creation"] = self.cache_split
            if self.thinking is not None:
                merged["output_tokens_details"] = {"thinking_tokens": self.thinking}
            if self.server_tools is not None:
                merged["server_tool_use"] = self.server_tools
            usage = messages_usage(merged)
        return ResponseFacts(
            model=self.model,
            response_id=self.response_id,
            usage=usage,
            invalid_output=self.invalid_output(),
            finish_reasons=tuple(self.reasons),
            service_tier=self.service_tier,
            speed=self.speed,
            sub_usage=billed_iterations(self.iterations),
            inference_geo=self.inference_geo,
        )

    def estimated_output_tokens(self) -> int:
        return max(estimate_tokens(self.chars), self.chunks)
