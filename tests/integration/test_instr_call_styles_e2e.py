"""End to end through `opentelemetry-instrument` and the processor: the stored rows of the call
styles and task shapes a real app uses (raw responses, a task on a generator, nested tasks)."""

from __future__ import annotations

import textwrap

import pytest
from conftest import run_instrumented_app, wait_until
from instr_fixtures import sim  # noqa: F401

pytestmark = pytest.mark.integration

APP = textwrap.dedent(
    """
    import sys

    import llm_margin
    import openai
    from opentelemetry import trace

    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test", max_retries=0)
    messages = [{"role": "user", "content": "Summarize the quarterly report."}]

    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, extra_headers={"x-sim-output-tokens": "41"}
    )
    raw.parse()

    @llm_margin.task("digest")
    def digest():
        yield client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    list(digest())

    with llm_margin.task("outer"):
        try:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, extra_headers={"x-sim-fault": "500"}
            )
        except openai.InternalServerError:
            pass
        with llm_margin.task("inner"):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    trace.get_tracer_provider().force_flush()
    """
)


def test_call_styles_and_task_shapes_stored_right(processor, sim, tmp_path):  # noqa: F811
    run_instrumented_app(APP, tmp_path, "call-styles", processor, sim.openai_base_url)

    def calls() -> list[dict]:
        rows = processor.store.query(
            "SELECT task_id, output_tokens, usage_source, status, attempt, attempt_kind, cost_usd "
            "FROM llm_calls FINAL WHERE source = 'llm_margin' ORDER BY ts"
        ).dicts()
        return rows if len(rows) == 4 else []

    raw, in_generator, failed, retried = wait_until(calls, message="4 calls stored")
    assert raw["usage_source"] == "provider" and raw["output_tokens"] == 41
    assert in_generator["task_id"] and in_generator["usage_source"] == "provider"
    assert in_generator["task_id"] != failed["task_id"]
    assert failed["task_id"] == retried["task_id"]
    assert (failed["attempt"], failed["attempt_kind"], failed["status"]) == (1, "first", "error")
    assert (retried["attempt"], retried["attempt_kind"]) == (2, "retry")

    def task() -> list[dict]:
        return processor.store.query(
            "SELECT outcome, calls, retries FROM llm_tasks FINAL WHERE task_id = {t:String}",
            parameters={"t": retried["task_id"]},
        ).dicts()

    (row,) = wait_until(task, message="the nested task linked")
    assert (row["outcome"], row["calls"], row["retries"]) == ("success", 2, 1)
