"""Soak test of `llm-margin serve` (a script, not a test): `python bench/soak_processor.py`.

Runs a real `serve` on loopback (free ports, its own temporary data directory) and feeds it a
steady, realistic OTLP load for a few minutes: many customers, tasks with retries, fallbacks
and runaway loops, streams (a stream-start estimate, then the final span in a later request),
unknown models, SDK HTTP attempt spans, task roots arriving after their calls, and a few
requests delivered twice. One sender process exports over OTLP/HTTP (protobuf, some gzip),
the other over OTLP/gRPC, each with several concurrent connections, pre-encoded requests
paced to the target rate. Meanwhile it samples serve's RSS and /metrics, times the budget
thread's rounds (roll-up refresh and budget queries) and runs `llm-margin report` against
the running serve. At the end it checks that every call sent is stored exactly once, that
reports agree with llm_calls FINAL and that /metrics adds up, then prints a summary.

By default serve runs with timing hooks (`--serve-hooks` below: the real CLI entry point,
with wrappers around the budget round that log its timings and the size of in-memory state);
`--plain` runs the installed `llm-margin serve` instead. `--tracemalloc` adds allocation
tracing to the hooks (slow: use a lower --rate). `--seed-calls N` stores N calls spread over
the previous `--seed-hours` hours before serve starts, so roll-ups have history to merge with.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

# Reused from the throughput benchmark: same process probes and free-port helper.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_processor import cpu_seconds, free_port, peak_rss_mib  # noqa: E402
from llm_margin import attributes as A  # noqa: E402

GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
MODELS = (
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4.1"),
    ("anthropic", "claude-3-5-haiku-20241022"),
    ("anthropic", "claude-sonnet-4-20250514"),
)
UNKNOWN_MODEL = ("openai", "acme-finetune-7b")  # not in the price book: stored unpriced
PLANS = {"starter": "29", "pro": "99", "enterprise": "499"}
FEATURES = ("chat", "summarize", "extract", "search", "agent")


# -- workload ----------------------------------------------------------------------------------
class Workload:
    """Generates OTLP requests and keeps what a correct store must hold for them."""

    def __init__(self, sender: int, customers: int, seed: int) -> None:
        from llm_margin.processor.pricing import default_price_book

        self.rng = random.Random(seed)
        self.sender = sender
        self.customers = customers
        self.book = default_price_book()
        self._next_id = 0
        self._pending: list[Any] = []  # spans that leave in the next request
        # customer -> [calls, cost, input tokens, output tokens, unpriced calls, tasks]
        self.totals: dict[str, list] = defaultdict(lambda: [0, Decimal(0), 0, 0, 0, 0])
        self.task_roots = 0
        self.spans_made = 0
        self.llm_made = 0

    def _id(self) -> int:
        self._next_id += 1
        return (self.sender + 1) << 48 | self._next_id

    def _customer(self) -> int:
        # A few big customers and a long tail, as in real SaaS traffic.
        if self.rng.random() < 0.5:
            return self.rng.randrange(self.customers)
        return min(self.customers - 1, int(self.rng.paretovariate(1.2)) - 1)

    def request(self, spans: int, now_ns: int | None = None) -> tuple[bytes, int]:
        """A serialised ExportTraceServiceRequest with about ``spans`` LLM call spans (and the
        non-LLM spans around them)."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
        from opentelemetry.proto.common.v1.common_pb2 import KeyValue

        now = now_ns or time.time_ns()
        request = ExportTraceServiceRequest()
        resource = request.resource_spans.add()
        resource.resource.attributes.append(KeyValue(key="service.name"))
        resource.resource.attributes[0].value.string_value = f"soak-app-{self.sender}"
        scope = resource.scope_spans.add()
        scope.scope.name = "llm_margin"
        out = self._pending
        self._pending = []
        llm = sum(1 for span in out if span.name.startswith("chat "))
        while llm < spans:
            llm += self._task(out, now)
        scope.spans.extend(out)
        self.spans_made += len(out)
        return request.SerializeToString(), len(out)

    def _task(self, out: list, now: int) -> int:
        """Appends one task's spans to ``out`` (some to the next request); returns how many
        LLM call spans went into ``out``."""
        from llm_margin.processor.normalize import call_from_span, read_attributes
        from opentelemetry.proto.trace.v1.trace_pb2 import Span

        rng = self.rng
        llm = 0
        c = self._customer()
        customer = f"c{c:04d}"
        plan = tuple(PLANS)[c % 3]
        baggage = {
            A.CUSTOMER_ID: customer,
            A.WORKSPACE_ID: f"ws{c:04d}-{rng.randrange(1 + c % 3)}",
            A.USER_ID: f"u{c:04d}-{rng.randrange(20)}",
            A.PLAN: plan,
            A.FEATURE: rng.choice(FEATURES),
        }
        task_id = f"t{self.sender}-{self._next_id + 1:x}"
        baggage[A.TASK_ID] = task_id
        trace_id = self._id().to_bytes(16, "big")
        root_id = self._id()
        server_id = self._id()
        primary = UNKNOWN_MODEL if rng.random() < 0.04 else rng.choice(MODELS)
        fallback = (
            MODELS[(MODELS.index(primary) + 2) % len(MODELS)] if primary in MODELS else (MODELS[0])
        )
        runaway = rng.random() < 0.003
        start = now - rng.randrange(2_000_000_000, 6_000_000_000)
        t = start
        route = primary
        attempt, kind, outcome = 1, "first", "success"
        totals = self.totals[customer]
        totals[5] += 1
        while True:
            provider, model = route
            call_id = self._id()
            stream = rng.random() < 0.10
            fails = rng.random() < (0.9 if runaway and attempt < 10 else 0.12)
            invalid = not fails and rng.random() < 0.03
            latency = rng.randrange(150_000_000, 900_000_000)
            inputs = rng.randrange(50, 4000)
            outputs = 0 if fails else rng.randrange(5, 800)
            attrs: dict[str, Any] = {
                A.GEN_AI_OPERATION_NAME: "chat",
                A.GEN_AI_PROVIDER_NAME: provider,
                A.GEN_AI_REQUEST_MODEL: model,
                A.SERVER_ADDRESS: f"api.{provider}.com",
                A.STREAM: stream,
                A.ROUTE: f"{provider}/{model}",
                A.ATTEMPT: attempt,
                A.ATTEMPT_KIND: kind,
                A.INSTRUMENTATION: "llm_margin",
                **baggage,
                A.CALL_ID: format(call_id, "016x"),
                A.SDK_RETRIES: 1 if rng.random() < 0.05 else 0,
            }
            if fails:
                attrs.update({A.CALL_STATUS: "error", A.ERROR_TYPE: "RateLimitError"})
                attrs[A.GEN_AI_USAGE_INPUT_TOKENS] = 0
            else:
                attrs.update(
                    {
                        A.GEN_AI_RESPONSE_MODEL: model,
                        A.GEN_AI_RESPONSE_ID: f"resp-{call_id:x}",
                        A.GEN_AI_USAGE_INPUT_TOKENS: inputs,
                        A.GEN_AI_USAGE_OUTPUT_TOKENS: outputs,
                        A.USAGE_SOURCE: "provider",
                        A.CALL_STATUS: "invalid" if invalid else "ok",
                    }
                )
                if invalid:
                    attrs[A.ERROR_TYPE] = "invalid"
                if rng.random() < 0.2:
                    attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = inputs // 2
            final = make_span(call_id, trace_id, root_id, f"chat {model}", Span.SPAN_KIND_CLIENT,
                              t, t + latency, attrs)  # fmt: skip
            if fails:
                final.status.code = 2
            orphan = stream and rng.random() < 0.02  # app died mid-stream: estimate only
            counted = final
            if stream:
                provisional_attrs = {
                    k: v for k, v in attrs.items()
                    if not k.startswith(("gen_ai.usage", "gen_ai.response")) and k != A.ERROR_TYPE
                }  # fmt: skip
                provisional_attrs.update(
                    {
                        A.PROVISIONAL: True,
                        A.USAGE_SOURCE: "estimated",
                        A.GEN_AI_USAGE_INPUT_TOKENS: inputs,
                        A.GEN_AI_USAGE_OUTPUT_TOKENS: 0,
                        A.CALL_STATUS: "ok",
                    }
                )
                provisional = make_span(self._id(), trace_id, call_id, f"chat {model}",
                                        Span.SPAN_KIND_CLIENT, t + 1000, t + 2000,
                                        provisional_attrs)  # fmt: skip
                out.append(provisional)
                llm += 1
                if orphan:
                    counted = provisional
                else:
                    self._pending.append(final)  # the stream ends after this batch left
            else:
                out.append(final)
                llm += 1
            if rng.random() < 0.2:  # the SDK's HTTP attempt under the call (skipped, counted)
                out.append(
                    make_span(self._id(), trace_id, call_id, "POST", Span.SPAN_KIND_CLIENT,
                              t + 1000, t + latency - 1000,
                              {"http.request.method": "POST",
                               "server.address": f"api.{provider}.com",
                               "http.response.status_code": 429 if fails else 200})
                )  # fmt: skip
            record = call_from_span(counted, read_attributes(counted.attributes))
            self.book.apply(record)
            totals[0] += 1
            totals[1] += record.cost_usd
            totals[2] += record.input_tokens
            totals[3] += record.output_tokens
            totals[4] += 0 if record.priced else 1
            t += latency + 1000
            if not (fails or invalid) or attempt >= (10 if runaway else 4):
                if fails or invalid:
                    outcome = "failure"
                break
            attempt += 1
            if not runaway and route != fallback and rng.random() < 0.3:
                route, kind = fallback, "fallback"
            else:
                kind = "retry"
        # The server span around the task (not an LLM span: skipped) and the task root, which
        # ends after its calls and so usually leaves in a later export batch.
        if rng.random() < 0.3:
            out.append(
                make_span(server_id, trace_id, 0, "POST /api/run", Span.SPAN_KIND_SERVER,
                          start - 1000, t + 1000,
                          {"http.request.method": "POST", "url.path": "/api/run",
                           "http.response.status_code": 200})
            )  # fmt: skip
        if rng.random() < 0.9:
            self.task_roots += 1
            root_attrs = {
                A.IS_TASK: True,
                A.TASK_NAME: baggage[A.FEATURE],
                A.INSTRUMENTATION: "llm_margin",
                A.TASK_OUTCOME: outcome,
                **baggage,
            }
            root = make_span(root_id, trace_id, server_id, f"{A.TASK_SPAN_NAME_PREFIX} run",
                             Span.SPAN_KIND_INTERNAL, start, t, root_attrs)  # fmt: skip
            (self._pending if rng.random() < 0.5 else out).append(root)
        self.llm_made += llm
        return llm


def make_span(span_id: int, trace_id: bytes, parent: int, name: str, kind: int, start: int,
              end: int, attrs: dict[str, Any]):  # fmt: skip
    from llm_margin.processor.receiver.synthetic import _kv
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    return Span(
        trace_id=trace_id,
        span_id=span_id.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=[_kv(k, v) for k, v in attrs.items()],
    )


# -- senders -----------------------------------------------------------------------------------
def sender_main(index: int, transport: str, port: int, rate: float, seconds: float,
                customers: int, connections: int, acked, go, out) -> None:  # fmt: skip
    """One exporter process: builds requests at ``rate`` spans/s for ``seconds`` and sends
    them over ``connections`` concurrent connections, resending on 429/503/UNAVAILABLE as
    exporters do; 1% of requests are delivered twice (at-least-once)."""
    import queue

    workload = Workload(index, customers, seed=1000 + index)
    period = 0.2  # a collector's batch timeout: one request per 200 ms per sender
    per_request = max(1, int(rate * period))
    requests: queue.Queue = queue.Queue(maxsize=64)
    stats = {"requests": 0, "posted_spans": 0, "retries": 0, "duplicates": 0, "lag_max": 0.0}
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def produce() -> None:
        started = time.monotonic()
        k = 0
        # Bounded in time: when serve falls behind (the queue is full and put() waits), the
        # requests it could not take are never made, rather than sent late.
        while time.monotonic() - started < seconds:
            due = started + k * period
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                stats["lag_max"] = max(stats["lag_max"], -delay)
                k = int((time.monotonic() - started) / period)  # skip the missed slots
            requests.put(workload.request(per_request))
            k += 1
        if workload._pending:  # stream ends and task roots still held back: flush them
            requests.put(workload.request(0))
        for _ in range(connections):
            requests.put(None)

    def post_http() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        n = 0
        while (item := requests.get()) is not None:
            body, spans = item
            n += 1
            headers = {"Content-Type": "application/x-protobuf"}
            if n % 3 == 0:
                body, headers["Content-Encoding"] = gzip.compress(body, 1), "gzip"
            for copy in range(2 if random.random() < 0.01 else 1):
                while True:
                    t0 = time.perf_counter()
                    connection.request("POST", "/v1/traces", body, headers)
                    response = connection.getresponse()
                    response.read()
                    with lock:
                        latencies.append(time.perf_counter() - t0)
                        stats["posted_spans"] += spans
                    if response.status == 200:
                        break
                    if response.status not in (429, 503):
                        errors.append(f"HTTP {response.status}")
                        break
                    with lock:
                        stats["retries"] += 1
                    time.sleep(float(response.getheader("Retry-After") or 1) / 4)
                with lock:
                    stats["requests"] += 1
                    stats["duplicates"] += copy
            acked.value += spans

    def post_grpc() -> None:
        import grpc

        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        export = channel.unary_unary(GRPC_METHOD)
        while (item := requests.get()) is not None:
            body, spans = item
            for copy in range(2 if random.random() < 0.01 else 1):
                while True:
                    t0 = time.perf_counter()
                    try:
                        export(body, timeout=60)
                        ok = True
                    except grpc.RpcError as exc:
                        ok = False
                        if exc.code() not in (
                            grpc.StatusCode.UNAVAILABLE,
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                        ):
                            errors.append(f"gRPC {exc.code().name}")
                            ok = True  # not retryable: give up on it (reported)
                    with lock:
                        latencies.append(time.perf_counter() - t0)
                        stats["posted_spans"] += spans
                        stats["retries"] += 0 if ok else 1
                    if ok:
                        break
                    time.sleep(0.25)
                with lock:
                    stats["requests"] += 1
                    stats["duplicates"] += copy
            acked.value += spans
        channel.close()

    target = post_http if transport == "http" else post_grpc
    workers = [threading.Thread(target=target) for _ in range(connections)]
    out.put(("ready", index))
    go.wait()
    producer = threading.Thread(target=produce)
    producer.start()
    for worker in workers:
        worker.start()
    producer.join()
    for worker in workers:
        worker.join()
    latencies.sort()
    stats.update(
        {
            "index": index,
            "errors": errors[:5],
            "error_count": len(errors),
            "spans_made": workload.spans_made,
            "llm_made": workload.llm_made,
            "task_roots": workload.task_roots,
            "totals": dict(workload.totals),
            "p50": latencies[len(latencies) // 2] if latencies else 0.0,
            "p99": latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
        }
    )
    out.put(("done", stats))


# -- serve with timing hooks -------------------------------------------------------------------
def hooked_serve(
    log_path: str, trace_malloc: bool, argv: list[str], resolver_memory: int | None = None
) -> int:
    """`llm-margin serve` with wrappers that log each budget round (JSON lines) and, every
    10 s, the sizes of the processor's in-memory state (and tracemalloc's top growth)."""
    import gc
    import tracemalloc

    if trace_malloc:
        tracemalloc.start(8)
    from llm_margin.clickhouse import read_sql
    from llm_margin.processor import linking, server
    from llm_margin.processor.budgets import evaluator as ev
    from llm_margin.processor.cli import main

    log = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
    write_lock = threading.Lock()

    def emit(document: dict) -> None:
        with write_lock:
            log.write(json.dumps(document, default=str) + "\n")

    instances: dict[str, Any] = {"resolvers": []}
    stale_sql = read_sql("queries/rollup_stale_hours.sql")
    current: dict[str, Any] = {}

    class Spy:
        """The store as the budget round sees it: times each statement, keeps stale hours."""

        def __init__(self, store: Any) -> None:
            self._store = store

        def __getattr__(self, name: str) -> Any:
            return getattr(self._store, name)

        def query(self, sql: str, parameters: Any = None) -> Any:
            return self._query(self._store.query, sql, parameters)

        def command(self, sql: str, parameters: Any = None) -> Any:
            return self._command(self._store.command, sql, parameters)

        # the refresh uses the store's background client when it has one
        def background_query(self, sql: str, parameters: Any = None) -> Any:
            run = getattr(self._store, "background_query", self._store.query)
            return self._query(run, sql, parameters)

        def background_command(self, sql: str, parameters: Any = None) -> Any:
            run = getattr(self._store, "background_command", self._store.command)
            return self._command(run, sql, parameters)

        def _query(self, run: Any, sql: str, parameters: Any) -> Any:
            t0 = time.perf_counter()
            result = run(sql, parameters)
            if sql == stale_sql:
                current["stale_s"] = time.perf_counter() - t0
                current["stale"] = [(str(r[0]), int(r[1])) for r in result.rows]
            return result

        def _command(self, run: Any, sql: str, parameters: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return run(sql, parameters)
            finally:
                # named by the table it writes (the comments name several)
                target = re.search(r"^INSERT INTO (\w+)", sql, re.MULTILINE)
                name = {"llm_usage_hourly": "usage_hourly", "llm_task_fragments": "task_fragments",
                        "llm_task_hourly": "task_hourly", "llm_rollup_hours": "record_hours"}.get(
                    target.group(1) if target else "", "other")  # fmt: skip
                current.setdefault("statements", defaultdict(float))[name] += (
                    time.perf_counter() - t0
                )

    original_refresh = ev.refresh_usage_rollup

    def timed_refresh(store: Any, **kwargs: Any) -> int:
        t0 = time.perf_counter()
        hours = original_refresh(Spy(store), **kwargs)
        current["refresh_s"] = time.perf_counter() - t0
        current["hours"] = hours
        return hours

    ev.refresh_usage_rollup = timed_refresh
    original_run_sql = ev.run_sql

    def timed_run_sql(store: Any, name: str, parameters: Any = None) -> Any:
        t0 = time.perf_counter()
        try:
            return original_run_sql(store, name, parameters)
        finally:
            current.setdefault("queries", {})[name.rsplit("/", 1)[-1]] = time.perf_counter() - t0

    ev.run_sql = timed_run_sql
    original_evaluate = ev.BudgetEvaluator._evaluate

    def timed_evaluate(self: Any, now: Any) -> Any:
        current.clear()
        rss_at_start = rss_mib(os.getpid())
        t0 = time.perf_counter()
        error = None
        try:
            return original_evaluate(self, now)
        except Exception as exc:
            error = repr(exc)
            raise
        finally:
            emit({"event": "round", "t": time.time(), "round_s": time.perf_counter() - t0,
                  "rss_start": rss_at_start, "rss_end": rss_mib(os.getpid()), "error": error,
                  **current})  # fmt: skip

    ev.BudgetEvaluator._evaluate = timed_evaluate
    original_resolver_init = linking.NestedCallResolver.__init__

    def resolver_init(self: Any, *args: Any, **kwargs: Any) -> None:
        if resolver_memory:  # a smaller bound, to see memory level off within a short run
            kwargs["memory"] = resolver_memory
        original_resolver_init(self, *args, **kwargs)
        instances["resolvers"].append(self)

    linking.NestedCallResolver.__init__ = resolver_init
    original_processor_init = server.Processor.__init__

    def processor_init(self: Any, config: Any) -> None:
        original_processor_init(self, config)
        instances["processor"] = self

    server.Processor.__init__ = processor_init

    def state() -> dict[str, Any]:
        out: dict[str, Any] = {"event": "state", "t": time.time()}
        for k, resolver in enumerate(instances["resolvers"]):
            for name in ("_key_of_span", "_key_of_parent", "_key_of_response",
                         "_http_attempts", "_row_of_key"):  # fmt: skip
                memory = getattr(resolver, name)
                out[f"resolver{k}.{name}"] = len(memory._new) + len(memory._old)
        processor = instances.get("processor")
        if processor is not None:
            budgets = processor.budgets
            out["budgets._fired"] = len(budgets._fired)
            out["budgets._loaded_periods"] = len(budgets._loaded_periods)
            out["budgets._decisions"] = len(budgets._decisions)
            out["budgets._blocked_tasks"] = sum(len(v) for v in budgets._blocked_tasks.values())
            out["metrics.values"] = len(processor.metrics._values)
            writer = processor.writer
            out["writer.queue"] = len(writer._queue)
            out["writer.to_link"] = len(writer._to_link)
            out["spool.records"] = processor.spool.records
            readers = processor.store._readers
            out["store.readers_opened"] = readers._opened if readers else 0
        out["threads"] = threading.active_count()
        out["gc.objects"] = len(gc.get_objects())
        if trace_malloc:
            traced, peak = tracemalloc.get_traced_memory()
            out["tracemalloc_mib"] = traced / 2**20
        return out

    def watch() -> None:
        baseline = None
        k = 0
        while True:
            time.sleep(10)
            k += 1
            try:
                document = state()
                if trace_malloc and k == 6:  # one minute in: past warm-up
                    baseline = tracemalloc.take_snapshot()
                elif trace_malloc and baseline is not None and k % 6 == 0:
                    snapshot = tracemalloc.take_snapshot()
                    top = snapshot.compare_to(baseline, "traceback")[:8]
                    document["tracemalloc_growth"] = [
                        {"kib": s.size_diff / 1024, "count": s.count_diff,
                         "where": [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}"
                                   for f in s.traceback[-4:]]}
                        for s in top
                    ]  # fmt: skip
                emit(document)
            except Exception as exc:  # noqa: BLE001 - a probe must not kill serve
                emit({"event": "state_error", "error": repr(exc)})

    threading.Thread(target=watch, name="soak-watch", daemon=True).start()
    return main(argv)


# -- harness -----------------------------------------------------------------------------------
def write_billing(path: str, customers: int, interval: float) -> None:
    lines = ["plans:"]
    for plan, price in PLANS.items():
        lines += [
            f"  {plan}:",
            f'    monthly_price_usd: "{price}"',
            "    target_gross_margin_pct: 80",
        ]
    lines.append("customers:")
    for c in range(customers):
        plan = tuple(PLANS)[c % 3]
        workspaces = ", ".join(f"ws{c:04d}-{j}" for j in range(1 + c % 3))
        lines += [f"  c{c:04d}:", f"    name: Customer {c}", f"    plan: {plan}",
                  f"    workspaces: [{workspaces}]"]  # fmt: skip
    lines += [
        "budgets:",
        f"  interval_seconds: {interval}",
        "  soft_alert_pct: [50, 80]",
        '  daily_spend_usd: "5"',
        "  max_attempts_per_task: 8",
        '  max_cost_per_task_usd: "2"',
    ]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def seed_store(data_dir: str, calls: int, hours: int, customers: int) -> dict[str, list]:
    """Store ``calls`` calls spread over the ``hours`` hours before this one (one insert per
    hour, as a processor that ran then would have left parts), linked; returns the totals."""
    from llm_margin.processor.metrics import Metrics
    from llm_margin.processor.pipeline import Pipeline
    from llm_margin.processor.receiver.decode import parse_protobuf
    from llm_margin.processor.storage import Store

    workload = Workload(7, customers, seed=7)
    pipeline = Pipeline(workload.book, Metrics())
    store = Store.open(data_dir=data_dir)
    hour_start = int(time.time()) // 3600 * 3600
    try:
        for h in range(hours, 0, -1):
            calls_in_hour, tasks = [], set()
            spans = []
            target = calls // hours
            while len(calls_in_hour) < target:
                now_ns = (hour_start - h * 3600 + random.randrange(60, 3500)) * 10**9
                body, _ = workload.request(512, now_ns)
                extracted = pipeline.extract(parse_protobuf(body))
                calls_in_hour += extracted.calls
                spans += extracted.task_spans
            store.insert_calls(calls_in_hour)
            store.insert_task_spans(spans)
            tasks = {c.task_id for c in calls_in_hour} | {s.task_id for s in spans}
            store.link_tasks(tasks)
        # stream ends and task roots still held back by the workload
        body, _ = workload.request(0, (hour_start - 1) * 10**9)
        extracted = pipeline.extract(parse_protobuf(body))
        store.insert_calls(extracted.calls)
        store.insert_task_spans(extracted.task_spans)
        store.link_tasks(
            {c.task_id for c in extracted.calls} | {s.task_id for s in extracted.task_spans}
        )
    finally:
        store.close()
    return dict(workload.totals)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def scrape(http_url: str) -> dict[str, float]:
    with urllib.request.urlopen(http_url + "/metrics", timeout=30) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def slope_mib_per_min(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 3:
        return float("nan")
    xs = [t / 60 for t, _ in samples]
    ys = [r for _, r in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: str) -> None:
        self.args = args
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, "data")
        self.bin = os.path.join(os.path.dirname(sys.executable), "llm-margin")
        self.hooks_log = os.path.join(workdir, "hooks.jsonl")
        self.samples: list[dict[str, Any]] = []
        self.probes: list[tuple[float, str, float, int]] = []
        self.store_samples: list[dict[str, Any]] = []
        self.checks: list[tuple[str, bool, str]] = []
        self.process: subprocess.Popen | None = None

    # serve
    def start_serve(self) -> None:
        self.grpc_port, self.http_port = free_port(), free_port()
        billing = os.path.join(self.workdir, "billing.yaml")
        write_billing(billing, self.args.customers, self.args.interval)
        serve_args = [
            "serve", "--data-dir", self.data_dir, "--billing-file", billing,
            "--otlp-grpc-port", str(self.grpc_port), "--otlp-http-port", str(self.http_port),
        ]  # fmt: skip
        if self.args.plain:
            command = [self.bin, *serve_args]
        else:
            command = [sys.executable, os.path.abspath(__file__), "--serve-hooks", self.hooks_log]
            command += ["--tracemalloc"] if self.args.tracemalloc else []
            if self.args.resolver_memory:
                command += ["--resolver-memory", str(self.args.resolver_memory)]
            command += ["--", *serve_args]
        self.serve_log = open(os.path.join(self.workdir, "serve.log"), "w")  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=self.serve_log, stderr=subprocess.STDOUT)
        self.http_url = f"http://127.0.0.1:{self.http_port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("serve exited: " + self.read_serve_log())
            if "OTLP gRPC" in self.read_serve_log():
                return
            time.sleep(0.2)
        raise RuntimeError("serve did not start: " + self.read_serve_log())

    def read_serve_log(self) -> str:
        with open(os.path.join(self.workdir, "serve.log"), encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop_serve(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def sql(self, statement: str) -> list:
        from llm_margin.processor.remote import RemoteReader

        return RemoteReader(self.http_url, timeout=120).query(statement).rows

    def cli(self, *argv: str) -> tuple[float, int, str]:
        t0 = time.perf_counter()
        done = subprocess.run(
            [self.bin, *argv, "--data-dir", self.data_dir],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode:
            print(f"  ! {' '.join(argv[:2])} failed: {done.stderr.strip()[:300]}")
        return time.perf_counter() - t0, done.returncode, done.stdout

    # monitoring
    def sample_loop(self, stop: threading.Event, acked: list, started: float) -> None:
        pid = self.process.pid
        k = 0
        while not stop.is_set():
            try:
                metrics = scrape(self.http_url)
            except Exception:  # noqa: BLE001 - a slow scrape is itself a finding
                metrics = {}
            self.samples.append(
                {
                    "t": time.time() - started,
                    "rss": rss_mib(pid),
                    "cpu": cpu_seconds(pid),
                    "acked": sum(a.value for a in acked),
                    "metrics": metrics,
                }
            )
            if k % 5 == 0:
                try:
                    self.store_samples.append(self.store_state(time.time() - started))
                except Exception as exc:  # noqa: BLE001
                    print(f"  ! store probe failed: {exc}")
            k += 1
            stop.wait(2.0)

    def store_state(self, t: float) -> dict[str, Any]:
        parts = self.sql(
            "SELECT table, count(), sum(rows) FROM system.parts WHERE database = currentDatabase()"
            " AND active GROUP BY table"
        )
        memory = self.sql(
            "SELECT metric, value FROM system.metrics WHERE metric IN ('MemoryTracking', "
            "'BackgroundMergesAndMutationsPoolTask')"
        )
        return {"t": t, "parts": {r[0]: (r[1], r[2]) for r in parts}, "memory": dict(memory)}

    def probe_loop(self, stop: threading.Event, started: float, since: str) -> None:
        views = ("customers", "weekly")
        k = 0
        while not stop.wait(self.args.report_every):
            view = views[k % 2]
            until = (datetime.now(timezone.utc) + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M")
            argv = ["report", view, "--format", "json", "--until", until]
            if view == "customers":
                argv += ["--since", since]
            seconds, code, _ = self.cli(*argv)
            self.probes.append((time.time() - started, view, seconds, code))
            k += 1

    def idle_reports(self, since: str, label: str) -> list[str]:
        until = (datetime.now(timezone.utc) + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M")
        out = []
        for view in ("customers", "weekly"):
            argv = ["report", view, "--format", "json", "--until", until]
            argv += ["--since", since] if view == "customers" else []
            seconds, _, _ = self.cli(*argv)
            out.append(f"{label}: report {view} {seconds:.2f}s")
        seconds, _, _ = self.cli("sql", "SELECT 1")
        out.append(f"{label}: sql SELECT 1 {seconds:.2f}s")
        return out

    # the run
    def run(self) -> int:
        args = self.args
        seed_totals: dict[str, list] = {}
        if args.seed_calls:
            t0 = time.perf_counter()
            seed_totals = seed_store(self.data_dir, args.seed_calls, args.seed_hours,
                                     args.customers)  # fmt: skip
            print(f"seeded {args.seed_calls:,} calls over {args.seed_hours} h "
                  f"in {time.perf_counter() - t0:.0f}s")  # fmt: skip
        self.start_serve()
        started = self.t0 = time.time()
        since = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        go = ctx.Event()
        acked = [ctx.Value("q", 0, lock=False) for _ in range(2)]
        seconds = args.minutes * 60
        senders = [
            ctx.Process(
                target=sender_main,
                args=(
                    k,
                    transport,
                    self.http_port if transport == "http" else self.grpc_port,
                    args.rate / 2,
                    seconds,
                    args.customers,
                    args.connections,
                    acked[k],
                    go,
                    out,
                ),
            )  # fmt: skip
            for k, transport in enumerate(("http", "grpc"))
        ]
        stop = threading.Event()
        results: list[dict] = []
        try:
            for sender in senders:
                sender.start()
            for _ in senders:
                kind, _value = out.get(timeout=120)
                assert kind == "ready"
            self.baseline = self.idle_reports(since, "idle before")
            sampler = threading.Thread(target=self.sample_loop, args=(stop, acked, started))
            prober = threading.Thread(target=self.probe_loop, args=(stop, started, since))
            sampler.start()
            go.set()
            send_started = time.time() - started
            prober.start()
            for _ in senders:
                kind, value = out.get(timeout=seconds + 600)
                results.append(value)
            send_ended = time.time() - started
            stop.set()
            sampler.join()
            prober.join()
            for sender in senders:
                sender.join(timeout=30)
            with open(os.path.join(self.workdir, "samples.json"), "w") as handle:
                json.dump({"samples": self.samples, "probes": self.probes,
                           "store": self.store_samples}, handle)  # fmt: skip
            self.settle()
            self.baseline += self.idle_reports(since, "idle after")
            self.verify(results, seed_totals)
            final_metrics = scrape(self.http_url)
            self.summary(results, send_started, send_ended, final_metrics)
        finally:
            stop.set()
            for sender in senders:
                if sender.is_alive():
                    sender.terminate()
            self.stop_serve()
        return 0 if all(ok for _, ok, _ in self.checks) else 1

    def settle(self) -> None:
        """Wait until nothing is queued and the stored count holds still."""
        last, stable = -1, 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and stable < 3:
            metrics = scrape(self.http_url)
            count = self.sql("SELECT count() FROM llm_calls")[0][0]
            stable = (
                stable + 1 if count == last and not metrics.get("llm_margin_queue_depth") else 0
            )
            last = count
            time.sleep(1)

    # checks
    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, ok, detail))

    def verify(self, results: list[dict], seed_totals: dict[str, list]) -> None:
        expected: dict[str, list] = defaultdict(lambda: [0, Decimal(0), 0, 0, 0, 0])
        soak_expected: dict[str, list] = defaultdict(lambda: [0, Decimal(0), 0, 0, 0, 0])
        for totals, into in [(r["totals"], (expected, soak_expected)) for r in results] + [
            (seed_totals, (expected,))
        ]:
            for customer, row in totals.items():
                for target in into:
                    target[customer] = [a + b for a, b in zip(target[customer], row, strict=True)]
        calls = sum(r[0] for r in expected.values())
        cost = sum((r[1] for r in expected.values()), Decimal(0))
        tasks = sum(r[5] for r in expected.values())
        # 1. everything stored exactly once
        got = self.sql(
            "SELECT count(), sum(cost_usd), uniqExact(customer_id, span_id), "
            "countIf(NOT priced), sum(input_tokens), sum(output_tokens) FROM llm_calls FINAL"
        )[0]
        self.check("calls stored once (count)", got[0] == calls == got[2],
                   f"stored {got[0]:,} distinct {got[2]:,} sent {calls:,}")  # fmt: skip
        self.check("summed cost equals sent", got[1] == cost, f"stored {got[1]} sent {cost}")
        unpriced = sum(r[4] for r in expected.values())
        self.check("unpriced calls", got[3] == unpriced, f"stored {got[3]:,} sent {unpriced:,}")
        tasks_row = self.sql("SELECT count(), sum(calls), sum(cost_usd) FROM llm_tasks FINAL")[0]
        self.check("llm_tasks: one per task, calls and cost add up",
                   tuple(tasks_row) == (tasks, calls, cost),
                   f"tasks {tasks_row[0]:,}/{tasks:,} calls {tasks_row[1]:,} cost {tasks_row[2]}")  # fmt: skip
        # 2. report customers (through the running serve) against llm_calls FINAL and the sender
        since = (datetime.now(timezone.utc) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
        until = (datetime.now(timezone.utc) + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M")
        if self.args.seed_calls:  # the report covers the soak only: after the seeded hours
            since = datetime.fromtimestamp(int(self.started_hour), timezone.utc).strftime(
                "%Y-%m-%dT%H:%M"
            )
        seconds, code, text = self.cli("report", "customers", "--format", "json",
                                       "--since", since, "--until", until)  # fmt: skip
        report = {row["customer_id"]: row for row in json.loads(text)} if code == 0 else {}
        direct = {
            row[0]: row[1:]
            for row in self.sql(
                "SELECT customer_id, count(), uniqExact(task_id), sum(input_tokens), "
                "sum(output_tokens), sum(cost_usd), countIf(NOT priced) FROM llm_calls FINAL "
                f"WHERE ts >= '{since.replace('T', ' ')}:00' AND ts < '{until.replace('T', ' ')}:00'"
                " GROUP BY customer_id"
            )
        }
        mismatches = []
        reference = soak_expected if self.args.seed_calls else expected
        for customer in sorted(set(direct) | set(report) | set(reference)):
            r = report.get(customer, {})
            mine = direct.get(customer)
            want = reference.get(customer)
            as_report = (
                (r.get("calls"), r.get("tasks"), r.get("input_tokens"), r.get("output_tokens"),
                 Decimal(r["cost_usd"]) if r else None, r.get("unpriced_calls"))
            )  # fmt: skip
            as_direct = tuple(mine) if mine else None
            as_sent = (want[0], want[5], want[2], want[3], want[1], want[4]) if want else None
            if not (mine or want) and not r.get("calls"):
                continue  # a billing customer without calls: listed for its revenue
            if not (as_report == as_direct == as_sent):
                mismatches.append(
                    f"{customer}: report {as_report} FINAL {as_direct} sent {as_sent}"
                )
        self.check("report customers == llm_calls FINAL == sent (per customer)",
                   code == 0 and not mismatches,
                   f"{len(report)} customers; " + "; ".join(mismatches[:3]))  # fmt: skip
        # 3. /metrics add up
        m = scrape(self.http_url)

        def v(name: str) -> int:
            return int(m.get(f"llm_margin_{name}_total", 0))

        posted = sum(r["posted_spans"] for r in results)
        self.check("received_spans == spans posted (every attempt)", v("received_spans") == posted,
                   f"metrics {m.get('llm_margin_received_spans_total')!r} posted {posted:,}")  # fmt: skip
        parts = (v("received_llm_spans") + v("nested_llm_spans") + v("received_task_spans")
                 + v("skipped_spans") + v("rejected_spans"))  # fmt: skip
        self.check("received = llm + nested + task + skipped + rejected",
                   parts == v("received_spans"), f"{parts:,} vs {v('received_spans'):,}")  # fmt: skip
        rows_in = v("received_llm_spans") + v("received_task_spans")
        rows_out = (v("stored_calls") + v("stored_task_spans") + v("refused_records")
                    + v("spooled_records") - v("replayed_records"))  # fmt: skip
        self.check("llm + task spans = stored + refused (+ spooled - replayed)",
                   rows_in == rows_out, f"{rows_in:,} vs {rows_out:,}")  # fmt: skip
        errors = {k: v(k) for k in ("dropped_records", "write_errors", "link_errors",
                                    "internal_errors", "budget_evaluation_errors",
                                    "rejected_spans", "rejected_requests")}  # fmt: skip
        self.check("no errors or drops in /metrics", not any(errors.values()), str(errors))
        sender_errors = sum(r["error_count"] for r in results)
        self.check("no export errors at the senders", not sender_errors,
                   "; ".join(e for r in results for e in r["errors"]))  # fmt: skip

    def rounds(self) -> list[dict]:
        out = []
        if os.path.exists(self.hooks_log):
            with open(self.hooks_log, encoding="utf-8") as handle:
                for line in handle:
                    out.append(json.loads(line))
        return out

    def summary(self, results: list[dict], send_started: float, send_ended: float,
                metrics: dict[str, float]) -> None:  # fmt: skip
        print("\n== soak summary ==")
        rss = [(s["t"], s["rss"]) for s in self.samples]
        warm = [(t, r) for t, r in rss if t >= send_started + 60]
        half = [(t, r) for t, r in warm if t >= (send_started + 60 + send_ended) / 2]
        print(f"RSS MiB: start {rss[0][1]:.0f}, after 1 min {warm[0][1] if warm else 0:.0f}, "
              f"peak {max(r for _, r in rss):.0f} (VmHWM {peak_rss_mib(self.process.pid):.0f}), "
              f"end {rss[-1][1]:.0f}; slope after warm-up {slope_mib_per_min(warm):+.1f} MiB/min, "
              f"second half {slope_mib_per_min(half):+.1f} MiB/min")  # fmt: skip
        print("per minute: acked spans/s, serve CPU %, RSS MiB, p_write>1s, ack timeouts")
        for minute in range(int(send_ended // 60) + 1):
            window = [s for s in self.samples if minute * 60 <= s["t"] < (minute + 1) * 60]
            if len(window) < 2:
                continue
            a, b = window[0], window[-1]
            dt = b["t"] - a["t"]
            slow = [
                s["metrics"].get("llm_margin_write_seconds_count", 0)
                - s["metrics"].get('llm_margin_write_seconds_bucket{le="1"}', 0)
                for s in (a, b)
            ]
            timeouts = [s["metrics"].get("llm_margin_ack_timeouts_total", 0) for s in (a, b)]
            print(f"  min {minute}: {(b['acked'] - a['acked']) / dt:8,.0f}  "
                  f"{(b['cpu'] - a['cpu']) / dt * 100:5.0f}%  {b['rss']:6.0f}  "
                  f"{slow[1] - slow[0]:4.0f}  {timeouts[1] - timeouts[0]:4.0f}")  # fmt: skip
        rounds = [r for r in self.rounds() if r["event"] == "round"]
        if rounds:
            print(
                "budget rounds: t(s) round_s refresh_s stale_s hours [stale hours: rows] "
                "usage/frag/task_h/rec  budget_usage daily runaway"
            )
            for r in rounds:
                st = r.get("statements", {})
                q = r.get("queries", {})
                stale = ", ".join(f"{h[11:16]}:{n}" for h, n in r.get("stale", [])[:6])
                more = len(r.get("stale", [])) - 6
                print(f"  {r['t'] - self.t0:6.0f} {r.get('rss_start', 0):5.0f}>{r.get('rss_end', 0):5.0f}"
                      f" {r['round_s']:6.2f} {r.get('refresh_s', 0):6.2f}"
                      f" {r.get('stale_s', 0):5.2f} {r.get('hours', 0):3d} [{stale}"
                      f"{f' +{more}' if more > 0 else ''}] "
                      f"{st.get('usage_hourly', 0):.2f}/{st.get('task_fragments', 0):.2f}/"
                      f"{st.get('task_hourly', 0):.2f}/{st.get('record_hours', 0):.2f}  "
                      f"{q.get('budget_usage.sql', 0):.2f} {q.get('daily_spend.sql', 0):.2f} "
                      f"{q.get('runaway_tasks.sql', 0):.2f}"
                      + (f" ERROR {r['error']}" if r.get("error") else ""))  # fmt: skip
        top = sorted(self.samples, key=lambda x: -x["rss"])[:5]
        spans = [(r["t"] - self.t0 - r["round_s"], r["t"] - self.t0) for r in rounds]
        print("highest RSS samples (t s: MiB, during a budget round? a report?):")
        for x in sorted(top, key=lambda x: x["t"]):
            in_round = any(a - 2 <= x["t"] <= b + 2 for a, b in spans)
            in_probe = [v for t, v, sec, _ in self.probes if t - sec - 2 <= x["t"] <= t + 2]
            print(f"  {x['t']:6.0f}: {x['rss']:6.0f}  round={in_round} report={in_probe}")
        states = [r for r in self.rounds() if r["event"] == "state"]
        if states:
            first, last = states[min(5, len(states) - 1)], states[-1]
            print("in-memory state (after 1 min -> end):")
            for key in sorted(last):
                if key not in ("event", "t", "tracemalloc_growth"):
                    print(f"  {key:<36} {first.get(key, '-'):>10} -> {last[key]:>10}")
            growth = [s for s in states if "tracemalloc_growth" in s]
            if growth:
                print("tracemalloc growth since 1 min (last snapshot):")
                for item in growth[-1]["tracemalloc_growth"]:
                    print(
                        f"  {item['kib']:9.0f} KiB {item['count']:8d}  {' < '.join(item['where'])}"
                    )
        if self.store_samples:
            s0, s1 = self.store_samples[0], self.store_samples[-1]
            print(f"store: parts/rows {s0['parts'].get('llm_calls')} -> {s1['parts'].get('llm_calls')}"
                  f" (llm_calls); chDB MemoryTracking {s0['memory'].get('MemoryTracking', 0) / 2**20:.0f}"
                  f" -> {s1['memory'].get('MemoryTracking', 0) / 2**20:.0f} MiB")  # fmt: skip
        by_view: dict[str, list[float]] = defaultdict(list)
        for _, view, seconds, _code in self.probes:
            by_view[view].append(seconds)
        print("; ".join(self.baseline))
        for view, times in by_view.items():
            print(f"report {view} while ingesting: n={len(times)} "
                  f"min {min(times):.2f}s median {statistics.median(times):.2f}s "
                  f"max {max(times):.2f}s  ({', '.join(f'{t:.1f}' for t in times)})")  # fmt: skip
        sent = sum(r["spans_made"] for r in results)
        llm = sum(r["llm_made"] for r in results)
        took = send_ended - send_started
        print(f"senders: {sent:,} spans ({llm:,} LLM call spans) generated in {took:.0f}s "
              f"({sent / took:,.0f}/s, LLM {llm / took:,.0f}/s), "
              f"{sum(r['requests'] for r in results):,} requests, "
              f"{sum(r['duplicates'] for r in results)} sent twice, "
              f"{sum(r['retries'] for r in results)} retried (429/503/UNAVAILABLE), export "
              f"latency p50/p99 {max(r['p50'] for r in results) * 1000:.0f}/"
              f"{max(r['p99'] for r in results) * 1000:.0f} ms, generator lag max "
              f"{max(r['lag_max'] for r in results):.1f}s")  # fmt: skip
        print("checks:")
        for name, ok, detail in self.checks:
            print(f"  {'PASS' if ok else 'FAIL'}  {name}  ({detail})")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-hooks":
        split = sys.argv.index("--")
        hooks = argparse.ArgumentParser()
        hooks.add_argument("--serve-hooks")
        hooks.add_argument("--tracemalloc", action="store_true")
        hooks.add_argument("--resolver-memory", type=int)
        options = hooks.parse_args(sys.argv[1:split])
        return hooked_serve(
            options.serve_hooks, options.tracemalloc, sys.argv[split + 1 :], options.resolver_memory
        )
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=6.0, help="how long to send")
    parser.add_argument(
        "--rate", type=float, default=1500, help="LLM call spans/s, both senders together"
    )
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--connections", type=int, default=4, help="per sender process")
    parser.add_argument("--interval", type=float, default=30, help="budget interval_seconds")
    parser.add_argument("--report-every", type=float, default=20, help="seconds between reports")
    parser.add_argument("--seed-calls", type=int, default=0)
    parser.add_argument("--seed-hours", type=int, default=24)
    parser.add_argument("--plain", action="store_true", help="installed serve, no timing hooks")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument(
        "--resolver-memory",
        type=int,
        help="span ids the nested-call resolver remembers per generation (default 200,000)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="llm-margin-soak-")
    soak = Soak(args, workdir)
    soak.started_hour = time.time() // 3600 * 3600
    try:
        return soak.run()
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
