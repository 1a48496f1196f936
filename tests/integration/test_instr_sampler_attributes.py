"""Start attributes and samplers: under the SDK's default sampler (which never reads them) our
call span's attributes are written once, at the end, without the SDK validating any of them;
a sampler that may read them still gets the GenAI ones at ``start_span``. Either way the ended
span carries the same attributes. Real openai SDK against the provider simulator."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from instr_fixtures import customer_baggage, sim, tracing  # noqa: F401
from llm_margin import attributes as A
from llm_margin.config import reset_config
from llm_margin.instrumentation import _common
from llm_margin.instrumentation.openai import OpenAIInstrumentor
from opentelemetry import attributes as otel_attributes
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace import sampling as S
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

MESSAGES = [{"role": "user", "content": "Summarize the quarterly report in one line."}]
SAMPLING_KEYS = (
    A.GEN_AI_OPERATION_NAME,
    A.GEN_AI_PROVIDER_NAME,
    A.GEN_AI_REQUEST_MODEL,
    A.SERVER_ADDRESS,
    A.SERVER_PORT,
)


class RecordingSampler(S.Sampler):
    """Samples everything and remembers the attributes each span was started with."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None,
                      links=None, trace_state=None):  # fmt: skip
        self.seen.append(dict(attributes or {}))
        return S.ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes)

    def get_description(self) -> str:
        return "RecordingSampler"


class StaticSubclass(S.StaticSampler):
    """A subclass may override should_sample: not trusted to ignore attributes."""


@pytest.mark.parametrize(
    ("sampler", "reads"),
    [
        (S.ALWAYS_ON, False),
        (S.ALWAYS_OFF, False),
        (S.DEFAULT_ON, False),  # parentbased_always_on, the SDK's default
        (S.DEFAULT_OFF, False),
        (S.TraceIdRatioBased(0.5), False),
        (S.ParentBasedTraceIdRatio(0.5), False),
        (S.ParentBased(S.ALWAYS_ON, remote_parent_sampled=S.TraceIdRatioBased(0.1)), False),
        (S.AlwaysRecordSampler(S.DEFAULT_ON), False),
        (RecordingSampler(), True),
        (S.ParentBased(RecordingSampler()), True),
        (S.ParentBased(S.ALWAYS_ON, local_parent_sampled=RecordingSampler()), True),
        (S.AlwaysRecordSampler(RecordingSampler()), True),
        (StaticSubclass(S.Decision.RECORD_AND_SAMPLE), True),
        (None, True),  # no SDK tracer (a proxy tracer): unknown
    ],
)
def test_which_samplers_read_start_attributes(sampler, reads: bool) -> None:
    assert _common.reads_attributes(sampler) is reads


def _chat(sim) -> None:  # noqa: F811
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    with customer_baggage(customer__id="acme", plan="pro"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def _check_call_span(span) -> None:
    a = span.attributes
    assert a[A.GEN_AI_OPERATION_NAME] == "chat"
    assert a[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[A.SERVER_ADDRESS] == "127.0.0.1" and isinstance(a[A.SERVER_PORT], int)
    assert a[A.ROUTE] == "openai/gpt-4o-mini"
    assert (a[A.ATTEMPT], a[A.ATTEMPT_KIND], a[A.STREAM]) == (1, "first", False)
    assert a[A.CUSTOMER_ID] == "acme" and a[A.PLAN] == "pro"
    assert a[A.CALL_STATUS] == "ok" and a[A.USAGE_SOURCE] == "provider"
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] > 0 and a[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0


def test_default_sampler_no_attribute_is_validated_again(tracing, sim, monkeypatch) -> None:  # noqa: F811
    """The SDK validates every value given to start_span (~0.5 µs apiece, ours are clean); the
    default sampler never reads them, so none is given."""
    cleaned: list[object] = []
    original = otel_attributes._clean_attribute_value

    def counting(value, limit):
        cleaned.append(value)
        return original(value, limit)

    monkeypatch.setattr(otel_attributes, "_clean_attribute_value", counting)
    _chat(sim)
    monkeypatch.undo()
    (span,) = tracing.calls()
    assert cleaned == []
    _check_call_span(span)


@pytest.fixture
def recording() -> Iterator[tuple[RecordingSampler, InMemorySpanExporter]]:
    sampler, exporter = RecordingSampler(), InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reset_config()
    _common.reset_server_cache()
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    try:
        yield sampler, exporter
    finally:
        OpenAIInstrumentor().uninstrument()
        reset_config()
        _common.reset_server_cache()


def test_sampler_that_may_read_attributes_gets_them_at_start(recording, sim) -> None:  # noqa: F811
    sampler, exporter = recording
    _chat(sim)
    (span,) = [s for s in exporter.get_finished_spans() if A.CALL_ID in s.attributes]
    (seen,) = sampler.seen
    assert {k: seen[k] for k in SAMPLING_KEYS} == {k: span.attributes[k] for k in SAMPLING_KEYS}
    _check_call_span(span)


def test_failed_call_span_keeps_the_start_attributes(tracing) -> None:  # noqa: F811
    """Written at the end, the start attributes must be there on every way a call ends: here
    the SDK raises (nothing listens on the port)."""
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=0)
    with (
        customer_baggage(customer__id="acme", plan="pro"),
        pytest.raises(openai.APIConnectionError),
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (span,) = tracing.calls()
    a = span.attributes
    assert a[A.CALL_STATUS] == "error" and a[A.ERROR_TYPE] == "APIConnectionError"
    assert a[A.GEN_AI_PROVIDER_NAME] == "openai" and a[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[A.ROUTE] == "openai/gpt-4o-mini" and a[A.ATTEMPT] == 1
    assert a[A.CUSTOMER_ID] == "acme" and a[A.INSTRUMENTATION] == "llm_margin"


def test_internal_failure_at_the_end_keeps_the_start_attributes(tracing, sim, monkeypatch) -> None:  # noqa: F811
    """An error of ours while reading the response still ends the span with what the start
    knew (provider, model, route, customer) and the call id."""

    def broken(usage):
        raise RuntimeError("boom")

    monkeypatch.setattr(_common, "usage_complete", broken)
    _common.reset_internal_errors()
    try:
        _chat(sim)
    finally:
        monkeypatch.undo()
    count = _common.internal_error_count("finish_result")
    _common.reset_internal_errors()  # per process: later tests on this worker expect none
    assert count == 1
    (span,) = tracing.calls()
    a = span.attributes
    assert a[A.GEN_AI_PROVIDER_NAME] == "openai" and a[A.ROUTE] == "openai/gpt-4o-mini"
    assert a[A.CUSTOMER_ID] == "acme" and a[A.CALL_ID] == format(span.context.span_id, "016x")


def test_internal_failure_on_a_failed_call_still_ends_its_span(tracing, monkeypatch) -> None:  # noqa: F811
    """An error of ours while recording a failed call ended nothing: the span stayed open and
    the call was never exported. Now it ends as an error call, and the app still gets the
    SDK's own exception."""

    def broken(exc):
        raise RuntimeError("boom")

    monkeypatch.setattr(_common, "_status_code", broken)
    _common.reset_internal_errors()
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=0)
    try:
        with (
            customer_baggage(customer__id="acme", plan="pro"),
            pytest.raises(openai.APIConnectionError),
        ):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        monkeypatch.undo()
    count = _common.internal_error_count("finish_error")
    _common.reset_internal_errors()  # per process: later tests on this worker expect none
    assert count == 1
    (span,) = tracing.calls()
    a = span.attributes
    assert a[A.CALL_STATUS] == "error" and a[A.ERROR_TYPE] == "APIConnectionError"
    assert a[A.ROUTE] == "openai/gpt-4o-mini" and a[A.CUSTOMER_ID] == "acme"


def test_instrument_creates_the_tracer_not_the_first_call(recording) -> None:
    """The tracer (and whether its sampler reads start attributes) is settled when
    instrumenting with a provider, so the app's first call does not pay for it."""
    assert _common._tracer is not None
    assert _common._sampler_reads_attributes is True  # RecordingSampler may read them
