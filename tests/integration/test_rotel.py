"""The real Rotel collector (from the `rotel` wheel), launched by collector-config/rotel/run-rotel.sh,
between an app and the processor: an app under the real `opentelemetry-instrument` launcher makes
one OpenAI call (simulator) inside a task and exports OTLP/HTTP to Rotel; Rotel exports OTLP/gRPC,
with the processor's bearer token, to the processor; the call lands in llm_calls, attributed."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import bin_path, free_port, launcher_env, wait_until

ROOT = Path(__file__).resolve().parents[2]
RUN_ROTEL = ROOT / "collector-config" / "rotel" / "run-rotel.sh"
TOKEN = "rotel-test-token-0123456789"

try:
    import rotel  # noqa: F401

    HAVE_ROTEL = True
except ImportError:
    HAVE_ROTEL = False

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_ROTEL, reason="pip install rotel (in the dev extra)"),
]

APP = textwrap.dedent(
    """
    import sys

    import openai
    from opentelemetry import context
    from opentelemetry.baggage.propagation import W3CBaggagePropagator

    import llm_margin

    # What the WSGI/ASGI server instrumentation does with the gateway's header.
    context.attach(W3CBaggagePropagator().extract({"baggage": sys.argv[2]}))
    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test", max_retries=0)
    with llm_margin.task("rotel-check"):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
        )
    """
)


@pytest.fixture
def provider_sim():
    try:
        from llm_margin.simulator import start_simulator
    except ImportError:  # the simulator package is built concurrently; its stand-in meanwhile
        from instr_fixtures import start_any_simulator as start_simulator
    sim = start_simulator()
    try:
        yield sim
    finally:
        sim.stop()


def start_processor(data_dir: str, grpc_port: int = 0, http_port: int = 0):
    """An in-process processor that requires a bearer token on its receivers."""
    from llm_margin.processor.config import ServeConfig
    from llm_margin.processor.server import Processor

    config = ServeConfig(
        data_dir=data_dir,
        otlp_grpc_port=grpc_port or free_port(),
        otlp_http_port=http_port or free_port(),
        auth_token=TOKEN,
    ).validate()
    proc = Processor(config)
    proc.start()
    return proc


@pytest.fixture
def authed_processor(tmp_path):
    proc = start_processor(str(tmp_path / "data"))
    try:
        yield proc
    finally:
        proc.stop()


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def running_rotel(tmp_path: Path, exporter_grpc_port: int, **extra_env: str) -> Iterator[dict]:
    """Rotel via collector-config/rotel/run-rotel.sh on free loopback ports; SIGTERM after."""
    grpc_port, http_port = free_port(), free_port()
    log_path = tmp_path / "rotel.log"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "ROTEL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc_port}",
        "ROTEL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http_port}",
        "ROTEL_OTLP_EXPORTER_ENDPOINT": f"http://127.0.0.1:{exporter_grpc_port}",
        "ROTEL_TRACES_BATCH_TIMEOUT": "100ms",
        "ROTEL_PID_FILE": str(tmp_path / "rotel.pid"),
        "ROTEL_LOG_FILE": str(tmp_path / "rotel-daemon.log"),
        "LLM_MARGIN_AUTH_TOKEN": TOKEN,
        **extra_env,
    }
    env.pop("ROTEL_OTLP_EXPORTER_CUSTOM_HEADERS", None)
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        ["bash", str(RUN_ROTEL)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"rotel exited {process.returncode}: {log_path.read_text()}")
            return _accepting(grpc_port) and _accepting(http_port)

        wait_until(up, timeout=20, message="rotel receivers")
        yield {"grpc_port": grpc_port, "http_port": http_port, "log": log_path}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


@pytest.fixture
def rotel_collector(authed_processor, tmp_path) -> Iterator[dict]:
    with running_rotel(tmp_path, authed_processor.grpc.port) as rotel:
        yield rotel


def run_instrumented_app(tmp_path: Path, rotel_http_port: int, sim, baggage: str) -> None:
    """The app under the real launcher, OTLP/HTTP to Rotel; returns once it has exited (its
    spans flushed to Rotel)."""
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = launcher_env(
        "rotel-check",
        f"http://127.0.0.1:{rotel_http_port}",
        "http/protobuf",
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    result = subprocess.run(
        [
            bin_path("opentelemetry-instrument"),
            sys.executable,
            str(app),
            sim.openai_base_url,
            baggage,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def our_calls(proc) -> list[dict]:
    return proc.store.query(
        "SELECT customer_id, workspace_id, plan, request_model, task_id, source, priced, "
        "cost_usd FROM llm_calls FINAL WHERE source = 'llm_margin'"
    ).dicts()


def test_spans_flow_app_to_rotel_to_processor(
    authed_processor, rotel_collector, provider_sim, tmp_path
):
    run_instrumented_app(
        tmp_path,
        rotel_collector["http_port"],
        provider_sim,
        "customer.id=initech,workspace.id=ws_3,plan=pro",
    )
    found = wait_until(
        lambda: our_calls(authed_processor), timeout=30, message="the call in llm_calls (via Rotel)"
    )
    assert len(found) == 1, found
    call = found[0]
    assert (call["customer_id"], call["workspace_id"], call["plan"]) == ("initech", "ws_3", "pro")
    assert call["request_model"] == "gpt-4o-mini" and call["task_id"]
    assert call["priced"] and call["cost_usd"] > 0
    # The task's root span came through the collector as well.
    tasks = wait_until(
        lambda: (
            authed_processor.store.query(
                "SELECT customer_id FROM llm_task_spans FINAL WHERE task_id = {t:String}",
                {"t": call["task_id"]},
            ).rows
        ),
        timeout=20,
        message="the task span",
    )
    assert tasks == [("initech",)]


def test_rotel_holds_spans_while_the_processor_is_down(provider_sim, tmp_path):
    """At least once through the collector: the app exports while no processor listens; Rotel
    retries, and the call lands once the processor comes up on that port."""
    grpc_port, http_port = free_port(), free_port()
    with running_rotel(
        tmp_path,
        grpc_port,
        ROTEL_OTLP_EXPORTER_RETRY_INITIAL_BACKOFF="200ms",
        ROTEL_OTLP_EXPORTER_RETRY_MAX_BACKOFF="1s",
    ) as rotel:
        run_instrumented_app(
            tmp_path, rotel["http_port"], provider_sim, "customer.id=umbrella,plan=starter"
        )
        time.sleep(1.0)  # Rotel has tried and failed at least once by now
        assert not _accepting(grpc_port)
        proc = start_processor(str(tmp_path / "late-data"), grpc_port, http_port)
        try:
            found = wait_until(lambda: our_calls(proc), timeout=30, message="the retried call")
            time.sleep(0.5)
            found = our_calls(proc)
            assert [(c["customer_id"], c["plan"]) for c in found] == [("umbrella", "starter")]
        finally:
            proc.stop()
