"""Turn OTLP spans into call and task records: pure functions, no I/O.

Accepts our instrumentation's attributes and the other common spellings (GenAI semantic
conventions old and new, OpenLLMetry). Spans that are neither LLM calls nor task roots return
None quickly so non-LLM traffic costs little.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from llm_margin import attributes as A
from llm_margin.processor.records import UNATTRIBUTED, CallRecord, TaskSpanRecord

# Attribute spellings, most specific first. Values: OTLP attribute keys.
PROVIDER_KEYS = (A.GEN_AI_PROVIDER_NAME, "gen_ai.system", "llm.vendor")
REQUEST_MODEL_KEYS = (A.GEN_AI_REQUEST_MODEL, "llm.request.model")
RESPONSE_MODEL_KEYS = (A.GEN_AI_RESPONSE_MODEL, "llm.response.model")
INPUT_TOKEN_KEYS = (
    A.GEN_AI_USAGE_INPUT_TOKENS,
    "gen_ai.usage.prompt_tokens",
    "llm.usage.prompt_tokens",
)
OUTPUT_TOKEN_KEYS = (
    A.GEN_AI_USAGE_OUTPUT_TOKENS,
    "gen_ai.usage.completion_tokens",
    "llm.usage.completion_tokens",
)
CACHE_READ_KEYS = (
    A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    "gen_ai.usage.cache_read_input_tokens",
    "llm.usage.cache_read_input_tokens",
)
CACHE_WRITE_KEYS = (
    A.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.usage.cache_creation_input_tokens",
)
REASONING_KEYS = (
    A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    "gen_ai.usage.reasoning_tokens",
    "llm.usage.reasoning_tokens",
)
OPERATION_KEYS = (A.GEN_AI_OPERATION_NAME, "llm.request.type")

# Provider names as the conventions spell them -> one canonical name per provider.
PROVIDER_ALIASES: Mapping[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure.ai.openai": "azure",
    "az.ai.openai": "azure",
    "azure": "azure",
    "aws.bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "google": "google",
    "deepseek": "deepseek",
    "groq": "groq",
    "together": "together",
    "together_ai": "together",
    "openrouter": "openrouter",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "cohere": "cohere",
    "perplexity": "perplexity",
}

# Marker attributes: a span with none of them is not ours to price.
_LLM_MARKERS = frozenset(PROVIDER_KEYS + INPUT_TOKEN_KEYS + REQUEST_MODEL_KEYS)


def any_value(value: Any) -> Any:
    """Python value of an OTLP AnyValue (scalars and arrays; maps as dicts)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        return value.double_value
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value
    return None


def attributes_to_dict(key_values: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in key_values}


def span_kind(attrs: Mapping[str, Any]) -> str | None:
    """'call', 'task' or None for a span's attributes."""
    if attrs.get(A.IS_TASK) is True:
        return "task"
    if attrs.keys() & _LLM_MARKERS:
        return "call"
    return None


def first(attrs: Mapping[str, Any], keys: tuple[str, ...], default: Any = None) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return default


def token_count(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> int:
    """Non-negative integer token count; raises ValueError for a value that is not one."""
    value = first(attrs, keys, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"token count {keys[0]} is not a number: {value!r}")
    count = int(value)
    if count < 0:
        raise ValueError(f"token count {keys[0]} is negative: {count}")
    return count


def canonical_provider(name: str) -> str:
    lowered = name.strip().lower()
    return PROVIDER_ALIASES.get(lowered, lowered)


def nanos_to_datetime(nanos: int) -> datetime:
    return datetime.fromtimestamp(nanos / 1e9, tz=timezone.utc)


def _text(attrs: Mapping[str, Any], key: str, limit: int = 256) -> str:
    value = attrs.get(key)
    if value is None:
        return ""
    return str(value)[:limit]


def call_from_span(span: Any, attrs: Mapping[str, Any]) -> CallRecord:
    """A CallRecord (not yet priced) from one OTLP span and its attribute dict."""
    trace_id = span.trace_id.hex()
    span_id = span.span_id.hex()
    call_id = attrs.get(A.CALL_ID)
    provider = canonical_provider(str(first(attrs, PROVIDER_KEYS, "")))
    request_model = str(first(attrs, REQUEST_MODEL_KEYS, ""))
    response_model = str(first(attrs, RESPONSE_MODEL_KEYS, ""))
    error_type = _text(attrs, A.ERROR_TYPE)
    status = _text(attrs, A.CALL_STATUS) or (
        "error" if error_type or span.status.code == 2 else "ok"
    )
    input_tokens = token_count(attrs, INPUT_TOKEN_KEYS)
    cache_read = token_count(attrs, CACHE_READ_KEYS)
    cache_write = token_count(attrs, CACHE_WRITE_KEYS)
    provisional = attrs.get(A.PROVISIONAL) is True
    start = span.start_time_unix_nano
    end = span.end_time_unix_nano
    return CallRecord(
        ts=nanos_to_datetime(start),
        trace_id=trace_id,
        span_id=str(call_id) if call_id else span_id,
        parent_span_id=span.parent_span_id.hex(),
        task_id=_text(attrs, A.TASK_ID) or trace_id,
        customer_id=_text(attrs, A.CUSTOMER_ID) or UNATTRIBUTED,
        workspace_id=_text(attrs, A.WORKSPACE_ID),
        user_id=_text(attrs, A.USER_ID),
        plan=_text(attrs, A.PLAN),
        feature=_text(attrs, A.FEATURE),
        provider=provider,
        route=_text(attrs, A.ROUTE) or f"{provider}/{request_model or response_model}",
        operation=str(first(attrs, OPERATION_KEYS, "chat")),
        request_model=request_model,
        response_model=response_model,
        status=status,
        error_type=error_type,
        input_tokens=input_tokens,
        output_tokens=token_count(attrs, OUTPUT_TOKEN_KEYS),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=token_count(attrs, (A.CACHE_WRITE_1H_TOKENS,)),
        reasoning_tokens=token_count(attrs, REASONING_KEYS),
        usage_source=_text(attrs, A.USAGE_SOURCE) or ("estimated" if provisional else "provider"),
        sdk_retries=token_count(attrs, (A.SDK_RETRIES,)),
        attempt=token_count(attrs, (A.ATTEMPT,)) or 1,
        attempt_kind=_text(attrs, A.ATTEMPT_KIND) or "first",
        latency_ms=max(0.0, (end - start) / 1e6) if end else 0.0,
        stream=attrs.get(A.STREAM) is True,
        service_tier=_text(attrs, A.GEN_AI_RESPONSE_SERVICE_TIER)
        or _text(attrs, A.GEN_AI_REQUEST_SERVICE_TIER),
        source=_text(attrs, A.INSTRUMENTATION) or "otel",
        # A provisional (stream-start) record must lose against the final one.
        version=(end or start) // 1000 if not provisional else 0,
    )


def task_span_from_span(span: Any, attrs: Mapping[str, Any]) -> TaskSpanRecord:
    trace_id = span.trace_id.hex()
    return TaskSpanRecord(
        task_id=_text(attrs, A.TASK_ID) or trace_id,
        trace_id=trace_id,
        span_id=span.span_id.hex(),
        name=_text(attrs, A.TASK_NAME),
        outcome=_text(attrs, A.TASK_OUTCOME) or "unknown",
        customer_id=_text(attrs, A.CUSTOMER_ID),
        workspace_id=_text(attrs, A.WORKSPACE_ID),
        plan=_text(attrs, A.PLAN),
        feature=_text(attrs, A.FEATURE),
        started_at=nanos_to_datetime(span.start_time_unix_nano),
        ended_at=nanos_to_datetime(span.end_time_unix_nano or span.start_time_unix_nano),
        version=(span.end_time_unix_nano or span.start_time_unix_nano) // 1000,
    )
