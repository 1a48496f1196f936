"""`llm-margin demo`: the whole pipeline on one machine, on the embedded store.

Starts the processor (in this process), the provider simulator, and the demo app in a
separate process under the real `opentelemetry-instrument` launcher; sends the workload through
the app with gateway-style baggage; waits until every call is stored; prints the report.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import timedelta
from importlib import resources

from llm_margin.processor.config import ServeConfig
from llm_margin.processor.server import Processor
from llm_margin.processor.storage import locking_pid


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launcher_path() -> str:
    """The opentelemetry-instrument script installed beside this Python."""
    candidate = os.path.join(os.path.dirname(sys.executable), "opentelemetry-instrument")
    return candidate if os.path.exists(candidate) else "opentelemetry-instrument"


def app_environment(otlp_grpc_port: int, openai_base_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OTEL_SERVICE_NAME": "demo-app",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_grpc_port}",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            # Only llm-margin's instrumentation prices calls in the demo; OpenLLMetry (installed
            # for the interop tests) would also capture prompt text by default.
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,anthropic,genai-openai,genai-anthropic",
            "TRACELOOP_TRACE_CONTENT": "false",
            "OPENAI_BASE_URL": openai_base_url,
            "OPENAI_API_KEY": "sk-demo-not-a-real-key",
        }
    )
    return env


def start_app(env: dict[str, str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [launcher_path(), sys.executable, "-m", "llm_margin.demo.app", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    if "listening" not in line:
        process.kill()
        rest = process.stdout.read() if process.stdout else ""
        raise RuntimeError(f"demo app did not start: {line}{rest}")
    return process


def wait_for_calls(processor: Processor, minimum: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    stored = 0
    while time.monotonic() < deadline:
        stored = int(processor.metrics.get("stored_calls"))
        if stored >= minimum and processor.metrics.get("queue_depth") == 0:
            return stored
        time.sleep(0.2)
    return stored


# Written into the demo's data directory: the next demo may wipe a directory that has it.
DEMO_MARKER = ".llm-margin-demo"


class DemoDirectoryError(ValueError):
    """--data-dir names a directory the demo did not create: it is never wiped."""


def prepare_data_dir(data_dir: str) -> None:
    """Start from an empty store: wipe ``data_dir`` only when a previous demo made it (or it
    is empty), so `--data-dir .` or a real store's path cannot lose anything."""
    if os.path.isdir(data_dir) and os.listdir(data_dir):
        made_by_demo = DEMO_MARKER, "weekly.html"  # the page: demos from before the marker
        if not any(os.path.exists(os.path.join(data_dir, name)) for name in made_by_demo):
            raise DemoDirectoryError(
                f"{data_dir} is not empty and was not made by the demo; the demo wipes its "
                "--data-dir, so name a new or empty directory"
            )
        # A `serve` (or any command) on it would keep running on a deleted store.
        holder = locking_pid(os.path.abspath(data_dir))
        if holder:
            raise DemoDirectoryError(
                f"{data_dir} is in use by another process (pid {holder}), e.g. `llm-margin "
                "serve`; the demo wipes its --data-dir, so stop that process or name another "
                "directory"
            )
        shutil.rmtree(data_dir)
    elif os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise DemoDirectoryError(f"{data_dir} is a file, not a directory")
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, DEMO_MARKER), "w", encoding="utf-8") as marker:
        marker.write("made by `llm-margin demo`, which wipes this directory when run again\n")


def run_demo(data_dir: str, report_format: str = "table") -> int:
    from llm_margin.demo.workload import requests, run_workload
    from llm_margin.processor.reports import customers
    from llm_margin.processor.reports.period import resolve_period
    from llm_margin.processor.reports.render import render
    from llm_margin.simulator import start_simulator

    started = time.monotonic()
    prepare_data_dir(data_dir)
    billing = str(resources.files("llm_margin.demo").joinpath("billing.yaml"))
    config = ServeConfig(
        data_dir=data_dir,
        otlp_grpc_port=free_port(),
        otlp_http_port=free_port(),
        billing_file=billing,
    ).validate()
    processor = Processor(config)
    processor.start()
    simulator = start_simulator()
    app = None
    # With --format csv|json stdout carries only the customer report, so it can be piped into
    # a parser; the progress lines and the weekly page go to stderr.
    progress = sys.stdout if report_format == "table" else sys.stderr
    try:
        print(
            f"processor: OTLP gRPC :{processor.grpc.port}, HTTP {processor.http_url}", file=progress
        )
        print(f"simulator: {simulator.base_url}", file=progress)
        app_port = free_port()
        app = start_app(app_environment(processor.grpc.port, simulator.openai_base_url), app_port)
        print(f"demo app:  http://127.0.0.1:{app_port} (opentelemetry-instrument)", file=progress)
        expected_requests = len(list(requests()))
        statuses = run_workload(f"http://127.0.0.1:{app_port}")
        print(f"workload:  {expected_requests} requests, HTTP statuses {statuses}", file=progress)
        app.terminate()  # SIGTERM: the app exits normally and flushes its spans
        app.wait(timeout=30)
        written = wait_for_calls(processor, minimum=expected_requests, timeout=90)
        # Rows written include streams' provisional rows, which their final rows replace.
        calls = processor.store.query("SELECT count() FROM llm_calls FINAL").rows[0][0]
        print(
            f"stored:    {calls} LLM calls ({written} rows written) "
            f"in {processor.store.description}",
            file=progress,
        )
        since, until = resolve_period("30d", None)
        rows = customers.customer_rows(processor.store, since, until + timedelta(seconds=1))
        print(file=progress)
        sys.stdout.write(
            render(
                [customers.to_wire(r) for r in rows],
                customers.COLUMNS,
                report_format,
                footer=customers.to_wire(customers.total_row(rows)),
                title="Customer margin, last 30 days (revenue = one month of each plan)",
            )
        )
        from llm_margin.processor.reports.weekly import weekly_text

        html_path = os.path.join(data_dir, "weekly.html")
        print(file=progress)
        print(
            weekly_text(processor.store, since, until + timedelta(seconds=1), html_path=html_path),
            file=progress,
        )
        print(
            f"\ndemo finished in {time.monotonic() - started:.1f} s. Explore the data:",
            file=progress,
        )
        print(f"  llm-margin report customers --data-dir {data_dir} --since 30d", file=progress)
        print(
            f"  llm-margin sql --data-dir {data_dir} 'SELECT * FROM llm_tasks FINAL LIMIT 10'",
            file=progress,
        )
        return 0
    finally:
        if app is not None and app.poll() is None:
            app.kill()
        simulator.stop()
        processor.stop()
