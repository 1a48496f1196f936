"""The least any processor of this design does per LLM span, as a server (bench only).

`bench/bench_processor.py` starts it as a subprocess and sends it the same OTLP/HTTP traffic
as `llm-margin serve`, to show how fast storing spans could go at best on this machine. Per
export request it does only what storing a call cannot skip, on the same stack as serve
(standard-library threading HTTP server, upb protobuf, clickhouse-connect into embedded chDB):

- parse the request;
- read every attribute of every span once into a dict;
- build one row of `llm_calls` columns per span (no pricing, checks, baggage allowlist,
  nesting, linking, roll-up view or spool);
- insert the rows of all requests waiting, column-oriented, from one writer thread;
- acknowledge each request once its rows are inserted.

Usage: python bench/processor_floor.py --port PORT --data-dir DIR
"""

from __future__ import annotations

import argparse
import threading
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import clickhouse_connect
from llm_margin.clickhouse import read_sql
from llm_margin.processor.receiver.decode import parse_protobuf
from llm_margin.processor.records import CALL_COLUMNS

LINGER_SECONDS = 0.02  # as serve's writer
ZERO = Decimal(0)


def value_of(any_value) -> object:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


# The columns rows_of fills, up to `version`; the later ones (searches, modes, sub-usage, ...)
# take their defaults. Naming every CALL_COLUMNS broke the insert whenever a column was added.
FLOOR_COLUMNS = list(CALL_COLUMNS[: CALL_COLUMNS.index("version") + 1])


def rows_of(body: bytes) -> list[tuple]:
    rows = []
    for resource_spans in parse_protobuf(body).resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                a = {kv.key: value_of(kv.value) for kv in span.attributes}
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                rows.append(
                    (
                        datetime.fromtimestamp(start / 1e9, UTC),
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        a.get("task.id", ""),
                        a.get("customer.id", ""),
                        a.get("workspace.id", ""),
                        a.get("user.id", ""),
                        a.get("plan", ""),
                        a.get("feature", ""),
                        a.get("gen_ai.provider.name", ""),
                        "",
                        a.get("gen_ai.operation.name", ""),
                        a.get("gen_ai.request.model", ""),
                        a.get("gen_ai.response.model", ""),
                        "ok",
                        "",
                        a.get("gen_ai.usage.input_tokens", 0),
                        a.get("gen_ai.usage.output_tokens", 0),
                        0,
                        0,
                        0,
                        0,
                        "provider",
                        0,
                        a.get("llm_margin.attempt", 1),
                        a.get("llm_margin.attempt_kind", ""),
                        (end - start) / 1e6,
                        False,
                        "",
                        ZERO,
                        False,
                        "",
                        "",
                        start,
                    )
                )
    return rows


class Writer:
    """One thread inserts what the handlers queued since its last insert (serve's shape)."""

    def __init__(self, client) -> None:
        self._client = client
        self._cond = threading.Condition()
        self._rows: list[tuple] = []
        self._done = threading.Event()
        self.error: Exception | None = None  # the first failed insert, if any
        threading.Thread(target=self._run, daemon=True).start()

    def store(self, rows: list[tuple]) -> None:
        with self._cond:
            self._rows.extend(rows)
            done = self._done
            self._cond.notify()
        done.wait()
        if self.error is not None:
            raise RuntimeError(f"floor insert failed: {self.error}")

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._rows:
                    self._cond.wait()
            threading.Event().wait(LINGER_SECONDS)
            with self._cond:
                rows, self._rows = self._rows, []
                done, self._done = self._done, threading.Event()
            columns = [list(column) for column in zip(*rows, strict=True)]
            try:
                self._client.insert(
                    "llm_calls", columns, column_names=FLOOR_COLUMNS, column_oriented=True
                )
            except Exception as exc:  # the handlers answer 500 rather than wait (the bench hung)
                self.error = exc
            done.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    client = clickhouse_connect.get_client(interface="chdb", path=args.data_dir)
    client.command(read_sql("schema/001_llm_calls.sql"))
    writer = Writer(client)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                try:
                    writer.store(rows_of(body))
                except RuntimeError as exc:
                    self.send_error(500, str(exc))
                    return
                answer = b""
            else:  # /count: rows stored, for the benchmark's "queryable" check
                answer = str(client.query("SELECT count() FROM llm_calls").result_rows[0][0])
                answer = answer.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # as serve's

    server = Server(("127.0.0.1", args.port), Handler)
    print("OTLP gRPC - floor server ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
