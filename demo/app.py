"""The demo SaaS app: a small WSGI service whose features call the OpenAI SDK.

It knows nothing about customers: the gateway in front of it sends them as W3C baggage, the
OpenTelemetry WSGI middleware puts the baggage into the request context, and llm-margin's
instrumentation (loaded by `opentelemetry-instrument`) stamps it on every LLM span. The only
llm-margin code here is `llm_margin.task`, which marks one unit of work (retries and fallbacks
included) so its cost and outcome are counted together.

Run: opentelemetry-instrument python -m llm_margin.demo.app --port 8080
Env: OPENAI_BASE_URL, OPENAI_API_KEY (the demo points them at the local simulator).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import llm_margin
import openai
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

client = openai.OpenAI(max_retries=2)

PRIMARY_MODEL = "gpt-4o"
CHEAP_MODEL = "gpt-4o-mini"


def _fault_headers(body: dict[str, Any]) -> dict[str, str]:
    """The demo asks the simulator for failures on purpose (429s, 500s, invalid JSON)."""
    fault = body.get("simulate")
    return {"x-sim-fault": str(fault)} if fault else {}


def summarize(body: dict[str, Any]) -> dict[str, Any]:
    """One call; a customer that sends its whole history makes it expensive."""
    document = body.get("text", "Quarterly report.") + " history" * int(
        body.get("history_words", 0)
    )
    with llm_margin.task("summarize"):
        response = client.chat.completions.create(
            model=body.get("model", PRIMARY_MODEL),
            messages=[{"role": "user", "content": f"Summarize: {document}"}],
            max_tokens=int(body.get("max_tokens", 120)),
            extra_headers=_fault_headers(body),
        )
    return {"summary": response.choices[0].message.content}


def extract(body: dict[str, Any]) -> dict[str, Any]:
    """Structured output with an app-level re-ask when the JSON does not parse."""
    faults = list(body.get("simulate_attempts", []))
    with llm_margin.task("extract") as task:
        for attempt in range(3):
            fault = faults[attempt] if attempt < len(faults) else None
            response = client.chat.completions.create(
                model=CHEAP_MODEL,
                messages=[{"role": "user", "content": "Extract the parties as JSON."}],
                response_format={"type": "json_object"},
                extra_headers={"x-sim-fault": fault} if fault else {},
            )
            try:
                return {"fields": json.loads(response.choices[0].message.content or "")}
            except ValueError:
                continue
        task.set_outcome("failure")
    return {"error": "model kept returning invalid JSON"}


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """Primary model first; on a provider error, fall back to a cheaper model."""
    with llm_margin.task("answer"):
        try:
            response = client.chat.completions.create(
                model=PRIMARY_MODEL,
                messages=[{"role": "user", "content": body.get("question", "What is our churn?")}],
                extra_headers=_fault_headers(body),
            )
        except openai.APIError:
            response = client.chat.completions.create(
                model=CHEAP_MODEL,
                messages=[{"role": "user", "content": body.get("question", "What is our churn?")}],
            )
    return {"answer": response.choices[0].message.content}


def chat(body: dict[str, Any]) -> dict[str, Any]:
    """A streamed reply; the app does not ask for usage, llm-margin still gets it."""
    parts: list[str] = []
    with llm_margin.task("chat"):
        stream = client.chat.completions.create(
            model=CHEAP_MODEL,
            messages=[{"role": "user", "content": body.get("message", "Hello!")}],
            stream=True,
            extra_headers=_fault_headers(body),
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
    return {"reply": "".join(parts)}


ROUTES = {"/summarize": summarize, "/extract": extract, "/answer": answer, "/chat": chat}


def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    handler = ROUTES.get(environ.get("PATH_INFO", ""))
    if handler is None:
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"error": "not found"}']
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    try:
        result = handler(body)
        status = "200 OK"
    except openai.APIError as exc:
        result, status = {"error": type(exc).__name__}, "502 Bad Gateway"
    payload = json.dumps(result).encode()
    start_response(status, [("Content-Type", "application/json")])
    return [payload]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    # The WSGI middleware extracts traceparent and baggage from each request.
    server = make_server(
        args.host,
        args.port,
        OpenTelemetryMiddleware(application),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    # SIGTERM exits normally so the launcher's atexit hook flushes the spans.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"demo app listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
