"""Child app of test_interop.py: a real SDK and real instrumentations, spans exported with a
real OTLP exporter to the processor under test. Prints the simulator's usage (the oracle's
input) and the spans it made as JSON.

Arguments: OTLP gRPC port, sdk (openai | anthropic), base URL, comma-separated
"module:Instrumentor" list. Env SIM_FAULT: the simulator's x-sim-fault directive."""

import importlib
import json
import os
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

port, sdk, base_url, instrumentors = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
provider = TracerProvider()
provider.add_span_processor(
    BatchSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True))
)
mem = InMemorySpanExporter()
provider.add_span_processor(SimpleSpanProcessor(mem))
trace.set_tracer_provider(provider)
for target in filter(None, instrumentors):
    module, cls = target.split(":")
    getattr(importlib.import_module(module), cls)().instrument(tracer_provider=provider)
if sdk == "openai":
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=2)
    r = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "price me once " * 5}],
        extra_headers={"x-sim-fault": os.environ.get("SIM_FAULT", "slow:0")},
    )
    usage = {
        "input_tokens": r.usage.prompt_tokens,
        "output_tokens": r.usage.completion_tokens,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
    }
    model = r.model
else:
    import anthropic

    client = anthropic.Anthropic(base_url=base_url, api_key="sk-test", max_retries=2)
    r = client.messages.create(
        model="claude-3-5-haiku-20241022",
        max_tokens=200,
        messages=[{"role": "user", "content": "price me once " * 5}],
        extra_headers={
            "x-sim-cache-read": "640",
            "x-sim-cache-write": "320",
            "x-sim-fault": os.environ.get("SIM_FAULT", "slow:0"),
        },
    )
    u = r.usage
    # Anthropic reports input WITHOUT cache tokens; the canonical total includes them.
    usage = {
        "input_tokens": u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_tokens": u.cache_read_input_tokens,
        "cache_write_tokens": u.cache_creation_input_tokens,
    }
    model = r.model
provider.shutdown()
print(
    json.dumps(
        {
            "model": model,
            "usage": usage,
            "spans": [
                [
                    s.name,
                    s.instrumentation_scope.name,
                    format(s.context.span_id, "016x"),
                    format(s.parent.span_id, "016x") if s.parent else "",
                ]
                for s in mem.get_finished_spans()
            ],
        }
    )
)
