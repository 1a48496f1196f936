"""Fixtures for the instrumentation tests (test_instr_*.py): an SDK TracerProvider with an
in-memory exporter, our instrumentors on it, and helpers to read spans.

Import the fixtures you use into the test module: ``from instr_fixtures import tracing``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from llm_margin import attributes as A
from llm_margin.config import reset_config
from llm_margin.instrumentation import _common
from opentelemetry import baggage, context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


@dataclass
class Tracing:
    provider: TracerProvider
    exporter: InMemorySpanExporter

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def calls(self, include_provisional: bool = False) -> list[ReadableSpan]:
        """Our LLM call spans, in end order."""
        return [
            s
            for s in self.spans()
            if s.attributes.get(A.INSTRUMENTATION) == "llm_margin"
            and A.CALL_ID in s.attributes
            and (include_provisional or not s.attributes.get(A.PROVISIONAL))
        ]

    def provisional(self) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.attributes.get(A.PROVISIONAL)]

    def tasks(self) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.attributes.get(A.IS_TASK)]

    def clear(self) -> None:
        self.exporter.clear()


@pytest.fixture
def tracing() -> Iterator[Tracing]:
    """The llm-margin instrumentors on an in-memory TracerProvider; undone afterwards."""
    from llm_margin.instrumentation.anthropic import AnthropicInstrumentor
    from llm_margin.instrumentation.google_genai import GoogleGenAIInstrumentor
    from llm_margin.instrumentation.openai import OpenAIInstrumentor

    reset_config()
    _common.reset_server_cache()
    EXPORTER.clear()
    OpenAIInstrumentor().instrument(tracer_provider=PROVIDER)
    AnthropicInstrumentor().instrument(tracer_provider=PROVIDER)
    GoogleGenAIInstrumentor().instrument(tracer_provider=PROVIDER)
    try:
        yield Tracing(PROVIDER, EXPORTER)
    finally:
        OpenAIInstrumentor().uninstrument()
        AnthropicInstrumentor().uninstrument()
        GoogleGenAIInstrumentor().uninstrument()
        EXPORTER.clear()
        reset_config()
        _common.reset_server_cache()


@pytest.fixture
def httpx2_instrumented(tracing: Tracing) -> Iterator[Tracing]:
    """Also the contrib HTTPX2ClientInstrumentor (one span per HTTP attempt, injects headers
    with the global propagator: tracecontext + baggage)."""
    from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor

    HTTPX2ClientInstrumentor().instrument(tracer_provider=PROVIDER)
    try:
        yield tracing
    finally:
        HTTPX2ClientInstrumentor().uninstrument()


@pytest.fixture
def sim():
    """The provider simulator (llm_margin.simulator; a stand-in while it is not there)."""
    simulator = start_any_simulator()
    try:
        yield simulator
    finally:
        simulator.stop()


class customer_baggage:  # noqa: N801 - used like a function in `with`
    """Attach baggage as a gateway would send it, for the duration of a ``with`` block."""

    def __init__(self, **entries: str) -> None:
        self.entries = {k.replace("__", "."): v for k, v in entries.items()}
        self.token = None

    def __enter__(self):
        ctx = context.get_current()
        for key, value in self.entries.items():
            ctx = baggage.set_baggage(key, value, ctx)
        self.token = context.attach(ctx)
        return self

    def __exit__(self, *exc):
        context.detach(self.token)
        return False


SECRET_CUSTOMER = "cust-SECRET-7f3a"


# --- a stand-in for llm_margin.simulator ---------------------------------------------------------
# Used only while the real simulator (built concurrently) is not importable; same API subset:
# start/stop/clear, openai_base_url, anthropic_base_url, requests (RecordedRequest).
import json as _json  # noqa: E402
import math as _math  # noqa: E402
import socket as _socket  # noqa: E402
import threading as _threading  # noqa: E402
import time as _time  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from typing import Any, NamedTuple  # noqa: E402


class RecordedRequest(NamedTuple):
    method: str
    path: str
    headers: dict
    body: bytes
    json: Any


def _chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_chars(value.get(k)) for k in ("content", "text", "input", "system"))
    if isinstance(value, list):
        return sum(_chars(v) for v in value)
    return 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        try:
            data = _json.loads(body)
        except ValueError:
            data = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.owner.requests.append(RecordedRequest("POST", self.path, headers, body, data))
        fault = headers.get("x-sim-fault", "")
        retry = int(headers.get("x-stainless-retry-count", "0") or 0)
        if fault.startswith("slow:"):
            _time.sleep(int(fault[5:]) / 1000)
        if fault.startswith("429"):
            n = int(fault.split(":")[1]) if ":" in fault else 99
            if retry < n:
                return self._json(429, {"error": {"message": "rate limited", "type": "rate_limit"}})
        if fault == "500":
            return self._json(500, {"error": {"message": "boom", "type": "server_error"}})
        cut = int(fault.split(":")[1]) if fault.startswith("stream-cut:") else None
        data = data or {}
        out = int(headers.get("x-sim-output-tokens", "5"))
        if self.path.endswith("/chat/completions"):
            return self._chat(data, headers, fault, out, cut)
        if self.path.endswith("/responses"):
            return self._responses(data, headers, fault, out, cut)
        if self.path.endswith("/embeddings"):
            n = _math.ceil(_chars(data.get("input")) / 4)
            return self._json(
                200,
                {
                    "object": "list",
                    "model": data.get("model"),
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                    "usage": {"prompt_tokens": n, "total_tokens": n},
                },
            )
        if self.path.endswith("/messages"):
            return self._messages(data, headers, fault, out, cut)
        return self._json(404, {"error": {"message": "no route"}})

    # -- helpers
    def _json(self, status, obj):
        raw = _json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _sse(self, events, cut):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for i, (name, obj) in enumerate(events):
            if cut is not None and i >= cut:
                self.wfile.flush()
                self.connection.shutdown(_socket.SHUT_RDWR)
                self.close_connection = True
                return
            text = (
                (f"event: {name}\n" if name else "")
                + "data: "
                + (obj if isinstance(obj, str) else _json.dumps(obj))
                + "\n\n"
            )
            raw = text.encode()
            self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _text(self, data, fault, wants_json):
        if fault == "invalid-json":
            return "this is {not json"
        return '{"answer": "ok"}' if wants_json else "Hello from the stand-in simulator"

    def _chat(self, data, headers, fault, out, cut):
        prompt = _math.ceil(_chars(data.get("messages")) / 4) or 1
        cached = int(headers.get("x-sim-cache-read", "0"))
        reasoning = int(headers.get("x-sim-reasoning", "0"))
        fmt = (data.get("response_format") or {}).get("type")
        text = self._text(data, fault, fmt in ("json_object", "json_schema"))
        usage = {
            "prompt_tokens": prompt + cached,
            "completion_tokens": out,
            "total_tokens": prompt + cached + out,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }
        model = data.get("model")
        message: dict = {"role": "assistant", "content": text}
        if data.get("tools"):
            args = "{broken" if fault == "invalid-json" else '{"x": 1}'
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": args},
                    }
                ],
            }
        if not data.get("stream"):
            return self._json(
                200,
                {
                    "id": "chatcmpl-sim",
                    "object": "chat.completion",
                    "created": 1,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": usage,
                },
            )
        base = {
            "id": "chatcmpl-sim",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
        }
        events = [
            (
                None,
                {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
            )
        ]
        for piece in [text[i : i + 4] for i in range(0, len(text), 4)]:
            events.append((None, {**base, "choices": [{"index": 0, "delta": {"content": piece}}]}))
        events.append(
            (None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        )
        if (data.get("stream_options") or {}).get("include_usage"):
            events.append((None, {**base, "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        return self._sse(events, cut)

    def _responses(self, data, headers, fault, out, cut):
        prompt = _math.ceil(_chars(data.get("input")) / 4) or 1
        fmt = ((data.get("text") or {}).get("format") or {}).get("type")
        text = self._text(data, fault, fmt in ("json_object", "json_schema"))
        response = {
            "id": "resp_sim",
            "object": "response",
            "created_at": 1,
            "model": data.get("model"),
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "id": "msg_1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "usage": {
                "input_tokens": prompt,
                "output_tokens": out,
                "total_tokens": prompt + out,
                "input_tokens_details": {
                    "cached_tokens": int(headers.get("x-sim-cache-read", "0"))
                },
                "output_tokens_details": {
                    "reasoning_tokens": int(headers.get("x-sim-reasoning", "0"))
                },
            },
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }
        if not data.get("stream"):
            return self._json(200, response)
        created = {**response, "status": "in_progress", "output": [], "usage": None}
        item = {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        events = [
            (
                "response.created",
                {"type": "response.created", "sequence_number": 0, "response": created},
            ),
            (
                "response.output_item.added",
                {
                    "type": "response.output_item.added",
                    "sequence_number": 0,
                    "output_index": 0,
                    "item": item,
                },
            ),
            (
                "response.content_part.added",
                {
                    "type": "response.content_part.added",
                    "sequence_number": 0,
                    "item_id": "msg_1",
                    "output_index": 0,
                    "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []},
                },
            ),
        ]
        for i, piece in enumerate([text[i : i + 4] for i in range(0, len(text), 4)]):
            events.append(
                (
                    "response.output_text.delta",
                    {
                        "type": "response.output_text.delta",
                        "sequence_number": i + 1,
                        "item_id": "msg_1",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": piece,
                        "logprobs": [],
                    },
                )
            )
        events.append(
            (
                "response.completed",
                {"type": "response.completed", "sequence_number": 99, "response": response},
            )
        )
        return self._sse(events, cut)

    def _messages(self, data, headers, fault, out, cut):
        prompt = _math.ceil((_chars(data.get("messages")) + _chars(data.get("system"))) / 4) or 1
        read = int(headers.get("x-sim-cache-read", "0"))
        w5 = int(headers.get("x-sim-cache-write", "0"))
        w1 = int(headers.get("x-sim-cache-write-1h", "0"))
        wants_json = bool((data.get("output_config") or {}).get("format"))
        text = self._text(data, fault, wants_json)
        usage = {
            "input_tokens": prompt,
            "output_tokens": out,
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": w5 + w1,
            "cache_creation": {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1},
        }
        message = {
            "id": "msg_sim",
            "type": "message",
            "role": "assistant",
            "model": data.get("model"),
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if not data.get("stream"):
            return self._json(200, message)
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {**usage, "output_tokens": 1},
        }
        events = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
        ]
        for piece in [text[i : i + 4] for i in range(0, len(text), 4)]:
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
            )
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": out},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return self._sse(events, cut)


class StandInSimulator:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.owner = self
        port = self._server.server_address[1]
        self.openai_base_url = f"http://127.0.0.1:{port}/v1"
        self.anthropic_base_url = f"http://127.0.0.1:{port}"
        self._thread = _threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def clear(self) -> None:
        self.requests.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_any_simulator():
    """The real simulator when it is importable, else the stand-in above."""
    try:
        from llm_margin.simulator import start_simulator
    except ImportError:
        return StandInSimulator()
    return start_simulator()
