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
from llm_margin.baggage import clean_value  # the instrumentation's rule, for any span's ids
from llm_margin.processor.receiver.limits import MAX_TOKENS_PER_CALL
from llm_margin.processor.records import (
    CALL_COLUMNS,
    UNATTRIBUTED,
    CallRecord,
    TaskSpanRecord,
)

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
# Audio parts of the input and output totals (OpenAI audio models), priced apart from text.
INPUT_AUDIO_KEYS = (A.INPUT_AUDIO_TOKENS,)
OUTPUT_AUDIO_KEYS = (A.OUTPUT_AUDIO_TOKENS,)
# Server-side tool calls billed per call (ours only: no other instrumentation records them).
WEB_SEARCH_KEYS = (A.WEB_SEARCH_CALLS,)
FILE_SEARCH_KEYS = (A.FILE_SEARCH_CALLS,)
# Sub-inferences billed outside the top-level usage (ours only): parallel arrays, in
# SubUsage's field order (records.CallRecord.sub_usage).
SUB_USAGE_KEYS = A.SUB_USAGE_ARRAYS
# More sub-inferences than any real call has (each compaction closes a context of 50,000
# tokens or more): a span claiming more is refused rather than priced entry by entry.
MAX_SUB_USAGE = 256
OPERATION_KEYS = (A.GEN_AI_OPERATION_NAME, "llm.request.type")
SERVICE_TIER_KEYS = (
    A.GEN_AI_RESPONSE_SERVICE_TIER,
    "anthropic.response.service_tier",
    "gen_ai.openai.response.service_tier",
    A.GEN_AI_REQUEST_SERVICE_TIER,
    "anthropic.request.service_tier",
    "gen_ai.openai.request.service_tier",
)
# The inference speed mode (Anthropic fast mode is priced apart): ours only.
SPEED_KEYS = (A.SPEED,)
# Where inference ran (Anthropic US-only inference is priced apart): ours only.
INFERENCE_GEO_KEYS = (A.INFERENCE_GEO,)
# How the provider served the call (Vertex AI Provisioned Throughput is paid by a subscription,
# priced apart): ours only.
TRAFFIC_TYPE_KEYS = (A.TRAFFIC_TYPE,)
# Retries the SDK made inside one call: ours, then the HTTP semantic convention anthropic's
# native spans record.
SDK_RETRY_KEYS = (A.SDK_RETRIES, "http.request.resend_count")

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
    return {kv.key: _decoded(kv.key, kv.value) for kv in key_values}


def _decoded(key: str, value: Any) -> Any:
    """any_value, with a text attribute (an id, a name) given as bytes, an array or a map made
    text or refused (ValueError: the span is rejected, not stored under a mangled id)."""
    decoded = any_value(value)
    if isinstance(decoded, (bytes, list, dict)) and key in _TEXT_KEYS:
        return _text_value(decoded, key)
    return decoded


_USAGE_KEYS = frozenset(INPUT_TOKEN_KEYS + OUTPUT_TOKEN_KEYS)
_OUTPUT_KEYS = frozenset(OUTPUT_TOKEN_KEYS)


def span_kind(attrs: Mapping[str, Any]) -> str | None:
    """'call', 'task' or None for a span's attributes."""
    if attrs.get(A.IS_TASK) is True:
        return "task"
    if _LLM_MARKERS.isdisjoint(attrs):
        return None
    for key in OPERATION_KEYS:
        operation = attrs.get(key)
        if operation is not None and operation != "":
            return "call" if str(operation).lower() in INFERENCE_OPERATIONS else None
    # No operation named: a call only if it reports usage (anthropic's count_tokens and
    # models.list spans name a provider and a model but are not inference).
    return None if _USAGE_KEYS.isdisjoint(attrs) else "call"


# -- one pass over a span's attributes ----------------------------------------------------------
# Every value call_from_span reads comes from a group of spellings, most specific first (a group
# of one for the project's own keys). Each key maps to (group, rank) once, at import, so a span
# is resolved in one pass over the attributes it has, instead of probing every spelling of
# every field. Groups are numbered in the order call_from_span converts them.
_TOKEN_GROUPS_BEFORE_TS = (INPUT_TOKEN_KEYS, CACHE_READ_KEYS, CACHE_WRITE_1H_KEYS, CACHE_WRITE_KEYS)
_TOKEN_GROUPS_AFTER_TS = (
    OUTPUT_TOKEN_KEYS,
    REASONING_KEYS,
    SDK_RETRY_KEYS,
    (A.ATTEMPT,),
    INPUT_AUDIO_KEYS,
    OUTPUT_AUDIO_KEYS,
    WEB_SEARCH_KEYS,
    FILE_SEARCH_KEYS,
)
_TEXT_GROUPS = tuple(
    (key,)
    for key in (
        A.ERROR_TYPE,
        A.CALL_STATUS,
        A.TASK_ID,
        A.CUSTOMER_ID,
        A.WORKSPACE_ID,
        A.USER_ID,
        A.PLAN,
        A.FEATURE,
        A.ROUTE,
        A.USAGE_SOURCE,
        A.ATTEMPT_KIND,
        A.INSTRUMENTATION,
    )
)
_OTHER_GROUPS = (
    PROVIDER_KEYS,
    REQUEST_MODEL_KEYS,
    RESPONSE_MODEL_KEYS,
    OPERATION_KEYS,
    SERVICE_TIER_KEYS,
    SPEED_KEYS,
    INFERENCE_GEO_KEYS,
    TRAFFIC_TYPE_KEYS,
)
_GROUPS = _TOKEN_GROUPS_BEFORE_TS + _TOKEN_GROUPS_AFTER_TS + _TEXT_GROUPS + _OTHER_GROUPS
_N_GROUPS = len(_GROUPS)
_T0 = len(_TOKEN_GROUPS_BEFORE_TS)  # first token group converted after the timestamp
_X0 = _T0 + len(_TOKEN_GROUPS_AFTER_TS)  # first text group
_O0 = _X0 + len(_TEXT_GROUPS)  # first of the other groups
# A token count's error names its group's canonical (first) spelling, whichever key held it.
_TOKEN_NAMES = tuple(group[0] for group in _GROUPS[:_X0])
# Keys whose value is a text (ids, names): decoded bytes, arrays and maps are checked.
_TEXT_KEYS = frozenset(key for group in _GROUPS[_X0:] for key in group) | {A.TASK_NAME}
_GROUP_OF: dict[str, tuple[int, int]] = {
    key: (index, rank) for index, group in enumerate(_GROUPS) for rank, key in enumerate(group)
}
assert len(_GROUP_OF) == sum(map(len, _GROUPS)), "a key belongs to two groups"
_NO_RANK = len(max(_GROUPS, key=len))

# Every key this module (and the pipeline's nesting, gen_ai.response.id) reads. The pipeline
# decodes only these; the functions here give the same answers on that subset as on all of a
# span's attributes.
READ_KEYS = frozenset(_GROUP_OF) | {
    A.IS_TASK,
    A.CALL_ID,
    A.PROVISIONAL,
    A.STREAM,
    "gen_ai.request.stream",
    A.GEN_AI_RESPONSE_ID,
    A.TASK_NAME,
    A.TASK_OUTCOME,
    *_LLM_MARKERS,
    *_USAGE_KEYS,
    *SUB_USAGE_KEYS,
}


def read_attributes(key_values: Iterable[Any]) -> dict[str, Any]:
    """The attributes this module reads (READ_KEYS), decoded; the others are not decoded."""
    out: dict[str, Any] = {}
    for kv in key_values:
        key = kv.key
        if key in READ_KEYS:
            value = kv.value
            # A non-empty string or non-zero int identifies its kind without WhichOneof (one
            # field of a oneof is set); anything else takes the general path.
            text = value.string_value
            if text:
                out[key] = text
            else:
                number = value.int_value
                out[key] = number if number else _decoded(key, value)
    return out


def _resolve(attrs: Mapping[str, Any]) -> list[Any]:
    """The value of each group: its best-ranked key whose value is neither unset nor ''."""
    values: list[Any] = [None] * _N_GROUPS
    ranks = [_NO_RANK] * _N_GROUPS
    group_of = _GROUP_OF.get
    for key, value in attrs.items():
        found = group_of(key)
        if found is None or value is None or value == "":
            continue
        index, rank = found
        if rank < ranks[index]:
            ranks[index] = rank
            values[index] = value
    return values


def _token_count(value: Any, name: str) -> int:
    """Non-negative integer token count; raises ValueError for a value that is not one."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"token count {name} is not a number: {value!r}")
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"token count {name} is not a number: {value!r}") from None
    if count < 0:
        raise ValueError(f"token count {name} is negative: {count}")
    return count


def _text_value(value: Any, name: str) -> str:
    """A text attribute given as another type: numbers as their text, UTF-8 bytes decoded;
    arrays and maps are not an id or a name, so the span is rejected (ValueError)."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")[:256]
        except UnicodeDecodeError:
            raise ValueError(f"{name} is bytes that are not UTF-8 text") from None
    if isinstance(value, (bool, int, float)):
        return str(value)[:256]
    kind = "a map" if isinstance(value, Mapping) else "an array"
    raise ValueError(f"{name} must be a string, got {kind}")


def canonical_provider(name: str) -> str:
    lowered = name.strip().lower()
    return PROVIDER_ALIASES.get(lowered, lowered)


def nanos_to_datetime(nanos: int) -> datetime:
    # Cut to the microsecond first: a float of nanoseconds/1e9 is off by up to a quarter
    # microsecond and was then rounded, so a call started just before a price change (or a
    # month) at D was stored, and priced, at D. A whole number of microseconds / 1e6 is
    # within 0.12 us of exact, which fromtimestamp's rounding to the microsecond undoes.
    return datetime.fromtimestamp((nanos // 1000) / 1e6, timezone.utc)


def _text(attrs: Mapping[str, Any], key: str, limit: int = 256) -> str:
    value = attrs.get(key)
    if value is None:
        return ""
    return clean_value(value, limit)


def _canonical_input(
    input_tokens: int, cache_read: int, cache_write_1h: int, cache_write: int
) -> tuple[int, int, int, int]:
    cache_write = max(cache_write, cache_write_1h)
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
_RANK_MASK = (1 << _RANK_SHIFT) - 1


def call_rank(attrs: Mapping[str, Any]) -> int:
    if attrs.get(A.PROVISIONAL) is True:
        return RANK_PROVISIONAL
    if attrs.get(A.INSTRUMENTATION) or attrs.get(A.CALL_ID):
        return RANK_OURS
    if not _OUTPUT_KEYS.isdisjoint(attrs):
        return RANK_FOREIGN_USAGE
    return RANK_FOREIGN


# error_type of a stream-start record no final record has replaced (yet).
STREAM_INCOMPLETE = "stream_incomplete"


def row_version(rank: int, end_unix_nano: int) -> int:
    return (rank << _RANK_SHIFT) | ((end_unix_nano // 1000) & _RANK_MASK)


def version_rank(version: int) -> int:
    return version >> _RANK_SHIFT


# CallRecord's leading fields, in order: call_from_span passes them positionally (matching 30
# keywords costs a fifth of its time). Import fails, rather than mixing columns up, if
# records.py changes their order.
_CALL_POSITIONAL = (
    "ts trace_id span_id parent_span_id task_id customer_id workspace_id user_id plan feature "
    "provider route operation request_model response_model status error_type input_tokens "
    "output_tokens cache_read_tokens cache_write_tokens cache_write_1h_tokens reasoning_tokens "
    "usage_source sdk_retries attempt attempt_kind latency_ms stream service_tier"
).split()
if list(CALL_COLUMNS[: len(_CALL_POSITIONAL)]) != _CALL_POSITIONAL:
    raise ImportError("records.CallRecord's field order changed: update call_from_span")


_UNCUT = 1 << 62  # clean_value's length limit when the storability check judges the length


def call_from_span(span: Any, attrs: Mapping[str, Any]) -> CallRecord:
    """A CallRecord (not yet priced) from one OTLP span and its attributes: all of them as a
    dict (attributes_to_dict) or the ones this module reads (read_attributes)."""
    values = _resolve(attrs)
    (
        error_type,
        status,
        task_id,
        customer_id,
        workspace_id,
        user_id,
        plan,
        feature,
        route,
        usage_source,
        attempt_kind,
        source,
    ) = ["" if value is None else clean_value(value, 256) for value in values[_X0:_O0]]
    provider, request_model, response_model, operation, service_tier, speed, geo, traffic = values[
        _O0:
    ]
    # Model and provider names are shown in reports too: no control characters (a model name
    # with terminal escapes or a newline would redraw a terminal or break a CSV row). Not cut:
    # an oversized one rejects the span (receiver/limits.py), as before.
    provider = canonical_provider("" if provider is None else clean_value(provider, _UNCUT))
    request_model = "" if request_model is None else clean_value(request_model, _UNCUT)
    response_model = "" if response_model is None else clean_value(response_model, _UNCUT)
    trace_id = span.trace_id.hex()
    call_id = attrs.get(A.CALL_ID)
    if not status:
        status = "error" if error_type or span.status.code == 2 else "ok"
    if attrs.get(A.PROVISIONAL) is True:
        # A stream-start record: the stream has not delivered yet. Its final record replaces
        # it; if none ever comes (the app died mid-stream) the call did not deliver.
        status, error_type = "error", error_type or STREAM_INCOMPLETE
    # Token counts convert in the order they always have, so a span with several bad values
    # is rejected with the same reason; the start time converts between the two groups.
    input_tokens, cache_read, cache_write, cache_write_1h = _canonical_input(
        *[
            0 if v is None else v if type(v) is int and v >= 0 else _token_count(v, name)
            for v, name in zip(values[:_T0], _TOKEN_NAMES[:_T0], strict=True)
        ]
    )
    start = span.start_time_unix_nano
    end = span.end_time_unix_nano
    ts = nanos_to_datetime(start)
    (
        output_tokens,
        reasoning_tokens,
        sdk_retries,
        attempt,
        input_audio,
        output_audio,
        web_searches,
        file_searches,
    ) = [
        0 if v is None else v if type(v) is int and v >= 0 else _token_count(v, name)
        for v, name in zip(values[_T0:_X0], _TOKEN_NAMES[_T0:], strict=True)
    ]
    return CallRecord(
        ts,
        trace_id,
        str(call_id) if call_id else span.span_id.hex(),
        span.parent_span_id.hex(),
        task_id or trace_id,
        customer_id or UNATTRIBUTED,
        workspace_id,
        user_id,
        plan,
        feature,
        provider,
        route or f"{provider}/{request_model or response_model}",
        "chat" if operation is None else clean_value(operation, _UNCUT),
        request_model,
        response_model,
        status,
        error_type,
        input_tokens,
        output_tokens,
        cache_read,
        cache_write,
        cache_write_1h,
        reasoning_tokens,
        usage_source or ("estimated" if attrs.get(A.PROVISIONAL) is True else "provider"),
        sdk_retries,
        attempt or 1,
        attempt_kind or "first",
        max(0.0, (end - start) / 1e6) if end else 0.0,
        attrs.get(A.STREAM) is True or attrs.get("gen_ai.request.stream") is True,
        "" if service_tier is None else clean_value(service_tier, 64),
        source=source or "otel",
        # A provisional (stream-start) record must lose against the final one, and another
        # instrumentation's span of the same request against ours (see call_rank).
        version=row_version(call_rank(attrs), end or start),
        # Parts of their totals: never more than the total (genai-prices would price the
        # difference as a negative count of text tokens).
        input_audio_tokens=min(input_audio, input_tokens),
        output_audio_tokens=min(output_audio, output_tokens),
        web_search_calls=web_searches,
        file_search_calls=file_searches,
        speed="" if speed is None else clean_value(speed, 64).lower(),
        sub_usage=() if attrs.get(A.SUB_USAGE_KIND) is None else sub_usage_from(attrs),
        inference_geo="" if geo is None else clean_value(geo, 64).lower(),
        traffic_type="" if traffic is None else clean_value(traffic, 64).lower(),
    )


def sub_usage_from(attrs: Mapping[str, Any]) -> tuple[tuple, ...]:
    """CallRecord.sub_usage from the ``llm_margin.sub_usage.*`` arrays: one tuple per element
    (kind, model, input, output, cache read, cache write, cache write 1h). A count array left
    out counts zeros, a model array left out the call's own model. Raises ValueError (the span
    is refused) for arrays of different lengths, a bad count or too many entries."""
    columns = [attrs.get(key) for key in SUB_USAGE_KEYS]
    size = len(columns[0]) if isinstance(columns[0], (list, tuple)) else -1
    if not 0 <= size <= MAX_SUB_USAGE or any(
        column is not None and (not isinstance(column, (list, tuple)) or len(column) != size)
        for column in columns
    ):
        raise ValueError(
            f"{A.SUB_USAGE_KIND} and the other llm_margin.sub_usage arrays must be arrays of "
            f"one length (at most {MAX_SUB_USAGE})"
        )
    kinds, models = columns[0], columns[1] or [""] * size
    counts = [
        [_sub_usage_count(v, key) for v in column] if column is not None else [0] * size
        for column, key in zip(columns[2:], SUB_USAGE_KEYS[2:], strict=True)
    ]
    entries = []
    for kind, model, total, output, read, write, write_1h in zip(
        kinds, models, *counts, strict=True
    ):
        write_1h = min(write_1h, write)
        entries.append(
            (
                clean_value(_sub_usage_text(kind, A.SUB_USAGE_KIND), 64),
                clean_value(_sub_usage_text(model, A.SUB_USAGE_MODEL), 256),
                # A total, like input_tokens: never less than its cache parts.
                max(total, read + write),
                output,
                read,
                write,
                write_1h,
            )
        )
    return tuple(entries)


def _sub_usage_text(value: Any, name: str) -> str:
    return value if isinstance(value, str) else _text_value(value, name)


def _sub_usage_count(value: Any, name: str) -> int:
    count = _token_count(value, name)
    if count > MAX_TOKENS_PER_CALL:
        raise ValueError(f"{name} out of range: {count}")
    return count


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
