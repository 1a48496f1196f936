"""Interop: spans of the instrumentations teams already run, priced right and once.

Each case runs a child process (interop_app.py) with the real openai 3.x / anthropic 2.x SDK
against the simulator, instrumented by the real packages, exporting with a real OTLP/gRPC
exporter to the processor. The oracle is genai_prices.calc_price on the simulator's usage as
the SDK returned it (Anthropic's input made total by adding its cache tokens).

opentelemetry-instrumentation-openai-v2 2.4b0 cannot be imported with openai 3.x (it imports
`httpx`, which openai 3.x replaced by httpx2): its attribute shapes (old and new conventions)
are covered by the recorded-attribute table in tests/unit/test_normalize.py instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timezone
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest

pytestmark = pytest.mark.integration

APP = Path(__file__).with_name("interop_app.py")
OURS_OPENAI = "llm_margin.instrumentation.openai:OpenAIInstrumentor"
OURS_ANTHROPIC = "llm_margin.instrumentation.anthropic:AnthropicInstrumentor"
GENAI_OPENAI = "opentelemetry.instrumentation.genai.openai:OpenAIInstrumentor"
GENAI_ANTHROPIC = "opentelemetry.instrumentation.genai.anthropic:AnthropicInstrumentor"
LLMETRY_OPENAI = "opentelemetry.instrumentation.openai:OpenAIInstrumentor"
LLMETRY_ANTHROPIC = "opentelemetry.instrumentation.anthropic:AnthropicInstrumentor"
HTTPX2 = "opentelemetry.instrumentation.httpx:HTTPX2ClientInstrumentor"

# (id, sdk, instrumentors, anthropic native spans on, simulator fault, expected sdk_retries,
#  expected source)
CASES = [
    (
        "genai-openai",
        "openai",
        [GENAI_OPENAI],
        False,
        "",
        0,
        "opentelemetry.instrumentation.genai.openai",
    ),
    # httpx2 spans under OpenLLMetry's span: 429 then 200 = one call with one SDK retry.
    (
        "openllmetry-openai+httpx2",
        "openai",
        [LLMETRY_OPENAI, HTTPX2],
        False,
        "429:1",
        1,
        "opentelemetry.instrumentation.openai.v1",
    ),
    (
        "openllmetry-anthropic",
        "anthropic",
        [LLMETRY_ANTHROPIC],
        False,
        "",
        0,
        "opentelemetry.instrumentation.anthropic",
    ),
    (
        "genai-anthropic",
        "anthropic",
        [GENAI_ANTHROPIC],
        False,
        "",
        0,
        "opentelemetry.instrumentation.genai.anthropic",
    ),
    # anthropic 2.x's own spans, its resend count as the retry count.
    ("anthropic-native", "anthropic", [], True, "429:1", 1, "com.anthropic.sdk.python"),
    (
        "ours+genai+openllmetry-openai",
        "openai",
        [OURS_OPENAI, GENAI_OPENAI, LLMETRY_OPENAI],
        False,
        "",
        0,
        "llm_margin",
    ),
    (
        "ours+native+genai+openllmetry-anthropic",
        "anthropic",
        [OURS_ANTHROPIC, GENAI_ANTHROPIC, LLMETRY_ANTHROPIC],
        True,
        "",
        0,
        "llm_margin",
    ),
]


def run_app(processor, simulator, sdk: str, instrumentors: list[str], native: bool, fault: str):
    base_url = simulator.openai_base_url if sdk == "openai" else simulator.anthropic_base_url
    env = {
        **os.environ,
        "SIM_FAULT": fault or "slow:0",
        "ANTHROPIC_OPEN_TELEMETRY": "true" if native else "false",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    env.pop("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", None)
    done = subprocess.run(
        [
            sys.executable,
            str(APP),
            str(processor.grpc.port),
            sdk,
            base_url,
            ",".join(instrumentors),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("sdk", "instrumentors", "native", "fault", "retries", "source"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_instrumentation_spans_are_priced_once(
    processor, simulator, sdk, instrumentors, native, fault, retries, source
):
    out = run_app(processor, simulator, sdk, instrumentors, native, fault)
    llm_spans = [name for name, *_ in out["spans"] if not name.startswith(("POST", "GET"))]
    # Each instrumentation made its span (anthropic's own one unless ours suppressed it).
    assert len(llm_spans) >= len(instrumentors) - (HTTPX2 in instrumentors), out
    if native and OURS_ANTHROPIC not in instrumentors:
        assert any(name == "anthropic.messages.create" for name in llm_spans), out
    rows = processor.store.query(
        "SELECT provider, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
        "cost_usd, priced, price_version, sdk_retries, customer_id, source, ts "
        "FROM llm_calls FINAL"
    ).dicts()
    assert len(rows) == 1, rows  # nested spans of one request: one row
    row = rows[0]
    usage = out["usage"]
    assert {k: row[k] for k in usage} == usage
    oracle = genai_prices.calc_price(
        genai_prices.Usage(**usage),
        out["model"],
        provider_id=sdk,
        genai_request_timestamp=row["ts"].replace(tzinfo=timezone.utc),
    ).total_price
    assert row["priced"] and row["cost_usd"] == oracle.quantize(Decimal("1e-18")) > 0
    assert row["price_version"].startswith("genai-prices-")
    assert (row["provider"], row["sdk_retries"], row["source"]) == (sdk, retries, source)
    assert row["customer_id"] == "(unattributed)"  # no baggage: kept, never dropped
    tasks = processor.store.query("SELECT calls FROM llm_tasks FINAL").rows
    assert tasks == [(1,)]
