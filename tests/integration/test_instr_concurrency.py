"""Attribution under concurrency: many threads and asyncio tasks, each with its own customer
(baggage), task and prompt size (so the usage on a span says whose call it was)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import anthropic
import llm_margin
import openai
from instr_fixtures import customer_baggage, sim, tracing  # noqa: F401
from llm_margin import attributes as A

N = 8


def fast(client):
    client._calculate_retry_timeout = lambda *a, **k: 0.01
    return client


def prompt(i):
    """A prompt of 10 * (i + 1) tokens plus the simulator's per-message overhead (3)."""
    return [{"role": "user", "content": "x" * (40 * (i + 1))}]


def tokens(i):
    return 10 * (i + 1) + 3


def check(calls, expected):
    """expected: {customer: [(kind, sdk_retries)]}; every call's customer, task and usage."""
    seen: dict[str, list] = {}
    for span in calls:
        a = span.attributes
        cust = a[A.CUSTOMER_ID]
        i = int(cust.split("-")[1])
        assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == tokens(i), (cust, dict(a))
        assert a.get(A.TASK_NAME) == f"t{i}", (cust, dict(a))
        seen.setdefault(cust, []).append((a[A.ATTEMPT], a[A.SDK_RETRIES], a[A.CALL_STATUS]))
    for cust, want in expected.items():
        got = sorted(seen.get(cust, []))
        assert got == sorted(want), (cust, got, want)
    assert set(seen) == set(expected)


def test_threads_mixed_calls_streams_and_retries(tracing, sim):  # noqa: F811
    oai = fast(openai.OpenAI(base_url=sim.openai_base_url, api_key="k", max_retries=3))
    ant = fast(anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="k", max_retries=3))
    barrier = threading.Barrier(N)

    def worker(i):
        fault = {"x-sim-fault": f"429:{i % 3},slow:5"}
        with customer_baggage(customer__id=f"cust-{i}", workspace__id=f"ws-{i}"):
            with llm_margin.task(f"t{i}"):
                barrier.wait()
                oai.chat.completions.create(model="m", messages=prompt(i), extra_headers=fault)
                stream = oai.chat.completions.create(
                    model="m", messages=prompt(i), stream=True, extra_headers=fault
                )
                for _ in stream:
                    pass
                ant.messages.create(
                    model="claude-x", max_tokens=9, messages=prompt(i), extra_headers=fault
                )
                with ant.messages.stream(
                    model="claude-x", max_tokens=9, messages=prompt(i), extra_headers=fault
                ) as s:
                    for _ in s:
                        pass

    with ThreadPoolExecutor(N) as pool:
        list(pool.map(worker, range(N)))
    expected = {f"cust-{i}": [(n, i % 3, "ok") for n in (1, 2, 3, 4)] for i in range(N)}
    check(tracing.calls(), expected)


def test_asyncio_gather_mixed_calls_streams_and_retries(tracing, sim):  # noqa: F811
    oai = fast(openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="k", max_retries=3))
    ant = fast(
        anthropic.AsyncAnthropic(base_url=sim.anthropic_base_url, api_key="k", max_retries=3)
    )

    async def one(i):
        fault = {"x-sim-fault": f"429:{i % 3},slow:5"}
        with customer_baggage(customer__id=f"cust-{i}"):
            async with llm_margin.task(f"t{i}"):
                await oai.chat.completions.create(
                    model="m", messages=prompt(i), extra_headers=fault
                )
                stream = await oai.chat.completions.create(
                    model="m", messages=prompt(i), stream=True, extra_headers=fault
                )
                async for _ in stream:
                    await asyncio.sleep(0)
                await ant.messages.create(
                    model="claude-x", max_tokens=9, messages=prompt(i), extra_headers=fault
                )
                async with ant.messages.stream(
                    model="claude-x", max_tokens=9, messages=prompt(i), extra_headers=fault
                ) as s:
                    async for _ in s:
                        await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*(one(i) for i in range(N)))

    asyncio.run(main())
    expected = {f"cust-{i}": [(n, i % 3, "ok") for n in (1, 2, 3, 4)] for i in range(N)}
    check(tracing.calls(), expected)


def test_stream_made_in_one_thread_read_in_another_with_nested_calls(tracing, sim):  # noqa: F811
    """A stream keeps its maker's customer, task, usage and retries whoever reads it; calls
    made while it is unread, or while iterating it, are their own callers'."""
    oai = fast(openai.OpenAI(base_url=sim.openai_base_url, api_key="k", max_retries=3))
    streams: dict[int, object] = {}

    def make(i):
        with customer_baggage(customer__id=f"cust-{i}"):
            with llm_margin.task(f"t{i}"):
                streams[i] = oai.chat.completions.create(
                    model="m",
                    messages=prompt(i),
                    stream=True,
                    extra_headers={"x-sim-fault": "429:1"},
                )
                # the stream is left unread while this thread makes another call
                oai.chat.completions.create(model="m", messages=prompt(i))

    def read(i):
        j = i + N // 2
        with customer_baggage(customer__id=f"cust-{j}"):
            with llm_margin.task(f"t{j}"):
                for k, _ in enumerate(streams[i]):
                    if k == 1:  # a call of the reader's own, made mid-stream
                        oai.chat.completions.create(model="m", messages=prompt(j))

    with ThreadPoolExecutor(N // 2) as pool:
        list(pool.map(make, range(N // 2)))
    with ThreadPoolExecutor(N // 2) as pool:
        list(pool.map(read, range(N // 2)))
    expected = {f"cust-{i}": [(1, 1, "ok"), (2, 0, "ok")] for i in range(N // 2)}
    expected.update({f"cust-{i + N // 2}": [(1, 0, "ok")] for i in range(N // 2)})
    check(tracing.calls(), expected)
    for span in tracing.provisional():
        i = int(span.attributes[A.CUSTOMER_ID].split("-")[1])
        assert i < N // 2 and span.attributes[A.TASK_NAME] == f"t{i}"


def test_parallel_calls_of_one_task_number_their_attempts_once(tracing, sim):  # noqa: F811
    """Calls of one task run in threads (context copied) and asyncio tasks: attempts 1..n,
    each once; SDK retries stay with their own call."""
    import contextvars

    oai = fast(openai.OpenAI(base_url=sim.openai_base_url, api_key="k", max_retries=3))
    with customer_baggage(customer__id="cust-0"):
        with llm_margin.task("t0"):
            with ThreadPoolExecutor(N) as pool:
                futures = [
                    pool.submit(
                        contextvars.copy_context().run,
                        oai.chat.completions.create,
                        model="m",
                        messages=prompt(0),
                        extra_headers={"x-sim-fault": f"429:{k % 3}"},
                    )
                    for k in range(N)
                ]
                [f.result() for f in futures]
    calls = tracing.calls()
    assert sorted(s.attributes[A.ATTEMPT] for s in calls) == list(range(1, N + 1))
    assert sorted(s.attributes[A.SDK_RETRIES] for s in calls) == sorted(k % 3 for k in range(N))
    check(
        calls,
        {"cust-0": [(s.attributes[A.ATTEMPT], s.attributes[A.SDK_RETRIES], "ok") for s in calls]},
    )
