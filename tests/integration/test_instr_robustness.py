"""Robustness: instrument / uninstrument / instrument again; our internal errors are logged once,
counted and never raised; no state leaks between concurrent threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import logging
import threading

import llm_margin
import openai
import pytest
from instr_fixtures import EXPORTER, PROVIDER, customer_baggage, sim, tracing  # noqa: F401
from llm_margin import attributes as A
from llm_margin.instrumentation import _common
from llm_margin.instrumentation import _openai_extract as OX
from llm_margin.instrumentation.anthropic import AnthropicInstrumentor
from llm_margin.instrumentation.openai import OpenAIInstrumentor

MESSAGES = [{"role": "user", "content": "hi"}]


def test_instrument_uninstrument_instrument_again(sim):  # noqa: F811
    import httpx2

    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="k")
    EXPORTER.clear()
    original_create = openai.resources.chat.completions.completions.Completions.create
    for _ in range(2):
        OpenAIInstrumentor().instrument(tracer_provider=PROVIDER)
        AnthropicInstrumentor().instrument(tracer_provider=PROVIDER)
        client.chat.completions.create(model="m", messages=MESSAGES)
        assert len(EXPORTER.get_finished_spans()) == 1
        OpenAIInstrumentor().uninstrument()
        AnthropicInstrumentor().uninstrument()
        client.chat.completions.create(model="m", messages=MESSAGES)
        assert len(EXPORTER.get_finished_spans()) == 1  # nothing recorded once uninstrumented
        EXPORTER.clear()
    restored = openai.resources.chat.completions.completions.Completions.create
    assert not hasattr(restored, "__wrapped__") or restored is original_create
    assert not hasattr(httpx2.Client.send, "_self_wrapper")


def test_dependency_check_once_per_process_a_conflict_each_time(monkeypatch, caplog):
    # instrument() checks the SDK's installed version; parsing its metadata was ~1.5 ms and
    # slowed the first calls after each instrument(): a satisfied check is done once
    from llm_margin.instrumentation import _instrumentor
    from opentelemetry.instrumentation import dependencies

    completions = openai.resources.chat.completions.completions.Completions
    real_version = dependencies.version
    asked: list[str] = []
    answer = {"openai": "0.1.0"}  # a conflict first

    def version(name):
        asked.append(name)
        return answer.get(name) or real_version(name)

    monkeypatch.setattr(_instrumentor, "_satisfied", set())
    monkeypatch.setattr(dependencies, "version", version)
    caplog.set_level(logging.ERROR)
    for _ in range(2):  # refused each time, checked each time
        OpenAIInstrumentor().instrument(tracer_provider=PROVIDER)
        assert not hasattr(completions.create, "_self_wrapper")
        OpenAIInstrumentor().uninstrument()
    assert asked == ["openai", "openai"]
    assert "openai 0.1.0" in caplog.text
    answer.clear()
    try:
        for _ in range(3):
            OpenAIInstrumentor().instrument(tracer_provider=PROVIDER)
            assert hasattr(completions.create, "_self_wrapper")
            OpenAIInstrumentor().uninstrument()
    finally:
        OpenAIInstrumentor().uninstrument()
    assert asked == ["openai", "openai", "openai"]  # once for the three instrument() calls
    assert not hasattr(completions.create, "_self_wrapper")


def test_instrument_again_on_the_same_provider_keeps_its_tracer(monkeypatch):
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    asked = []
    real = provider.get_tracer
    monkeypatch.setattr(provider, "get_tracer", lambda *a, **k: asked.append(a) or real(*a, **k))
    try:
        for _ in range(3):
            OpenAIInstrumentor().instrument(tracer_provider=provider)
            OpenAIInstrumentor().uninstrument()
        tracer = _common._tracer
        assert [name for name, *_ in asked] == ["llm_margin"]  # one tracer for the three
        OpenAIInstrumentor().instrument(tracer_provider=PROVIDER)  # another provider: its own
        assert _common._tracer is not tracer and len(asked) == 1
    finally:
        OpenAIInstrumentor().uninstrument()


def test_internal_error_logged_once_counted_never_raised(tracing, sim, monkeypatch, caplog):  # noqa: F811
    _common.reset_internal_errors()

    def broken(*args, **kwargs):
        raise RuntimeError("bug in llm-margin")

    from llm_margin.instrumentation import openai as oai_mod

    # Endpoint is a frozen dataclass: swap one field for the test, restore it after.
    object.__setattr__(oai_mod.CHAT, "response_facts", broken)
    try:
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="k")
        caplog.set_level(logging.WARNING, logger="llm_margin")
        responses = [client.chat.completions.create(model="m", messages=MESSAGES) for _ in range(3)]
    finally:
        object.__setattr__(oai_mod.CHAT, "response_facts", OX.chat_response_facts)
    assert all(r.choices for r in responses)  # the app got its answers
    assert _common.internal_error_count("finish_result") == 3
    logged = [r for r in caplog.records if "finish_result" in r.getMessage()]
    assert len(logged) == 1
    assert len(tracing.calls()) == 3  # spans still ended


def test_broken_start_runs_the_call_uninstrumented(tracing, sim):  # noqa: F811
    from llm_margin.instrumentation import openai as oai_mod

    _common.reset_internal_errors()

    def broken(kwargs):
        raise KeyError("x")

    object.__setattr__(oai_mod.CHAT, "request_facts", broken)
    try:
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="k")
        assert client.chat.completions.create(model="m", messages=MESSAGES).choices
    finally:
        object.__setattr__(oai_mod.CHAT, "request_facts", OX.chat_request_facts)
    assert _common.internal_error_count("start_call") == 1
    assert tracing.calls() == []


def test_concurrent_threads_keep_their_customer_and_attempts(tracing, sim):  # noqa: F811
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="k")
    barrier = threading.Barrier(6)
    errors = []

    def worker(i):
        try:
            with customer_baggage(customer__id=f"cust-{i}"):
                with llm_margin.task(f"t{i}"):
                    barrier.wait()
                    for _ in range(2):
                        client.chat.completions.create(model="m", messages=MESSAGES)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    by_task: dict[str, list] = {}
    for span in tracing.calls():
        by_task.setdefault(span.attributes[A.TASK_NAME], []).append(span)
    assert len(by_task) == 6
    for name, spans in by_task.items():
        i = name[1:]
        assert {s.attributes[A.CUSTOMER_ID] for s in spans} == {f"cust-{i}"}
        assert sorted(s.attributes[A.ATTEMPT] for s in spans) == [1, 2]


def test_concurrent_asyncio_tasks_keep_their_customer(tracing, sim):  # noqa: F811
    client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="k")

    async def one(i):
        with customer_baggage(customer__id=f"cust-{i}"):
            async with llm_margin.task(f"t{i}"):
                stream = await client.chat.completions.create(
                    model="m", messages=MESSAGES, stream=True
                )
                async for _ in stream:
                    await asyncio.sleep(0)
                await client.chat.completions.create(model="m", messages=MESSAGES)

    async def main():
        await asyncio.gather(*(one(i) for i in range(5)))

    asyncio.run(main())
    calls = tracing.calls()
    assert len(calls) == 10
    for span in calls:
        i = span.attributes[A.TASK_NAME][1:]
        assert span.attributes[A.CUSTOMER_ID] == f"cust-{i}"
    for span in tracing.provisional():
        assert span.attributes[A.CUSTOMER_ID] == f"cust-{span.attributes[A.TASK_NAME][1:]}"


@pytest.mark.parametrize("bad", ["LLM_MARGIN_BAGGAGE_MAX_VALUE_LENGTH=abc"])
def test_bad_env_never_breaks_the_app(tracing, sim, monkeypatch, bad):  # noqa: F811
    from llm_margin.config import reset_config

    name, value = bad.split("=")
    monkeypatch.setenv(name, value)
    reset_config()
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="k")
    with customer_baggage(customer__id="acme"):
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert tracing.calls()[0].attributes[A.CUSTOMER_ID] == "acme"
