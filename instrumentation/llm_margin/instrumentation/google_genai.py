"""Google Gen AI SDK instrumentation (google-genai >= 3, Gemini API and Vertex AI): one CLIENT
span per ``generate_content`` / ``embed_content`` request, priced by the llm-margin processor.

Usage
-----
Automatic, under the launcher (entry point ``llm_margin_google_genai``)::

    opentelemetry-instrument python app.py

or by hand, after setting up an SDK ``TracerProvider``::

    from llm_margin.instrumentation.google_genai import GoogleGenAIInstrumentor
    GoogleGenAIInstrumentor().instrument()         # tracer_provider=... optional

Instrumented: ``client.models.generate_content``, ``generate_content_stream`` and
``embed_content``, and the same under ``client.aio.models``; chat sessions
(``client.chats.create(...).send_message`` / ``send_message_stream``, sync and async) go
through them. One public call may send several billed requests: automatic function calling
(Python functions given as tools) asks the model again with each function's result, and
automatic continuation follows continuation tokens. So the SDK's one-request methods
(``Models._generate_content``, ``_generate_content_stream``, ``_embed_content``) are the ones
wrapped: one span per request, each priced from its own ``usage_metadata``.

Provider: ``gcp.gemini`` (``gcp.vertex_ai`` for a Vertex AI client), or what the base URL's
host names (``LLM_MARGIN_PROVIDER_HOSTS``). Usage: see ``_google_genai_extract``. Service tier
(lowercase: ``flex``, ``standard``, ``priority``): ``config.service_tier`` as
``openai.request.service_tier``, the tier served (priority over its limit runs at standard) as
``openai.response.service_tier``, from ``usage_metadata.service_tier`` or else the
``x-gemini-service-tier`` response header, else the tier of the Vertex AI traffic type.
Vertex AI's ``usage_metadata.traffic_type`` (a stream's last chunk carrying usage) as
``llm_margin.traffic_type``, lower-cased: ``on_demand``, ``on_demand_priority``,
``on_demand_flex``, ``provisioned_throughput`` (paid by the subscription, not per token; the
processor prices it by a ``traffic_types:`` multiplier). Grounding with Google Search (a request with the
``google_search`` tool): the distinct queries the response lists, as
``llm_margin.usage.web_search.calls``. SDK retries
(``HttpRetryOptions``, off by default, retried by tenacity inside the SDK) are counted from the
HTTP attempts of the SDK's httpx2 client, and from its one-attempt method
(``BaseApiClient._request_once`` / ``_async_request_once``) for attempts sent another way:
aiohttp (the async client when aiohttp is installed), httpx, or google-auth's ``requests``
session (Vertex AI with a client certificate).

Configuration: see ``llm_margin.config``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from . import _google_genai_extract as X
from ._common import (
    CURRENT_CALL,
    Endpoint,
    LLMCall,
    async_wrapper,
    record_internal_error,
    sync_wrapper,
    url_server_info,
)
from ._instrumentor import ProviderInstrumentor
from .package import _instruments_google_genai

PROVIDER = "gcp.gemini"
VERTEX_PROVIDER = "gcp.vertex_ai"


def server(instance: Any) -> tuple[str | None, int | None, str]:
    """(host, port, provider) of the ``BaseApiClient`` behind a ``Models`` resource."""
    api_client = getattr(instance, "_api_client", None)
    default = VERTEX_PROVIDER if getattr(api_client, "vertexai", False) else PROVIDER
    base_url = getattr(getattr(api_client, "_http_options", None), "base_url", None)
    if not isinstance(base_url, str) or not base_url:
        return None, None, default
    return url_server_info(base_url, default)


GENERATE = Endpoint(
    provider=PROVIDER,
    request_facts=X.generate_request_facts,
    prompt_chars=X.generate_prompt_chars,
    response_facts=X.generate_response_facts,
    output_text=X.output_text,
    output_chars=X.response_output_chars,
    server=server,
    error_status=X.error_status_code,
)
GENERATE_STREAM = Endpoint(
    provider=PROVIDER,
    request_facts=X.generate_stream_request_facts,
    prompt_chars=X.generate_prompt_chars,
    response_facts=X.generate_response_facts,
    accumulator=X.GenerateStreamAccumulator,
    output_text=X.output_text,
    output_chars=X.response_output_chars,
    server=server,
    error_status=X.error_status_code,
    lazy_stream=True,  # sync: a generator; async: the request is sent when it is awaited
)
EMBED = Endpoint(
    provider=PROVIDER,
    request_facts=X.embed_request_facts,
    prompt_chars=X.embed_prompt_chars,
    response_facts=X.embed_response_facts,
    server=server,
    error_status=X.error_status_code,
)

_MODELS_MODULE = "google.genai.models"
_CLIENT_MODULE = "google.genai._api_client"


def _counted(call: LLMCall, before: int) -> None:
    """One attempt of the SDK's retry loop is over: count it unless the httpx2 hook did (it
    went through aiohttp, httpx or requests), so each attempt counts once. Never raises."""
    try:
        if call.http_attempts == before:
            call.http_attempts += 1
    except Exception:
        record_internal_error("google_genai_attempt")


def _attempt(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    call = CURRENT_CALL.get()
    if call is None:  # a request we do not record (count_tokens, files, ...)
        return wrapped(*args, **kwargs)
    before = call.http_attempts
    try:
        return wrapped(*args, **kwargs)
    finally:
        _counted(call, before)


async def _async_attempt(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    call = CURRENT_CALL.get()
    if call is None:
        return await wrapped(*args, **kwargs)
    before = call.http_attempts
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _counted(call, before)


def _targets() -> list[tuple[str, str, Any]]:
    return [
        (_MODELS_MODULE, "Models._generate_content", sync_wrapper(GENERATE)),
        (_MODELS_MODULE, "Models._generate_content_stream", sync_wrapper(GENERATE_STREAM)),
        (_MODELS_MODULE, "Models._embed_content", sync_wrapper(EMBED)),
        (_MODELS_MODULE, "AsyncModels._generate_content", async_wrapper(GENERATE)),
        (_MODELS_MODULE, "AsyncModels._generate_content_stream", async_wrapper(GENERATE_STREAM)),
        (_MODELS_MODULE, "AsyncModels._embed_content", async_wrapper(EMBED)),
        # each attempt of the SDK's retry loop, whatever HTTP client sends it (absent from a
        # future SDK: skipped, and attempts outside httpx2 go uncounted again)
        (_CLIENT_MODULE, "BaseApiClient._request_once", _attempt),
        (_CLIENT_MODULE, "BaseApiClient._async_request_once", _async_attempt),
    ]


class GoogleGenAIInstrumentor(ProviderInstrumentor):
    """Instruments the google-genai SDK. ``instrument(tracer_provider=...)``,
    ``uninstrument()``."""

    provider = "google_genai"
    targets = staticmethod(_targets)

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments_google_genai
