"""The real `opentelemetry-instrument` launcher loads our entry point: a tiny app in a subprocess
makes one OpenAI call inside a task, with baggage extracted the way server instrumentation
would; the console exporter prints a call span carrying the baggage attributes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from instr_fixtures import sim  # noqa: F401

APP = textwrap.dedent(
    """
    import sys

    import openai
    from opentelemetry import context
    from opentelemetry.baggage.propagation import W3CBaggagePropagator

    import llm_margin

    # what the WSGI/ASGI instrumentation does with the gateway's header
    context.attach(W3CBaggagePropagator().extract({"baggage": "customer.id=acme,plan=pro,secret=x"}))
    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test")
    with llm_margin.task("launcher-check"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    """
)


def _spans(stdout: str) -> list[dict]:
    """Console exporter output: pretty-printed JSON objects one after another."""
    decoder = json.JSONDecoder()
    spans, index = [], 0
    while True:
        start = stdout.find("{", index)
        if start < 0:
            return spans
        try:
            obj, end = decoder.raw_decode(stdout, start)
        except ValueError:
            index = start + 1
            continue
        if isinstance(obj, dict) and "attributes" in obj:
            spans.append(obj)
        index = end


def _run_under_launcher(source: str, tmp_path, base_url: str) -> tuple[list[dict], str]:
    """Our spans (console exporter) from ``source`` run by opentelemetry-instrument, and its
    stdout for failure messages."""
    app = tmp_path / "app.py"
    app.write_text(source)
    launcher = os.path.join(os.path.dirname(sys.executable), "opentelemetry-instrument")
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "launcher-check",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    result = subprocess.run(
        [launcher, sys.executable, str(app), base_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    spans = _spans(result.stdout)
    ours = [s for s in spans if s["attributes"].get("llm_margin.instrumentation") == "llm_margin"]
    return ours, result.stdout


@pytest.mark.integration
def test_entry_point_loads_under_the_launcher(sim, tmp_path):  # noqa: F811
    ours, stdout = _run_under_launcher(APP, tmp_path, sim.openai_base_url)
    calls = [s for s in ours if "llm_margin.call_id" in s["attributes"]]
    tasks = [s for s in ours if s["attributes"].get("llm_margin.task.root")]
    assert len(calls) == 1 and len(tasks) == 1, stdout[-3000:]
    attrs = calls[0]["attributes"]
    assert attrs["customer.id"] == "acme" and attrs["plan"] == "pro"
    assert "secret" not in attrs
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["task.id"] == tasks[0]["attributes"]["task.id"]
    assert tasks[0]["attributes"]["customer.id"] == "acme"
    # and nothing of the customer went to the provider, even with httpx2 instrumentation loaded
    for request in sim.requests:
        assert "baggage" not in {k.lower() for k in request.headers}


THREAD_APP = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor

    import openai
    from opentelemetry import context
    from opentelemetry.baggage.propagation import W3CBaggagePropagator

    import llm_margin

    context.attach(W3CBaggagePropagator().extract({"baggage": "customer.id=acme,plan=pro"}))
    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test")

    def ask():
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    with llm_margin.task("fan-out"), ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(ask) for _ in range(2)]:
            future.result()
    """
)


@pytest.mark.integration
def test_calls_in_thread_pool_workers_keep_the_customer_and_the_task(sim, tmp_path):  # noqa: F811
    """A plain ThreadPoolExecutor does not carry contextvars into its workers. Under the
    launcher, the threading instrumentation (installed with llm-margin) carries the OpenTelemetry
    context, so the worker's call has the customer's baggage and the task's id: it is the
    customer's, in its task, not '(unattributed)' in a task of its own."""
    ours, stdout = _run_under_launcher(THREAD_APP, tmp_path, sim.openai_base_url)
    calls = [s for s in ours if "llm_margin.call_id" in s["attributes"]]
    tasks = [s for s in ours if s["attributes"].get("llm_margin.task.root")]
    assert len(calls) == 2 and len(tasks) == 1, stdout[-3000:]
    for call in calls:
        assert call["attributes"].get("customer.id") == "acme"
        assert call["attributes"].get("task.id") == tasks[0]["attributes"]["task.id"]
