"""Added latency per OpenAI SDK call: uninstrumented vs llm-margin vs the official
opentelemetry-instrumentation-genai-openai, non-streaming and streaming, with a "span floor"
(a wrapper that only starts and ends one SDK span) as the least any span-emitting
instrumentation can add.

Run:  python bench/bench_instrumentation.py [--calls 40] [--rounds 80] [--simulator]
      [--clock thread|wall]

By default the SDK talks to an in-process httpx2 ``MockTransport`` serving canned responses, so
the network does not drown the microseconds being measured; ``--simulator`` sends the same calls
to the provider simulator over loopback instead (end-to-end, noisier). Every configuration uses
the same SDK client and transport; each instrumentation gets its own ``TracerProvider`` with a
``SimpleSpanProcessor`` and a no-op exporter, so what is measured is the instrumentation's own
work (span creation, attributes, processors' ``on_start``/``on_end``), not export.

Method: configurations are interleaved, one batch of ``--calls`` calls each per round, for
``--rounds`` rounds, after a warm-up round that is not counted (imports, caches, connection
pool); the best batch per configuration is reported (the usual way to remove scheduler noise),
with the median in brackets; "added" is best minus the uninstrumented best, "paired" the median
over rounds of (this batch - the uninstrumented batch of the same round), which drifting load
on a shared machine affects less. Small batches and many rounds give every configuration
its share of quiet moments. ``--clock thread`` (default) times the CPU time of the calling
thread (``time.thread_time``): every microsecond the instrumentation adds is spent on that
thread (it does no I/O and does not wait), while other processes on a busy machine no longer
inflate the figures; ``--clock wall`` uses ``time.perf_counter``.

A separate line reports the first calls after ``instrument()``: each round switches every
configuration on (instruments it) just before its non-streaming batch, every batch starts with
a ``gc.collect()``, and the first calls after these cost more than later ones, for every
configuration (cold caches). After the rounds, each configuration is switched on
``--first-rounds`` more times, and its first ``FIRST_CALLS`` calls after ``gc.collect()`` are
timed one by one, paired with the uninstrumented configuration's call of the same number and
round; the line gives their medians and how much their excess over the steady paired figure
adds, spread over a batch, to the non-streaming "paired" column. It changes nothing in the
figures above.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable

import httpx2
import openai
from opentelemetry import baggage, context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

MESSAGES = [{"role": "user", "content": "Summarize the quarterly report in one line, please."}]
MODEL = "gpt-4o-mini"

_COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Revenue grew 12%."},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 20,
            "completion_tokens": 6,
            "total_tokens": 26,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
).encode()


def _stream_body(include_usage: bool) -> bytes:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    pieces = ["Rev", "enue", " grew", " 12", "%", " year", " over", " year", "."]
    events = [{**base, "choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if include_usage:
        usage = {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29}
        events.append({**base, "choices": [], "usage": usage})
    text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return text.encode()


_STREAM = {True: _stream_body(True), False: _stream_body(False)}


def _handler(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    if body.get("stream"):
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        return httpx2.Response(
            200, content=_STREAM[include], headers={"content-type": "text/event-stream"}
        )
    return httpx2.Response(200, content=_COMPLETION, headers={"content-type": "application/json"})


class NoopExporter(SpanExporter):
    def export(self, spans):  # noqa: D401
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(NoopExporter()))
    return provider


def _client(base_url: str | None) -> openai.OpenAI:
    if base_url:
        return openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    return openai.OpenAI(
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-bench",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_handler)),
    )


CLOCKS: dict[str, Callable[[], float]] = {"thread": time.thread_time, "wall": time.perf_counter}


def _time_calls(fn: Callable[[], None], calls: int, clock: Callable[[], float]) -> float:
    """Microseconds per call."""
    gc.collect()
    start = clock()
    for _ in range(calls):
        fn()
    return (clock() - start) / calls * 1e6


class Config:
    def __init__(self, name: str, on: Callable[[], None], off: Callable[[], None]) -> None:
        self.name, self.on, self.off = name, on, off


# What any instrumentation that emits an SDK span pays at the least: a wrapper that starts one
# CLIENT span with as many attributes as ours sets (~25), calls the SDK and ends the span, with
# nothing else (no request or response reading). Our figure minus this one is our own code.
FLOOR_ATTRIBUTES = 25


def _span_floor() -> tuple[Callable[[], None], Callable[[], None]]:
    from openai.resources.chat.completions import completions
    from opentelemetry.trace import SpanKind
    from wrapt import wrap_function_wrapper

    tracer = _provider().get_tracer("bench.floor")
    original = completions.Completions.create
    attributes = {f"bench.attribute_{i}": i for i in range(FLOOR_ATTRIBUTES)}

    def wrapper(wrapped, instance, args, kwargs):  # noqa: ANN001, ANN202
        span = tracer.start_span("chat", kind=SpanKind.CLIENT, attributes=attributes)
        try:
            return wrapped(*args, **kwargs)
        finally:
            span.end()

    def on() -> None:
        wrap_function_wrapper(completions, "Completions.create", wrapper)

    def off() -> None:
        completions.Completions.create = original

    return on, off


def _configs() -> tuple[list[Config], str | None]:
    from llm_margin.instrumentation.openai import OpenAIInstrumentor

    ours_provider = _provider()
    configs = [
        Config("uninstrumented", lambda: None, lambda: None),
        Config("span floor", *_span_floor()),
        Config(
            "llm-margin",
            lambda: OpenAIInstrumentor().instrument(tracer_provider=ours_provider),
            lambda: OpenAIInstrumentor().uninstrument(),
        ),
    ]
    note = None
    try:
        from opentelemetry.instrumentation.genai.openai import (
            OpenAIInstrumentor as OfficialInstrumentor,
        )

        official_provider = _provider()
        configs.append(
            Config(
                "official genai-openai",
                lambda: OfficialInstrumentor().instrument(tracer_provider=official_provider),
                lambda: OfficialInstrumentor().uninstrument(),
            )
        )
    except Exception as err:  # not installed / not compatible
        note = f"opentelemetry-instrumentation-genai-openai not measured: {err!r}"
    return configs, note


FIRST_CALLS = 5


def _first_calls(
    configs: list[Config], fn: Callable[[], None], rounds: int, clock: Callable[[], float]
) -> dict[str, list[float]]:
    """Per configuration, the median over ``rounds`` of each of its first ``FIRST_CALLS`` calls
    after ``on()`` and ``gc.collect()`` (as a batch starts), minus the uninstrumented call of
    the same number and round (µs)."""
    times: dict[str, list[list[float]]] = {c.name: [] for c in configs}
    for _ in range(rounds):
        for config in configs:
            config.on()
            try:
                gc.collect()
                row = []
                for _ in range(FIRST_CALLS):
                    start = clock()
                    fn()
                    row.append((clock() - start) * 1e6)
            finally:
                config.off()
            times[config.name].append(row)
    base = times["uninstrumented"]
    return {
        name: [
            statistics.median(r[i] - b[i] for r, b in zip(rows, base, strict=True))
            for i in range(FIRST_CALLS)
        ]
        for name, rows in times.items()
        if name != "uninstrumented"
    }


def _paired(results: dict[tuple[str, str], list[float]], name: str, workload: str) -> float:
    """Median over rounds of (this configuration's batch - the uninstrumented batch)."""
    base = results[("uninstrumented", workload)]
    return statistics.median(a - b for a, b in zip(results[(name, workload)], base, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=40, help="calls per batch (non-streaming)")
    parser.add_argument("--rounds", type=int, default=80)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="thread")
    parser.add_argument("--simulator", action="store_true", help="go through the simulator")
    parser.add_argument(
        "--first-rounds",
        type=int,
        default=30,
        help="times each configuration is switched on to time its first calls (0: skip)",
    )
    args = parser.parse_args(argv)

    sim = None
    base_url = None
    if args.simulator:
        from llm_margin.simulator import start_simulator

        sim = start_simulator()
        base_url = sim.openai_base_url
    client = _client(base_url)
    configs, note = _configs()

    def non_streaming() -> None:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)

    def streaming() -> None:
        for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            pass

    workloads = {
        "non-streaming": (non_streaming, args.calls),
        "streaming": (streaming, args.calls // 2),
    }
    # customer baggage in the context, as in production
    ctx = context.get_current()
    for key, value in (("customer.id", "acme"), ("plan", "pro"), ("task.id", "t-bench")):
        ctx = baggage.set_baggage(key, value, ctx)
    token = context.attach(ctx)
    clock = CLOCKS[args.clock]
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for round_number in range(args.rounds + 1):  # round 0: warm-up, not counted
            for config in configs:
                config.on()
                try:
                    for workload, (fn, calls) in workloads.items():
                        if round_number == 0:
                            for _ in range(20):
                                fn()
                            continue
                        results.setdefault((config.name, workload), []).append(
                            _time_calls(fn, calls, clock)
                        )
                finally:
                    config.off()
        first = (
            _first_calls(configs, non_streaming, args.first_rounds, clock)
            if args.first_rounds > 0
            else {}
        )
    finally:
        context.detach(token)
        if sim is not None:
            sim.stop()

    transport = "simulator over loopback" if args.simulator else "in-process MockTransport"
    print(
        f"openai {openai.__version__}, {transport}, {args.rounds} rounds of {args.calls} calls, "
        f"{args.clock} clock, best [median] µs/call"
    )
    header = (
        f"{'configuration':<24}{'workload':<16}{'µs/call':>18}{'added µs':>12}{'paired':>9}"
        f"{'ratio':>8}"
    )
    print(header)
    print("-" * len(header))
    for workload in workloads:
        base = min(results[("uninstrumented", workload)])
        for config in configs:
            samples = results[(config.name, workload)]
            best, median = min(samples), statistics.median(samples)
            added = best - base
            paired = _paired(results, config.name, workload)
            print(
                f"{config.name:<24}{workload:<16}{best:>9.1f} [{median:>6.1f}]"
                f"{added:>12.1f}{paired:>9.1f}{best / base:>8.2f}"
            )
    names = [c.name for c in configs]
    if "official genai-openai" in names:
        for workload in workloads:
            base = min(results[("uninstrumented", workload)])
            ours = min(results[("llm-margin", workload)]) - base
            official = min(results[("official genai-openai", workload)]) - base
            ratio = ours / official if official > 0 else float("nan")
            ours_p = _paired(results, "llm-margin", workload)
            official_p = _paired(results, "official genai-openai", workload)
            print(
                f"{workload}: llm-margin adds {ours:.1f} µs, official adds {official:.1f} µs "
                f"(ours/official = {ratio:.2f}); paired: {ours_p:.1f} vs {official_p:.1f} µs"
            )
    if note:
        print(note)
    ours_added = _paired(results, "llm-margin", "non-streaming")
    floor_added = _paired(results, "span floor", "non-streaming")
    verdict = "meets" if ours_added < 50 else "MISSES"
    print(
        f"target: llm-margin adds < 50 µs per non-streaming call (paired median): {verdict} "
        f"({ours_added:.1f} µs)"
    )
    print(
        f"span floor (one SDK span with {FLOOR_ATTRIBUTES} attributes, nothing else) adds "
        f"{floor_added:.1f} µs: llm-margin's own code is {ours_added - floor_added:.1f} µs of "
        f"its {ours_added:.1f}"
    )
    if args.first_rounds > 0:
        parts = []
        for name in ("span floor", "llm-margin"):
            calls = first[name]
            excess = (
                sum(calls) - FIRST_CALLS * _paired(results, name, "non-streaming")
            ) / args.calls
            shown = " / ".join(f"{c:.0f}" for c in calls)
            parts.append(f"{name} {shown} (adds ~{excess:.1f} µs per call to its paired figure)")
        print(
            f"first {FIRST_CALLS} calls after instrument() and gc.collect(), as each batch starts "
            f"(paired µs, median of {args.first_rounds}): " + "; ".join(parts)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
