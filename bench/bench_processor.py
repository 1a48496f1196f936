"""Processor throughput benchmark (a script, not a test): `python bench/bench_processor.py`.

Prints, in one run:

1. the protobuf-parse-only rate of a 512-span OTLP export request (the ceiling);
2. the rate of each in-process stage on the same spans (normalise, check, price, extract =
   Pipeline.extract of a whole request: normalise+check+price+nesting, insert, link), with
   the top functions of a cProfile of the whole extract+insert path: where the time goes;
3. sustained end-to-end throughput of a real `llm-margin serve` subprocess: OTLP/HTTP
   protobuf requests in (several sender processes, keep-alive connections) until the rows
   are queryable, as spans/s, its ratio to the parse ceiling, and the server's peak RSS;
4. the same for non-LLM spans, which the processor skips, and the skipped/stored ratio;
5. the storage floor: the same traffic sent to bench/processor_floor.py, a server on the same
   stack that only parses, reads each span's attributes and inserts one row per span. No
   processor of this design (Python, clickhouse-connect, chDB) can store spans faster than it.

Targets on a 2-core machine: >= 50,000 LLM spans/s end to end; non-LLM spans skipped >= 5x
faster than LLM spans are stored.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import multiprocessing
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from llm_margin.processor.receiver.decode import parse_protobuf
from llm_margin.processor.receiver.synthetic import make_request

SPANS_PER_REQUEST = 512  # the OpenTelemetry SDK BatchSpanProcessor's default batch size
TARGET_SPANS_PER_SECOND = 50_000
TARGET_SKIP_RATIO = 5.0
FLOOR_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "processor_floor.py")


def rate(func, spans_per_call: int, seconds: float = 1.5) -> float:
    calls, started = 0, time.perf_counter()
    while True:
        func()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return calls * spans_per_call / elapsed


# -- in-process stages -------------------------------------------------------------------------
def stage_rates(body: bytes, workdir: str, profile: bool) -> dict[str, float]:
    from llm_margin.processor.metrics import Metrics
    from llm_margin.processor.normalize import call_from_span, read_attributes
    from llm_margin.processor.pipeline import Pipeline
    from llm_margin.processor.pricing import default_price_book
    from llm_margin.processor.receiver.limits import check_storable
    from llm_margin.processor.storage import Store

    request = parse_protobuf(body)
    spans = list(request.resource_spans[0].scope_spans[0].spans)
    book = default_price_book()
    pipeline = Pipeline(book, Metrics())
    results: dict[str, float] = {}
    results["parse"] = rate(lambda: parse_protobuf(body), len(spans))
    # normalise as Pipeline.extract does it: decode the attributes read, build the record
    calls = [call_from_span(s, read_attributes(s.attributes)) for s in spans]
    results["normalise"] = rate(
        lambda: [call_from_span(s, read_attributes(s.attributes)) for s in spans], len(spans)
    )
    results["check"] = rate(lambda: [check_storable(c) for c in calls], len(spans))
    results["price"] = rate(lambda: [book.price(c) for c in calls], len(spans))
    results["extract"] = rate(lambda: pipeline.extract(request), len(spans))
    priced = pipeline.extract(request).calls
    store = Store.open(data_dir=os.path.join(workdir, "stages"))
    try:
        batch = priced * 40  # one writer batch of ~20k rows, as under load
        store.insert_calls(batch)  # warm up: the first insert creates the table's first part
        started = time.perf_counter()
        store.insert_calls(batch)
        results["insert"] = len(batch) / (time.perf_counter() - started)
        started = time.perf_counter()
        store.link_tasks({c.task_id for c in batch})
        results["link"] = len(batch) / (time.perf_counter() - started)
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(4):
                store.insert_calls(pipeline.extract(request).calls)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
            results["_profile"] = out.getvalue()  # type: ignore[assignment]
    finally:
        store.close()
    return results


# -- end to end --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sender(port: int, first: int, requests: int, llm: bool, go, connections: int, out) -> None:
    """Posts ``requests`` export requests over ``connections`` keep-alive connections at once,
    as a Collector's exporter does (its sending queue has 10 consumers by default); each
    connection waits for its answer before the next request, as exporters do."""
    bodies = [
        make_request(first + i * SPANS_PER_REQUEST, SPANS_PER_REQUEST, llm=llm).SerializeToString()
        for i in range(requests)
    ]
    headers = {"Content-Type": "application/x-protobuf"}
    retries = [0] * connections
    errors: list[BaseException] = []

    def post_all(k: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            for body in bodies[k::connections]:
                while True:
                    connection.request("POST", "/v1/traces", body, headers)
                    response = connection.getresponse()
                    response.read()
                    if response.status == 200:
                        break
                    if response.status not in (429, 503):
                        raise RuntimeError(f"export answered {response.status}")
                    retries[k] += 1
                    time.sleep(float(response.getheader("Retry-After") or 1) / 10)
        except BaseException as exc:  # reported by the sender process
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post_all, args=(k,)) for k in range(connections)]
    out.put("ready")  # payloads built: the clock starts when every sender is ready
    go.wait()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    out.put(sum(retries))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads, chDB's included)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def query(http_url: str, sql: str) -> list:
    request = urllib.request.Request(
        http_url + "/api/query",
        data=json.dumps({"sql": sql}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["rows"]


def end_to_end(
    workdir: str, total_spans: int, senders: int, connections: int, llm: bool, floor: bool = False
) -> dict[str, float]:
    """``floor``: send to bench/processor_floor.py instead of `llm-margin serve`."""
    grpc_port, http_port = free_port(), free_port()
    data_dir = os.path.join(workdir, "e2e-floor" if floor else "e2e-llm" if llm else "e2e-skip")
    if floor:
        command = [sys.executable, FLOOR_SERVER, "--port", str(http_port), "--data-dir", data_dir]
    else:
        command = [
            os.path.join(os.path.dirname(sys.executable), "llm-margin"),
            "serve",
            "--data-dir",
            data_dir,
            "--otlp-grpc-port",
            str(grpc_port),
            "--otlp-http-port",
            str(http_port),
            "--queue-max-records",
            "400000",
        ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    http_url = f"http://127.0.0.1:{http_port}"
    try:
        line = process.stdout.readline()
        if "OTLP gRPC" not in line:
            raise RuntimeError(line + process.stdout.read())
        per_sender = max(1, total_spans // SPANS_PER_REQUEST // senders)
        spans = per_sender * senders * SPANS_PER_REQUEST
        queue: multiprocessing.Queue = multiprocessing.Queue()
        go = multiprocessing.Event()
        workers = [
            multiprocessing.Process(
                target=sender,
                args=(
                    http_port,
                    k * per_sender * SPANS_PER_REQUEST,
                    per_sender,
                    llm,
                    go,
                    connections,
                    queue,
                ),
            )
            for k in range(senders)
        ]
        for worker in workers:
            worker.start()
        for _ in workers:
            if queue.get(timeout=900) != "ready":
                raise RuntimeError("a sender failed before sending")
        start_at = time.time()
        cpu_at_start = cpu_seconds(process.pid)
        go.set()
        retries = sum(queue.get(timeout=900) for _ in workers)
        for worker in workers:
            worker.join()
        count = (
            (lambda: int(urllib.request.urlopen(http_url + "/count", b"", timeout=60).read()))
            if floor
            else (lambda: query(http_url, "SELECT count() FROM llm_calls")[0][0])
        )
        if llm:
            while count() < spans:
                time.sleep(0.05)
        elapsed = time.time() - start_at
        server_cpu = cpu_seconds(process.pid) - cpu_at_start
        stored = count() if floor else query(http_url, "SELECT count() FROM llm_calls FINAL")[0][0]
        return {
            "spans": spans,
            "seconds": elapsed,
            "rate": spans / elapsed,
            "stored": stored,
            "retries": retries,
            "peak_rss_mib": peak_rss_mib(process.pid),
            "cpu_us_per_span": server_cpu / spans * 1e6,
        }
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=100_000, help="LLM spans end to end")
    parser.add_argument("--senders", type=int, default=2, help="sender processes")
    parser.add_argument(
        "--connections",
        type=int,
        default=5,
        help="concurrent exports per sender process (2 x 5: one Collector's 10 default consumers)",
    )
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="llm-margin-bench-")
    try:
        body = make_request(0, SPANS_PER_REQUEST).SerializeToString()
        print(f"payload: {SPANS_PER_REQUEST} LLM spans per request, {len(body):,} bytes")
        stages = stage_rates(body, workdir, profile=not args.no_profile)
        ceiling = stages["parse"]
        print("\nin-process stage rates (spans/s, one core):")
        for name in ("parse", "normalise", "check", "price", "extract", "insert", "link"):
            print(f"  {name:<10} {stages[name]:>12,.0f}")
        if "_profile" in stages:
            print("\ncProfile of extract + insert (top by own time):")
            print(stages["_profile"])

        llm = end_to_end(workdir, args.spans, args.senders, args.connections, llm=True)
        skip = end_to_end(workdir, args.spans * 3, args.senders, args.connections, llm=False)
        floor = end_to_end(
            workdir, args.spans, args.senders, args.connections, llm=True, floor=True
        )
        print(
            f"end to end (OTLP/HTTP protobuf in -> rows queryable; {args.senders} sender "
            f"processes x {args.connections} concurrent exports):"
        )
        print(
            f"  LLM spans stored : {llm['rate']:>10,.0f} spans/s  ({llm['spans']:,} spans in "
            f"{llm['seconds']:.1f}s, {llm['stored']:,} rows, {llm['retries']} retried requests)"
        )
        print(
            f"  parse-only ceiling: {ceiling:>9,.0f} spans/s  -> end to end is "
            f"{llm['rate'] / ceiling:.1%} of the ceiling"
        )
        print(f"  peak RSS of serve : {llm['peak_rss_mib']:>9,.0f} MiB")
        print(
            f"  serve CPU per span: {llm['cpu_us_per_span']:>9,.1f} µs (all threads; "
            f"50,000 spans/s on 2 cores allows 40 µs shared with the senders)"
        )
        print(
            f"  non-LLM skipped  : {skip['rate']:>10,.0f} spans/s  ({skip['spans']:,} spans, "
            f"peak RSS {skip['peak_rss_mib']:,.0f} MiB)"
        )
        ratio = skip["rate"] / llm["rate"]
        print(f"  skip/store ratio : {ratio:>10.1f}x")
        print(
            f"  storage floor    : {floor['rate']:>10,.0f} spans/s at {floor['cpu_us_per_span']:.1f}"
            " µs server CPU per span (bench/processor_floor.py: parse, read attributes, insert"
            " rows; nothing else)\n"
            f"                     serve reaches {llm['rate'] / floor['rate']:.0%} of it"
        )
        print("\ntargets:")
        print(
            f"  >= {TARGET_SPANS_PER_SECOND:,} LLM spans/s end to end: "
            f"{'MET' if llm['rate'] >= TARGET_SPANS_PER_SECOND else 'NOT MET'}"
        )
        print(
            f"  skip >= {TARGET_SKIP_RATIO:.0f}x store rate: "
            f"{'MET' if ratio >= TARGET_SKIP_RATIO else 'NOT MET'}"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
