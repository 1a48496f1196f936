"""Span attribute names: the contract between the instrumentation and the processor.

GenAI semantic-convention names come first (latest spelling). Attributes the conventions lack
live under ``llm_margin.`` and are defined here and nowhere else.
"""

from __future__ import annotations

# --- OpenTelemetry GenAI semantic conventions (latest spelling) ---------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_OUTPUT_TYPE = "gen_ai.output.type"
GEN_AI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
GEN_AI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

# --- llm-margin attributes ------------------------------------------------------------------
# Copied from allowlisted baggage (see baggage.py for the keys and caps).
CUSTOMER_ID = "customer.id"
WORKSPACE_ID = "workspace.id"
USER_ID = "user.id"
PLAN = "plan"
FEATURE = "feature"
TASK_ID = "task.id"

# Present on every span our instrumentation creates, so the processor knows the source.
INSTRUMENTATION = "llm_margin.instrumentation"
# "provider/model" as the app asked for it; retries keep it, fallbacks change it.
ROUTE = "llm_margin.route"
# Position of this call within its task (1-based) and its kind: first | retry | fallback.
ATTEMPT = "llm_margin.attempt"
ATTEMPT_KIND = "llm_margin.attempt_kind"
# HTTP attempts the SDK made inside this one call, minus one (429/5xx retries).
SDK_RETRIES = "llm_margin.sdk_retries"
# ok | error | invalid_output: invalid_output means JSON was asked for and did not parse.
CALL_STATUS = "llm_margin.status"
# provider | estimated: where the token counts came from.
USAGE_SOURCE = "llm_margin.usage_source"
STREAM = "llm_margin.stream"
# Anthropic splits cache writes into 5-minute and 1-hour buckets, priced differently.
CACHE_WRITE_5M_TOKENS = "llm_margin.usage.cache_write_5m.input_tokens"
CACHE_WRITE_1H_TOKENS = "llm_margin.usage.cache_write_1h.input_tokens"
# Audio tokens (OpenAI audio models: gpt-audio, gpt-4o-audio-preview, ...), parts of the input
# and output totals that are priced several times higher than text.
INPUT_AUDIO_TOKENS = "llm_margin.usage.audio.input_tokens"
OUTPUT_AUDIO_TOKENS = "llm_margin.usage.audio.output_tokens"
# Server-side tool calls the provider bills per call, beside the tokens: web searches
# (Anthropic usage.server_tool_use.web_search_requests, OpenAI Responses web_search_call
# items, Gemini's distinct Google Search grounding queries: Gemini 2.x is billed per grounded
# prompt, which the processor applies) and file searches (OpenAI Responses file_search_call
# items).
WEB_SEARCH_CALLS = "llm_margin.usage.web_search.calls"
FILE_SEARCH_CALLS = "llm_margin.usage.file_search.calls"
# Sub-inferences of one call billed OUTSIDE its top-level usage (Anthropic beta
# ``usage.iterations`` entries of type ``compaction`` and ``advisor_message``), as parallel
# arrays, one element per sub-inference: its kind, the model it ran on ("" = the call's own
# model: compaction) and its tokens (input is the total, cache reads and writes included, as
# gen_ai.usage.input_tokens is). The processor prices each at its model's price and adds it
# to the call's cost: one call stays one row.
SUB_USAGE_KIND = "llm_margin.sub_usage.kind"
SUB_USAGE_MODEL = "llm_margin.sub_usage.model"
SUB_USAGE_INPUT_TOKENS = "llm_margin.sub_usage.input_tokens"
SUB_USAGE_OUTPUT_TOKENS = "llm_margin.sub_usage.output_tokens"
SUB_USAGE_CACHE_READ_TOKENS = "llm_margin.sub_usage.cache_read.input_tokens"
SUB_USAGE_CACHE_WRITE_TOKENS = "llm_margin.sub_usage.cache_write.input_tokens"
SUB_USAGE_CACHE_WRITE_1H_TOKENS = "llm_margin.sub_usage.cache_write_1h.input_tokens"
# The arrays in the order of a sub-inference's fields (kind, model, input, output, cache read,
# cache write, cache write 1h): the instrumentation writes them, the processor reads them.
SUB_USAGE_ARRAYS = (
    SUB_USAGE_KIND,
    SUB_USAGE_MODEL,
    SUB_USAGE_INPUT_TOKENS,
    SUB_USAGE_OUTPUT_TOKENS,
    SUB_USAGE_CACHE_READ_TOKENS,
    SUB_USAGE_CACHE_WRITE_TOKENS,
    SUB_USAGE_CACHE_WRITE_1H_TOKENS,
)
# The provider's inference speed mode: "standard" or "fast" (Anthropic fast mode, billed at a
# premium per-token price). The response's value when it reports one, else the request's.
SPEED = "llm_margin.speed"
# Where the provider ran inference (Anthropic usage.inference_geo: "global", "us"; US-only
# inference is billed at a premium per token). The response's value when it reports one, else
# the request's inference_geo.
INFERENCE_GEO = "llm_margin.inference_geo"
# How the provider served the call (Vertex AI usage_metadata.traffic_type, lower-cased:
# "on_demand", "on_demand_priority", "on_demand_flex", "provisioned_throughput", ...). A call
# served from Provisioned Throughput is paid by the subscription, not per token.
TRAFFIC_TYPE = "llm_margin.traffic_type"
# Marks a "stream started" record: the processor stores it as an estimate that the final
# span (same call id) replaces.
CALL_ID = "llm_margin.call_id"
PROVISIONAL = "llm_margin.provisional"

# Task span (llm_margin.task()).
TASK_SPAN_NAME_PREFIX = "llm_margin.task"
TASK_NAME = "llm_margin.task.name"
TASK_OUTCOME = "llm_margin.task.outcome"
IS_TASK = "llm_margin.task.root"

BAGGAGE_ATTRIBUTE_KEYS = (CUSTOMER_ID, WORKSPACE_ID, USER_ID, PLAN, FEATURE, TASK_ID)

# Prompt and completion text: only with LLM_MARGIN_CAPTURE_CONTENT=true (default off).
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
# True on a stream span the app closed (or dropped) before the provider's final usage arrived.
STREAM_CLOSED_EARLY = "llm_margin.stream.closed_early"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
