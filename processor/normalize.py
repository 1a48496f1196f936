"""Turn OTLP spans into call and task records: pure functions, no I/O.

Accepts our instrumentation's attributes and the other common spellings: the GenAI semantic
conventions old (``gen_ai.system``, ``prompt_tokens``) and new (``gen_ai.provider.name``,
``cache_read.input_tokens``), OpenLLMetry (``gen_ai.usage.cache_read_input_tokens``,
``llm.usage.*``), the official genai instrumentations and anthropic's native SDK spans
(``anthropic.messages.create``, ``http.request.resend_count``). Spans that are neither LLM calls
nor task roots return None quickly so non-LLM traffic costs little.

Canonical usage (what ``CallRecord`` holds and the price book expects, as genai-prices does):
``input_tokens`` is the TOTAL prompt including cache reads and writes; ``cache_write_tokens``
includes the 1-hour bucket. A shape that reports input without its cache tokens (Anthropic's
raw ``usage.input_tokens``) is recognised when its input is smaller than its cache tokens, which
a total cannot be, and the cache tokens are added.

A span with a provider but no inference operation and no usage (``models.list``,
``count_tokens``, ``execute_tool``, an agent span) is not a call: pricing it would count a call
that never went to a model, or count an agent's aggregated usage twice.
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
# The 1-hour part of Anthropic's cache writes (priced higher than the 5-minute default).
CACHE_WRITE_1H_KEYS = (
    A.CACHE_WRITE_1H_TOKENS,
    "anthropic.usage.cache_creation.ephemeral_1h_input_tokens",
)
REASONING_KEYS = (
    A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    "gen_ai.usage.reasoning_tokens",
    "llm.usage.reasoning_tokens",
)
OPERATION_KEYS = (A.GEN_AI_OPERATION_NAME, "llm.request.type")
SERVICE_TIER_KEYS = (
    A.GEN_AI_RESPONSE_SERVICE_TIER,
    "anthropic.response.service_tier",
    "gen_ai.openai.response.service_tier",
    A.GEN_AI_REQUEST_SERVICE_TIER,
    "anthropic.request.service_tier",
    "gen_ai.openai.request.service_tier",
)
# Retries the SDK made inside one call: ours, then the HTTP semantic convention anthropic's
# native spans record.
SDK_RETRY_KEYS = (A.SDK_RETRIES, "http.request.resend_count")
RESPONSE_ID_KEYS = (A.GEN_AI_RESPONSE_ID, "gen_ai.response.id")

# Operations that are model inference. A span naming another operation (execute_tool,
# invoke_agent, create_agent, ...) is never a call, even if it carries summed usage.
INFERENCE_OPERATIONS = frozenset(
    {
        "chat",
        "text_completion",
        "completion",
        "generate_content",
        "embeddings",
        "embedding",
        "responses",
        "rerank",
    }
)
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


_USAGE_KEYS = frozenset(INPUT_TOKEN_KEYS + OUTPUT_TOKEN_KEYS)


def span_kind(attrs: Mapping[str, Any]) -> str | None:
    """'call', 'task' or None for a span's attributes."""
    if attrs.get(A.IS_TASK) is True:
        return "task"
    if not attrs.keys() & _LLM_MARKERS:
        return None
    operation = first(attrs, OPERATION_KEYS)
    if operation is not None:
        return "call" if str(operation).lower() in INFERENCE_OPERATIONS else None
    # No operation named: a call only if it reports usage (anthropic's count_tokens and
    # models.list spans name a provider and a model but are not inference).
    return "call" if attrs.keys() & _USAGE_KEYS else None


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
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"token count {keys[0]} is not a number: {value!r}") from None
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


def canonical_usage(attrs: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """(input incl. cache, cache read, cache write incl. 1h, cache write 1h) of any shape."""
    input_tokens = token_count(attrs, INPUT_TOKEN_KEYS)
    cache_read = token_count(attrs, CACHE_READ_KEYS)
    cache_write_1h = token_count(attrs, CACHE_WRITE_1H_KEYS)
    cache_write = max(token_count(attrs, CACHE_WRITE_KEYS), cache_write_1h)
    if input_tokens and input_tokens < cache_read + cache_write:
        # A total cannot be smaller than its parts: this shape reports fresh input only.
        input_tokens += cache_read + cache_write
    return input_tokens, cache_read, cache_write, cache_write_1h


# Which span of one provider request is kept when several instrumentations traced it:
# ours (final) > another instrumentation's span with usage > one without > our stream-start
# estimate. The rank is the high bits of `version`, so ReplacingMergeTree keeps the best row
# whatever order the spans arrive in.
RANK_PROVISIONAL, RANK_FOREIGN, RANK_FOREIGN_USAGE, RANK_OURS = 0, 1, 2, 3
_RANK_SHIFT = 52  # end time in microseconds fits below bit 52 until the year 2112


def call_rank(attrs: Mapping[str, Any]) -> int:
    if attrs.get(A.PROVISIONAL) is True:
        return RANK_PROVISIONAL
    if attrs.get(A.INSTRUMENTATION) or attrs.get(A.CALL_ID):
        return RANK_OURS
    if attrs.keys() & _OUTPUT_KEYS:
        return RANK_FOREIGN_USAGE
    return RANK_FOREIGN


_OUTPUT_KEYS = frozenset(OUTPUT_TOKEN_KEYS)


def row_version(rank: int, end_unix_nano: int) -> int:
    return (rank << _RANK_SHIFT) | ((end_unix_nano // 1000) & ((1 << _RANK_SHIFT) - 1))


def version_rank(version: int) -> int:
    return version >> _RANK_SHIFT


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
    input_tokens, cache_read, cache_write, cache_write_1h = canonical_usage(attrs)
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
        cache_write_1h_tokens=cache_write_1h,
        reasoning_tokens=token_count(attrs, REASONING_KEYS),
        usage_source=_text(attrs, A.USAGE_SOURCE) or ("estimated" if provisional else "provider"),
        sdk_retries=token_count(attrs, SDK_RETRY_KEYS),
        attempt=token_count(attrs, (A.ATTEMPT,)) or 1,
        attempt_kind=_text(attrs, A.ATTEMPT_KIND) or "first",
        latency_ms=max(0.0, (end - start) / 1e6) if end else 0.0,
        stream=attrs.get(A.STREAM) is True or attrs.get("gen_ai.request.stream") is True,
        service_tier=str(first(attrs, SERVICE_TIER_KEYS, ""))[:64],
        source=_text(attrs, A.INSTRUMENTATION) or "otel",
        # A provisional (stream-start) record must lose against the final one, and another
        # instrumentation's span of the same request against ours (see call_rank).
        version=row_version(call_rank(attrs), end or start),
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
