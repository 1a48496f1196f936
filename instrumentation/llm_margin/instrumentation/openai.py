"""OpenAI SDK instrumentation (openai >= 3): one CLIENT span per SDK call, priced by the
llm-margin processor.

Usage
-----
Automatic, under the launcher (entry point ``llm_margin_openai``)::

    opentelemetry-instrument python app.py

or by hand, after setting up an SDK ``TracerProvider``::

    from llm_margin.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument()            # tracer_provider=... optional

Instrumented: ``chat.completions.create`` / ``.parse`` (``.stream`` goes through ``create``),
``responses.create`` / ``.parse`` (``responses.stream`` goes through ``create``),
``embeddings.create``; sync and async clients; any ``base_url`` (the span's
``gen_ai.provider.name`` is inferred from the host: Azure OpenAI, DeepSeek, Groq, Together,
OpenRouter, ...; override with ``LLM_MARGIN_PROVIDER_HOSTS``).

What a span carries: see ``llm_margin.attributes`` (operation, provider, request/response model,
response id, input tokens including cached ones, output, cache read, reasoning, service tier,
server address/port, status ok | error | invalid_output, error.type, usage source, stream flag,
SDK retries, route, attempt and kind, call id) plus the customer attributes copied from baggage.

Streams: ``stream_options.include_usage`` is added to chat streams when the app did not ask
(the extra usage chunk is hidden from the app); a provisional span is emitted when the stream
starts; the call span ends when the stream ends, however it ends.

Privacy: no prompt or completion text unless ``LLM_MARGIN_CAPTURE_CONTENT=true``; the SDK's
HTTP requests are sent from a context without baggage, so no customer id reaches the provider.

Configuration: see ``llm_margin.config``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ..config import get_config
from . import _openai_extract as X
from ._common import (
    Endpoint,
    async_wrapper,
    sync_wrapper,
)
from ._instrumentor import ProviderInstrumentor
from ._types import RequestFacts, get
from .package import _instruments_openai

PROVIDER = "openai"


def _add_include_usage(
    kwargs: dict[str, Any], facts: RequestFacts
) -> tuple[dict[str, Any], RequestFacts]:
    if not facts.stream or not get_config().stream_usage:
        return kwargs, facts
    kwargs, added = X.with_include_usage(kwargs)
    if not added:
        return kwargs, facts
    return kwargs, facts._replace(usage_chunk_added=True)


def _chat_output(response: Any) -> Any:
    return [get(get(choice, "message"), "content") for choice in get(response, "choices") or ()]


def _responses_output(response: Any) -> Any:
    return get(response, "output_text")


CHAT = Endpoint(
    provider=PROVIDER,
    request_facts=X.chat_request_facts,
    prompt_chars=X.chat_prompt_chars,
    response_facts=X.chat_response_facts,
    accumulator=X.ChatStreamAccumulator,
    prepare=_add_include_usage,
    output_text=_chat_output,
    output_chars=X.chat_output_chars,
)
RESPONSES = Endpoint(
    provider=PROVIDER,
    request_facts=X.responses_request_facts,
    prompt_chars=X.responses_prompt_chars,
    response_facts=X.responses_response_facts,
    accumulator=X.ResponsesStreamAccumulator,
    output_text=_responses_output,
    output_chars=X.responses_output_chars,
)
EMBEDDINGS = Endpoint(
    provider=PROVIDER,
    request_facts=X.embeddings_request_facts,
    prompt_chars=X.embeddings_prompt_chars,
    response_facts=X.embeddings_response_facts,
)

_CHAT_MODULE = "openai.resources.chat.completions.completions"
_RESPONSES_MODULE = "openai.resources.responses.responses"
# client.beta.responses (openai 3.x): the same endpoint with beta features, billed the same.
_BETA_RESPONSES_MODULE = "openai.resources.beta.responses.responses"
_EMBEDDINGS_MODULE = "openai.resources.embeddings"


def _targets() -> list[tuple[str, str, Any]]:
    return [
        (_CHAT_MODULE, "Completions.create", sync_wrapper(CHAT)),
        (_CHAT_MODULE, "Completions.parse", sync_wrapper(CHAT)),
        (_CHAT_MODULE, "AsyncCompletions.create", async_wrapper(CHAT)),
        (_CHAT_MODULE, "AsyncCompletions.parse", async_wrapper(CHAT)),
        (_RESPONSES_MODULE, "Responses.create", sync_wrapper(RESPONSES)),
        (_RESPONSES_MODULE, "Responses.parse", sync_wrapper(RESPONSES)),
        (_RESPONSES_MODULE, "AsyncResponses.create", async_wrapper(RESPONSES)),
        (_RESPONSES_MODULE, "AsyncResponses.parse", async_wrapper(RESPONSES)),
        (_BETA_RESPONSES_MODULE, "Responses.create", sync_wrapper(RESPONSES)),
        (_BETA_RESPONSES_MODULE, "AsyncResponses.create", async_wrapper(RESPONSES)),
        (_EMBEDDINGS_MODULE, "Embeddings.create", sync_wrapper(EMBEDDINGS)),
        (_EMBEDDINGS_MODULE, "AsyncEmbeddings.create", async_wrapper(EMBEDDINGS)),
    ]


class OpenAIInstrumentor(ProviderInstrumentor):
    """Instruments the OpenAI SDK. ``instrument(tracer_provider=...)``, ``uninstrument()``."""

    provider = "openai"
    targets = staticmethod(_targets)

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments_openai
