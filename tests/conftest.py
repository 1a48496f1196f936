"""Shared fixtures: real processes and servers on loopback, always stopped afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from llm_margin.processor.storage import load_chdb_in_utc

from tests.http_replies import reply_ok

# Before any test module can import chdb: the store reads every time in UTC, and chDB takes
# its timezone once, when it is loaded (see storage.load_chdb_in_utc).
load_chdb_in_utc()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def processor(tmp_path):
    """An in-process `serve` on free ports over a fresh embedded store, with demo billing."""
    from llm_margin.processor.config import ServeConfig
    from llm_margin.processor.server import Processor

    billing = os.path.join(os.path.dirname(__file__), "..", "demo", "billing.yaml")
    config = ServeConfig(
        data_dir=str(tmp_path / "data"),
        otlp_grpc_port=free_port(),
        otlp_http_port=free_port(),
        billing_file=os.path.abspath(billing),
    ).validate()
    proc = Processor(config)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def simulator():
    from llm_margin.simulator import start_simulator

    sim = start_simulator()
    try:
        yield sim
    finally:
        sim.stop()


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")


def calls_by_model(processor, count: int) -> dict[str, dict]:
    """The ``count`` calls llm-margin's instrumentation recorded with provider usage, once the
    in-process ``processor`` has stored them all, by request model."""

    def stored() -> list[dict]:
        rows = processor.store.query(
            "SELECT * FROM llm_calls FINAL WHERE source = 'llm_margin' AND usage_source = "
            "'provider'"
        ).dicts()
        return rows if len(rows) == count else []

    rows = wait_until(stored, message=f"{count} calls stored")
    return {row["request_model"]: row for row in rows}


def launcher_env(
    service: str, endpoint: str, protocol: str = "grpc", **extra: str
) -> dict[str, str]:
    """Environment for an app under `opentelemetry-instrument`: traces only, over OTLP to
    ``endpoint`` (``http://127.0.0.1:PORT``); ``extra`` adds or overrides variables."""
    return {
        **os.environ,
        "OTEL_SERVICE_NAME": service,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        **extra,
    }


def run_instrumented_app(source: str, tmp_path, service: str, processor, *args: str) -> None:
    """``source`` written to an app file and run under `opentelemetry-instrument` with ``args``,
    exporting over OTLP/gRPC to the in-process ``processor``; only llm-margin's own
    instrumentation loaded (no httpx attempt spans). Fails on a non-zero exit."""
    app = tmp_path / "app.py"
    app.write_text(source)
    env = launcher_env(
        service,
        f"http://127.0.0.1:{processor.grpc.port}",
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="openai,anthropic,httpx,httpx2",
    )
    command = [bin_path("opentelemetry-instrument"), sys.executable, str(app), *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]


def bin_path(name: str) -> str:
    """A console script installed beside the running Python (the project's venv)."""
    return os.path.join(os.path.dirname(sys.executable), name)


def started_processor(tmp_path, price_overlay: str | None = None):
    """An in-process processor on free loopback ports, its store under ``tmp_path``, priced
    with ``price_overlay`` (a file path) if given; the caller stops it."""
    from llm_margin.processor.config import ServeConfig
    from llm_margin.processor.server import Processor

    config = ServeConfig(
        data_dir=str(tmp_path / "data"),
        otlp_grpc_port=free_port(),
        otlp_http_port=free_port(),
        price_overlay=price_overlay,
    ).validate()
    processor = Processor(config)
    processor.start()
    return processor


def llm_margin_cli(*args: str) -> subprocess.CompletedProcess:
    """The installed ``llm-margin`` command run with ``args``, its output captured."""
    return subprocess.run(
        [bin_path("llm-margin"), *args], capture_output=True, text=True, timeout=120
    )


@contextlib.contextmanager
def store_with_billing(tmp_path, billing_yaml: str) -> Iterator:
    """An embedded store under ``tmp_path`` with the plans and customers of ``billing_yaml``."""
    from llm_margin.processor.billing import parse_billing, store_billing
    from llm_margin.processor.storage import Store

    store = Store.open(data_dir=str(tmp_path / "data"))
    try:
        store_billing(store, *parse_billing(billing_yaml))
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def budget_processor_with(tmp_path, billing_yaml: str) -> Iterator:
    """An in-process processor on free loopback ports whose billing file is ``billing_yaml``,
    yielded once its first budget round is done (decisions are 503 before); stopped on exit."""
    from llm_margin.processor.config import ServeConfig
    from llm_margin.processor.server import Processor

    billing = tmp_path / "billing.yaml"
    billing.write_text(billing_yaml)
    config = ServeConfig(
        data_dir=str(tmp_path / "data"),
        otlp_grpc_port=free_port(),
        otlp_http_port=free_port(),
        billing_file=str(billing),
    ).validate()
    proc = Processor(config)
    proc.start()
    try:
        wait_until(lambda: proc.budgets.decision("-")["evaluated_at"], message="evaluated")
        yield proc
    finally:
        proc.stop()


@contextlib.contextmanager
def running_serve(data_dir: str, *options: str) -> Iterator[subprocess.Popen]:
    """`llm-margin serve --data-dir DATA_DIR OPTIONS...` as a real subprocess, ready (its first
    line printed) when entered; SIGTERM (then SIGKILL) on exit."""
    process = subprocess.Popen(
        [bin_path("llm-margin"), "serve", "--data-dir", data_dir, *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "OTLP gRPC" in line, line + (process.stdout.read() if process.poll() else "")
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def serve_process(tmp_path) -> Iterator[dict]:
    """`llm-margin serve` as a real subprocess; yields its ports and data dir; SIGTERM after."""
    data_dir = tmp_path / "serve-data"
    grpc_port, http_port = free_port(), free_port()
    billing = os.path.join(os.path.dirname(__file__), "..", "demo", "billing.yaml")
    options = ("--otlp-grpc-port", str(grpc_port), "--otlp-http-port", str(http_port))
    with running_serve(
        str(data_dir), *options, "--billing-file", os.path.abspath(billing)
    ) as process:
        yield {
            "process": process,
            "data_dir": str(data_dir),
            "grpc_port": grpc_port,
            "http_port": http_port,
            "http_url": f"http://127.0.0.1:{http_port}",
        }


class WebhookReceiver:
    """A local webhook endpoint (POST, JSON bodies kept in ``bodies``) on ``port``."""

    def __init__(
        self, port: int | None = None, refuse: Callable[[dict], int] | None = None
    ) -> None:
        """``refuse``: body -> an error status to answer it with (0: take it)."""
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.bodies: list[dict] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = refuse(body) if refuse else 0
                if status:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                bodies.append(body)
                reply_ok(self)

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port or free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
