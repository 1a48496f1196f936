"""Typed results of the pure extract functions, shared by the provider modules.

They are ``NamedTuple``s rather than frozen dataclasses: immutable and typed all the same, but
built several times per SDK call on the hot path, where a frozen dataclass's ``__init__``
(one ``object.__setattr__`` per field) costs several times more.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from .. import attributes as A


class UsageTokens(NamedTuple):
    """Token counts of one call. ``input_tokens`` is the total input, cache reads and writes
    included, for every provider. ``None`` means the provider did not say."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_write_5m_tokens: int | None = None
    cache_write_1h_tokens: int | None = None
    # Audio parts of input_tokens and output_tokens (priced apart from text).
    input_audio_tokens: int | None = None
    output_audio_tokens: int | None = None
    # Server-side tool calls billed per call, not in the token counts (web and file searches).
    web_search_calls: int | None = None
    file_search_calls: int | None = None

    def attributes(self) -> dict[str, int]:
        """The span attributes for these counts (absent counts are left out)."""
        return {k: v for k, v in zip(USAGE_ATTRIBUTES, self, strict=True) if v is not None}


# Attribute names of UsageTokens' fields, in field order.
USAGE_ATTRIBUTES = (
    A.GEN_AI_USAGE_INPUT_TOKENS,
    A.GEN_AI_USAGE_OUTPUT_TOKENS,
    A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    A.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    A.CACHE_WRITE_5M_TOKENS,
    A.CACHE_WRITE_1H_TOKENS,
    A.INPUT_AUDIO_TOKENS,
    A.OUTPUT_AUDIO_TOKENS,
    A.WEB_SEARCH_CALLS,
    A.FILE_SEARCH_CALLS,
)


class SubUsage(NamedTuple):
    """One sub-inference of a call billed outside its top-level usage (an Anthropic
    ``compaction`` or ``advisor_message`` iteration). ``model`` is "" for the call's own model;
    ``input_tokens`` is the total input, cache reads and writes included."""

    kind: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0


def sub_usage_attributes(entries: tuple[SubUsage, ...]) -> dict[str, tuple]:
    """The span attributes of ``entries``: parallel arrays of primitives, one per field
    (OpenTelemetry attribute values cannot be arrays of objects); none when there are none."""
    if not entries:
        return {}
    return dict(zip(A.SUB_USAGE_ARRAYS, zip(*entries, strict=True), strict=True))


class RequestFacts(NamedTuple):
    """What a call asked for, read from the SDK method's keyword arguments."""

    operation: str
    model: str
    stream: bool = False
    # JSON was asked for as the text answer (response_format / text.format / output_format).
    json_content: bool = False
    # Tools were given: any tool-call arguments must parse as JSON.
    tools: bool = False
    service_tier: str | None = None
    # The inference speed mode asked for: "fast" | "standard" (Anthropic fast mode).
    speed: str | None = None
    # The inference geography asked for (Anthropic inference_geo: "global", "us", ...).
    inference_geo: str | None = None
    # True when we added stream_options.include_usage: the usage chunk is then hidden.
    usage_chunk_added: bool = False
    # Gemini: the google_search (or google_search_retrieval) tool was given, so the web search
    # queries a response reports are Google Search grounding, billed beside the tokens.
    google_search: bool = False

    @property
    def expects_json(self) -> bool:
        return self.json_content or self.tools


class ResponseFacts(NamedTuple):
    """What a finished (non-streamed or fully accumulated) response says."""

    model: str | None = None
    response_id: str | None = None
    usage: UsageTokens | None = None
    invalid_output: bool = False
    finish_reasons: tuple[str, ...] = ()
    service_tier: str | None = None
    # The speed mode the provider reports it ran at (it bills that one, not the one asked for).
    speed: str | None = None
    # Where the provider reports it ran inference (it bills that geography's price).
    inference_geo: str | None = None
    # The provider answered but reports the call failed (a Responses API ``status: failed``).
    error_type: str | None = None
    # Sub-inferences billed outside ``usage`` (Anthropic compaction and advisor iterations).
    sub_usage: tuple[SubUsage, ...] = ()
    # How the provider served the call (Vertex AI traffic_type: "on_demand",
    # "provisioned_throughput", ...): Provisioned Throughput is paid by a subscription.
    traffic_type: str | None = None
    # (``LLMCall._finish`` unpacks the fields in this order)


def usage_complete(usage: UsageTokens | None) -> bool:
    """Whether ``usage`` can price the call as reported: both the input and the output count
    are known. A ``usage`` object without them (``{}``, nulls, garbage, as some
    OpenAI-compatible servers send) is missing usage, to be estimated, not a zero-token call."""
    return usage is not None and usage.input_tokens is not None and usage.output_tokens is not None


def estimate_tokens(chars: int) -> int:
    """The cheap estimate used when the provider gives no usage: one token per 4 characters."""
    return math.ceil(chars / 4) if chars > 0 else 0


_MISSING = object()


def get(obj: Any, name: str, default: Any = None) -> Any:
    """``obj.name`` or ``obj[name]``: SDK models and plain dicts (raw JSON) alike."""
    if obj is None:
        return default
    if type(obj) is dict:
        return obj.get(name, default)
    value = getattr(obj, name, _MISSING)
    if value is _MISSING:
        return obj.get(name, default) if isinstance(obj, Mapping) else default
    return value


def as_int(value: Any) -> int | None:
    """A non-negative int, or None for anything else (bools and garbage included)."""
    if type(value) is int:  # the usual case first
        return value if value >= 0 else None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and value >= 0:
            return int(value)
        return None
    return value if value >= 0 else None


def is_json(text: Any) -> bool:
    """Whether ``text`` parses as JSON (non-strings count as already-parsed JSON)."""
    if text is None:
        return False
    if not isinstance(text, (str, bytes, bytearray)):
        return True
    try:
        json.loads(text)
    except (ValueError, TypeError):
        return False
    return True


def text_chars(value: Any, _depth: int = 0) -> int:
    """Characters of text in a prompt structure (strings, lists of parts, message dicts)."""
    if _depth > 6 or value is None:
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        total = 0
        for key in ("content", "text", "input", "system", "arguments", "output"):
            if key in value:
                total += text_chars(value[key], _depth + 1)
        return total
    if isinstance(value, (list, tuple)):
        return sum(text_chars(item, _depth + 1) for item in value)
    content = getattr(value, "content", None) or getattr(value, "text", None)
    return text_chars(content, _depth + 1) if content is not None else 0


def given(value: Any) -> bool:
    """Whether an SDK keyword argument was really given (not None, not the SDK's omit/NOT_GIVEN)."""
    if value is None:
        return False
    name = type(value).__name__
    return name not in ("Omit", "NotGiven")
