"""Pure functions reading the OpenAI SDK's requests and responses (chat, Responses, embeddings).

They accept SDK models and plain dicts alike and never raise on odd shapes (missing fields give
``None``). The stream accumulators are small state machines fed one chunk/event at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import attrgetter
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
    text_chars,
)

_JSON_FORMATS = ("json_object", "json_schema")


# --- requests ---------------------------------------------------------------------------------
def _model(kwargs: Mapping[str, Any]) -> str:
    model = kwargs.get("model")
    return model if isinstance(model, str) and model else "unknown"


def _tier(kwargs: Mapping[str, Any]) -> str | None:
    tier = kwargs.get("service_tier")
    return tier if isinstance(tier, str) else None


def _format_is_json(fmt: Any) -> bool:
    if not given(fmt):
        return False
    if isinstance(fmt, type):  # a pydantic model given to .parse()
        return True
    return get(fmt, "type") in _JSON_FORMATS


def chat_request_facts(kwargs: Mapping[str, Any]) -> RequestFacts:
    """Facts of a ``chat.completions.create`` / ``.parse`` call."""
    get_arg = kwargs.get
    fmt, tools, tier = get_arg("response_format"), get_arg("tools"), get_arg("service_tier")
    return RequestFacts(
        "chat",
        _model(kwargs),
        get_arg("stream") is True,
        fmt is not None and _format_is_json(fmt),
        tools is not None and given(tools) and bool(tools),
        tier if isinstance(tier, str) else None,
    )


def responses_request_facts(kwargs: Mapping[str, Any]) -> RequestFacts:
    """Facts of a ``responses.create`` / ``.parse`` call (``responses.stream`` goes through
    ``create(stream=True)``)."""
    text = kwargs.get("text")
    json_content = _format_is_json(kwargs.get("text_format")) or (
        given(text) and _format_is_json(get(text, "format"))
    )
    return RequestFacts(
        operation="chat",
        model=_model(kwargs),
        stream=kwargs.get("stream") is True,
        json_content=json_content,
        tools=given(kwargs.get("tools")) and bool(kwargs.get("tools")),
        service_tier=_tier(kwargs),
    )


def embeddings_request_facts(kwargs: Mapping[str, Any]) -> RequestFacts:
    return RequestFacts(operation="embeddings", model=_model(kwargs))


def with_include_usage(kwargs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``kwargs`` of a streamed chat call with ``stream_options.include_usage`` set, and whether
    we set it (then the extra usage chunk must be hidden from the app). Copies; never mutates."""
    if kwargs.get("stream") is not True or _reads_raw_sse(kwargs.get("extra_headers")):
        return kwargs, False
    options = kwargs.get("stream_options")
    if given(options) and get(options, "include_usage") is True:
        return kwargs, False
    merged = dict(options) if given(options) and isinstance(options, Mapping) else {}
    merged["include_usage"] = True
    return {**kwargs, "stream_options": merged}, True


def _reads_raw_sse(headers: Any) -> bool:
    """Whether the call is ``with_streaming_response``: the app may read the server-sent events
    itself, where an extra usage chunk could not be hidden from it."""
    if not isinstance(headers, Mapping):
        return False
    return any(
        isinstance(k, str) and k.lower() == "x-stainless-raw-response" and v == "stream"
        for k, v in headers.items()
    )


def chat_prompt_chars(kwargs: Mapping[str, Any]) -> int:
    return text_chars(kwargs.get("messages"))


def responses_prompt_chars(kwargs: Mapping[str, Any]) -> int:
    return text_chars(kwargs.get("input")) + text_chars(kwargs.get("instructions"))


def embeddings_prompt_chars(kwargs: Mapping[str, Any]) -> int:
    return text_chars(kwargs.get("input"))


# --- usage ------------------------------------------------------------------------------------
# SDK models: several fields in one C call; raw dicts and odd objects take ``get``.
_CHAT_USAGE_FIELDS = attrgetter(
    "prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"
)
_PROMPT_DETAILS = attrgetter("cached_tokens", "cache_write_tokens", "audio_tokens")
_COMPLETION_DETAILS = attrgetter("reasoning_tokens", "audio_tokens")
_CHAT_RESPONSE_FIELDS = attrgetter("choices", "model", "id", "usage", "service_tier")


def chat_usage(usage: Any) -> UsageTokens | None:
    """Chat Completions ``usage``: ``prompt_tokens`` already include cached tokens (read and
    written)."""
    if usage is None:
        return None
    try:
        prompt, completion, prompt_details, completion_details = _CHAT_USAGE_FIELDS(usage)
    except AttributeError:
        prompt, completion = get(usage, "prompt_tokens"), get(usage, "completion_tokens")
        prompt_details = get(usage, "prompt_tokens_details")
        completion_details = get(usage, "completion_tokens_details")
    try:
        cache_read, cache_write, audio_in = _PROMPT_DETAILS(prompt_details)
    except AttributeError:  # None, a dict (raw JSON), an SDK without one of the fields
        cache_read = get(prompt_details, "cached_tokens")
        cache_write = get(prompt_details, "cache_write_tokens")
        audio_in = get(prompt_details, "audio_tokens")
    try:
        reasoning, audio_out = _COMPLETION_DETAILS(completion_details)
    except AttributeError:
        reasoning = get(completion_details, "reasoning_tokens")
        audio_out = get(completion_details, "audio_tokens")
    if type(cache_read) is not int or cache_read < 0:  # as_int's usual case inline
        cache_read = as_int(cache_read)
        if cache_read is None:  # DeepSeek's spelling
            cache_read = as_int(get(usage, "prompt_cache_hit_tokens"))
    # Audio tokens are part of the totals, priced higher (gpt-audio: 12.8x text input); a
    # zero (every text-only call) is left out like an absent count: it prices the same.
    return UsageTokens(
        prompt if type(prompt) is int and prompt >= 0 else as_int(prompt),
        completion if type(completion) is int and completion >= 0 else as_int(completion),
        cache_read,
        None if cache_write is None else as_int(cache_write),
        reasoning if type(reasoning) is int and reasoning >= 0 else as_int(reasoning),
        None,
        None,
        None if not audio_in else as_int(audio_in) or None,
        None if not audio_out else as_int(audio_out) or None,
    )


def responses_usage(usage: Any) -> UsageTokens | None:
    """Responses API ``usage``: ``input_tokens`` already include cached tokens (read and
    written)."""
    if usage is None:
        return None
    details = get(usage, "input_tokens_details")
    return UsageTokens(
        input_tokens=as_int(get(usage, "input_tokens")),
        output_tokens=as_int(get(usage, "output_tokens")),
        cache_read_tokens=as_int(get(details, "cached_tokens")),
        cache_write_tokens=as_int(get(details, "cache_write_tokens")),
        reasoning_tokens=as_int(get(get(usage, "output_tokens_details"), "reasoning_tokens")),
    )


def responses_tool_calls(output: Any) -> tuple[int | None, int | None]:
    """(web searches, file searches) among a Response's output items: billed per call and not
    counted in ``usage``. ``None`` for none (it prices the same as 0)."""
    web = files = 0
    for item in output or ():
        kind = get(item, "type")
        if kind == "web_search_call":
            web += 1
        elif kind == "file_search_call":
            files += 1
    return web or None, files or None


def embeddings_usage(usage: Any) -> UsageTokens | None:
    if usage is None:
        return None
    return UsageTokens(input_tokens=as_int(get(usage, "prompt_tokens")), output_tokens=0)


# --- responses --------------------------------------------------------------------------------
def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def chat_choice_invalid(message: Any, request: RequestFacts) -> bool:
    """Whether one chat message breaks the JSON the request asked for."""
    tool_calls = get(message, "tool_calls") or ()
    for call in tool_calls:
        if not is_json(get(get(call, "function"), "arguments")):
            return True
    if request.json_content and not tool_calls:
        content = get(message, "content")
        if content is not None and not is_json(content):
            return True
    return False


def chat_response_facts(response: Any, request: RequestFacts) -> ResponseFacts:
    """Facts of a ``ChatCompletion`` (or ``ParsedChatCompletion``)."""
    try:
        choices, model, response_id, usage, tier = _CHAT_RESPONSE_FIELDS(response)
    except AttributeError:
        choices, model = get(response, "choices"), get(response, "model")
        response_id, usage = get(response, "id"), get(response, "usage")
        tier = get(response, "service_tier")
    choices = choices or ()
    invalid = (request.json_content or request.tools) and any(
        chat_choice_invalid(get(choice, "message"), request) for choice in choices
    )
    if type(choices) is list and len(choices) == 1:  # the usual case, without a generator
        reason = get(choices[0], "finish_reason")
        reasons: tuple[str, ...] = (reason,) if isinstance(reason, str) else ()
    else:
        reasons = tuple(r for r in (get(c, "finish_reason") for c in choices) if isinstance(r, str))
    return ResponseFacts(
        model if type(model) is str and model else _str(model),
        response_id if type(response_id) is str and response_id else _str(response_id),
        chat_usage(usage),
        invalid,
        reasons,
        _str(tier),
    )


def responses_output_invalid(output: Any, request: RequestFacts) -> bool:
    for item in output or ():
        kind = get(item, "type")
        if kind == "function_call" and not is_json(get(item, "arguments")):
            return True
        if kind == "message" and request.json_content:
            for part in get(item, "content") or ():
                if get(part, "type") == "output_text" and not is_json(get(part, "text")):
                    return True
    return False


def responses_response_facts(response: Any, request: RequestFacts) -> ResponseFacts:
    """Facts of a Responses API ``Response`` (or ``ParsedResponse``)."""
    status = get(response, "status")
    error_type = None
    if status == "failed":
        error_type = _str(get(get(response, "error"), "code")) or "failed"
    output = get(response, "output")
    usage = responses_usage(get(response, "usage"))
    # Counted with the usage they are billed beside; a response without usage is estimated.
    if usage is not None:
        web_searches, file_searches = responses_tool_calls(output)
        if web_searches or file_searches:
            usage = usage._replace(web_search_calls=web_searches, file_search_calls=file_searches)
    return ResponseFacts(
        model=_str(get(response, "model")),
        response_id=_str(get(response, "id")),
        usage=usage,
        invalid_output=request.expects_json and responses_output_invalid(output, request),
        finish_reasons=(status,) if isinstance(status, str) else (),
        service_tier=_str(get(response, "service_tier")),
        error_type=error_type,
    )


def embeddings_response_facts(response: Any, request: RequestFacts) -> ResponseFacts:
    return ResponseFacts(
        model=_str(get(response, "model")), usage=embeddings_usage(get(response, "usage"))
    )


def _chars(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def chat_output_chars(response: Any) -> int:
    """Characters a ``ChatCompletion`` answered with, every choice (``n > 1``) and tool call
    included: the output estimate when the provider reported no usage."""
    total = 0
    for choice in get(response, "choices") or ():
        message = get(choice, "message")
        total += _chars(get(message, "content")) + _chars(get(message, "refusal"))
        for call in get(message, "tool_calls") or ():
            total += _chars(get(get(call, "function"), "arguments"))
    return total


def responses_output_chars(response: Any) -> int:
    """Characters of a Responses API ``Response``'s output (text and function arguments)."""
    total = 0
    for item in get(response, "output") or ():
        kind = get(item, "type")
        if kind == "function_call":
            total += _chars(get(item, "arguments"))
        elif kind == "message":
            for part in get(item, "content") or ():
                total += _chars(get(part, "text")) + _chars(get(part, "refusal"))
    return total


# --- streams ----------------------------------------------------------------------------------
class ChatStreamAccumulator:
    """Follows a chat completion stream: ids, usage chunk, text received (for estimates and the
    JSON check). ``add`` returns True for the usage chunk we asked for, which the app must not
    see."""

    __slots__ = ("request", "model", "response_id", "usage", "chars", "chunks", "reasons",
                 "content", "tool_args", "service_tier")  # fmt: skip

    def __init__(self, request: RequestFacts) -> None:
        self.request = request
        self.model: str | None = None
        self.response_id: str | None = None
        self.usage: UsageTokens | None = None
        self.chars = 0
        self.chunks = 0
        self.reasons: list[str] = []
        self.content: list[str] | None = [] if request.expects_json else None
        self.tool_args: dict[tuple[int, int], list[str]] = {}
        self.service_tier: str | None = None

    def add(self, chunk: Any) -> bool:
        if self.response_id is None:
            self.response_id = _str(get(chunk, "id"))
            self.model = _str(get(chunk, "model"))
            self.service_tier = _str(get(chunk, "service_tier"))
        usage = get(chunk, "usage")
        choices = get(chunk, "choices") or ()
        if usage is not None:
            self.usage = chat_usage(usage)
        for choice in choices:
            delta = get(choice, "delta")
            text = get(delta, "content")
            if isinstance(text, str) and text:
                self.chars += len(text)
                self.chunks += 1
                if self.content is not None and (get(choice, "index") or 0) == 0:
                    self.content.append(text)
            for call in get(delta, "tool_calls") or ():
                args = get(get(call, "function"), "arguments")
                if isinstance(args, str) and args:
                    self.chars += len(args)
                    self.chunks += 1
                    if self.content is not None:
                        # tool-call indexes restart in every choice (n > 1)
                        key = (get(choice, "index") or 0, get(call, "index") or 0)
                        self.tool_args.setdefault(key, []).append(args)
            reason = get(choice, "finish_reason")
            if isinstance(reason, str):
                self.reasons.append(reason)
        return bool(self.request.usage_chunk_added and usage is not None and not choices)

    def usage_complete(self) -> bool:
        return self.usage is not None

    def invalid_output(self) -> bool:
        if not self.request.expects_json or self.content is None:
            return False
        if any(not is_json("".join(parts)) for parts in self.tool_args.values()):
            return True
        if self.request.json_content and not self.tool_args and self.content:
            return not is_json("".join(self.content))
        return False

    def facts(self) -> ResponseFacts:
        return ResponseFacts(
            model=self.model,
            response_id=self.response_id,
            usage=self.usage,
            invalid_output=self.invalid_output(),
            finish_reasons=tuple(self.reasons),
            service_tier=self.service_tier,
        )

    def estimated_output_tokens(self) -> int:
        return max(estimate_tokens(self.chars), self.chunks)


class ResponsesStreamAccumulator:
    """Follows a Responses API event stream; the final usage is in ``response.completed``. An
    ``error`` event (a failure mid-stream, which the SDK passes on as an event) fails the call
    unless a final ``response.*`` event says more."""

    __slots__ = ("request", "final", "model", "response_id", "chars", "chunks", "error_type")

    def __init__(self, request: RequestFacts) -> None:
        self.request = request
        self.final: ResponseFacts | None = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.chars = 0
        self.chunks = 0
        self.error_type: str | None = None

    def add(self, event: Any) -> bool:
        kind = get(event, "type")
        if kind in ("response.output_text.delta", "response.function_call_arguments.delta"):
            delta = get(event, "delta")
            if isinstance(delta, str):
                self.chars += len(delta)
                self.chunks += 1
        elif kind == "response.created":
            response = get(event, "response")
            self.model = _str(get(response, "model"))
            self.response_id = _str(get(response, "id"))
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.final = responses_response_facts(get(event, "response"), self.request)
        elif kind == "error":
            self.error_type = _str(get(event, "code")) or "error"
        return False

    def usage_complete(self) -> bool:
        return self.final is not None and self.final.usage is not None

    def facts(self) -> ResponseFacts:
        facts = self.final
        if facts is None:
            facts = ResponseFacts(model=self.model, response_id=self.response_id)
        if self.error_type is not None and facts.error_type is None:
            facts = facts._replace(error_type=self.error_type)
        return facts

    def estimated_output_tokens(self) -> int:
        return max(estimate_tokens(self.chars), self.chunks)
