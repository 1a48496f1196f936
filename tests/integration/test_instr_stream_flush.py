"""The stream-start record leaves the process when the stream starts (DESIGN §4.6), not when the
app's BatchSpanProcessor next wakes up: the real SDKs against the simulator, a batch processor
whose schedule delay (60 s) is far longer than any test waits, and nobody calling flush but us.
The last test kills an app under `opentelemetry-instrument` with SIGKILL mid-stream and finds
the estimated row in the processor."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import anthropic
import openai
import pytest
from conftest import bin_path, launcher_env, wait_until
from instr_fixtures import sim  # noqa: F401
from llm_margin import attributes as A
from llm_margin.config import reset_config
from llm_margin.instrumentation import _common
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "Summarize the quarterly report in one line."}]
SLOW_STREAM = {"x-sim-fault": "stream-slow:300"}


class CountingProvider(TracerProvider):
    """Counts force_flush calls (ours are the only ones in these tests)."""

    flushes = 0

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.flushes += 1
        return super().force_flush(timeout_millis)


class Batching:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = CountingProvider()
        self.provider.add_span_processor(
            BatchSpanProcessor(self.exporter, schedule_delay_millis=60_000)
        )

    def provisional(self) -> list:
        return [s for s in self.exporter.get_finished_spans() if s.attributes.get(A.PROVISIONAL)]

    def final(self, call_id: str) -> list:
        return [
            s
            for s in self.exporter.get_finished_spans()
            if s.attributes.get(A.CALL_ID) == call_id and not s.attributes.get(A.PROVISIONAL)
        ]


@pytest.fixture
def batching() -> Iterator[Batching]:
    """Our instrumentors on a provider whose BatchSpanProcessor would wait 60 s to export."""
    from llm_margin.instrumentation.anthropic import AnthropicInstrumentor
    from llm_margin.instrumentation.openai import OpenAIInstrumentor

    reset_config()
    _common.reset_server_cache()
    batch = Batching()
    OpenAIInstrumentor().instrument(tracer_provider=batch.provider)
    AnthropicInstrumentor().instrument(tracer_provider=batch.provider)
    try:
        yield batch
    finally:
        OpenAIInstrumentor().uninstrument()
        AnthropicInstrumentor().uninstrument()
        batch.provider.shutdown()
        reset_config()
        _common.reset_server_cache()


def assert_exported_while_open(batching: Batching) -> None:
    (prov,) = wait_until(
        batching.provisional, timeout=10, message="provisional span exported"
    )  # not 60 s
    assert prov.attributes[A.USAGE_SOURCE] == "estimated"
    assert prov.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] > 0
    # the stream is still open: only its start record went out
    assert batching.final(prov.attributes[A.CALL_ID]) == []


def test_openai_stream_start_is_exported_at_once(batching, sim):  # noqa: F811
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=SLOW_STREAM
    )
    next(stream)
    assert_exported_while_open(batching)
    stream.close()


def test_openai_async_stream_start_is_exported_at_once(batching, sim):  # noqa: F811
    import asyncio

    async def main() -> None:
        client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test")
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=SLOW_STREAM
        )
        await stream.__anext__()
        # the event loop is not blocked while we wait: the flush runs on its own thread
        deadline = time.monotonic() + 2
        while not batching.provisional() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert_exported_while_open(batching)
        await stream.close()

    asyncio.run(main())


def test_anthropic_stream_start_is_exported_at_once(batching, sim):  # noqa: F811
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-ant-test")
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES, extra_headers=SLOW_STREAM
    ) as stream:
        next(iter(stream))
        assert_exported_while_open(batching)
    stream = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=50,
        messages=MESSAGES,
        stream=True,
        extra_headers=SLOW_STREAM,
    )
    batching.exporter.clear()
    next(stream)
    assert_exported_while_open(batching)
    stream.close()


def test_non_streaming_calls_never_flush(batching, sim, monkeypatch):  # noqa: F811
    requested = []
    monkeypatch.setattr(_common.stream_start_flusher, "request_flush", lambda: requested.append(1))
    openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test").chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES
    )
    anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-ant-test").messages.create(
        model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES
    )
    time.sleep(0.2)
    assert requested == [] and batching.provider.flushes == 0
    assert batching.exporter.get_finished_spans() == ()  # still waiting in the batch queue


# --- end to end: SIGKILL mid-stream, the processor still has the call --------------------------
APP = textwrap.dedent(
    """
    import os
    import signal
    import sys

    import openai

    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test")
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Tell me a long story."}],
        stream=True,
        extra_headers={"x-sim-fault": "stream-slow:500", "x-sim-output-tokens": "400"},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break  # the first content chunk, about 0.5 s into the stream
    print("killing", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_killed_mid_stream_leaves_an_estimated_row(processor, sim, tmp_path):  # noqa: F811
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = launcher_env(
        "kill-check",
        f"http://127.0.0.1:{processor.grpc.port}",
        OTEL_BSP_SCHEDULE_DELAY="60000",  # the batch processor alone would export nothing
        # ours only (the others' spans are not what this test is about)
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="openai,anthropic,httpx,httpx2",
    )
    result = subprocess.run(
        [bin_path("opentelemetry-instrument"), sys.executable, str(app), sim.openai_base_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == -9 and "killing" in result.stdout, result.stderr[-3000:]

    def rows() -> list[dict]:
        return processor.store.query(
            "SELECT usage_source, input_tokens, output_tokens, request_model, cost_usd, status, "
            "error_type "
            "FROM llm_calls FINAL WHERE source = 'llm_margin'"
        ).dicts()

    (row,) = wait_until(rows, timeout=20, message="the stream-start row stored")
    assert row["usage_source"] == "estimated" and row["request_model"] == "gpt-4o-mini"
    assert row["input_tokens"] > 0 and row["cost_usd"] > 0
    # the app died mid-stream: the call never delivered
    assert (row["status"], row["error_type"]) == ("error", "stream_incomplete")
