"""OTLP/HTTP receiver plus the processor's small HTTP API, on one port.

Routes: POST /v1/traces (OTLP protobuf or JSON, gzip), GET /healthz, GET /metrics,
POST /api/query (read-only SQL for CLI commands while `serve` owns the embedded store).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from llm_margin.processor.auth import bearer_matches
from llm_margin.processor.config import MAX_CONCURRENT_EXPORTS
from llm_margin.processor.http_server import (
    IDLE_TIMEOUT_SECONDS,
    BoundedHTTPServer,
    LoopbackHostCheck,
    is_loopback_host,
)
from llm_margin.processor.metrics import Metrics
from llm_margin.processor.receiver.decode import (
    PayloadError,
    PayloadTooLargeError,
    decompress,
    parse_json,
    parse_protobuf,
)
from llm_margin.processor.receiver.ingest import Ingestor, IngestOutcome
from llm_margin.processor.reports.values import json_value
from llm_margin.processor.wire import TYPED_ENCODING, encode_rows, json_default
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

log = logging.getLogger(__name__)

ALLOWED_CONTENT_TYPES = {
    "/v1/traces": ("application/x-protobuf", "application/protobuf", "application/json"),
    "/api/query": ("application/json",),
}

QueryRunner = Callable[[str, dict[str, Any]], Any]
# --- extra GET routes (budgets): path -> handler(query string) -> (status, JSON document) ---
GetRoute = Callable[[str], tuple[int, Any]]
# --- end extra GET routes ---


class OtlpHttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        ingestor: Ingestor,
        metrics: Metrics,
        query_runner: QueryRunner,
        *,
        auth_token: str | None = None,
        max_body_bytes: int = 16 * 1024 * 1024,
        max_concurrent_exports: int = MAX_CONCURRENT_EXPORTS,
        extra_get_routes: dict[str, GetRoute] | None = None,
        health: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        handler = _make_handler(
            ingestor,
            metrics,
            query_runner,
            auth_token,
            max_body_bytes,
            max_concurrent_exports,
            extra_get_routes or {},
            health or (lambda: {"status": "ok"}),
        )
        try:
            self._server = BoundedHTTPServer((host, port), handler)
            self._server.loopback_only = auth_token is None and is_loopback_host(host)
        except OSError as exc:
            raise OSError(
                f"cannot listen for OTLP HTTP on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="llm-margin-http", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def query_answer(result: Any, encoding: str | None) -> dict[str, Any]:
    """The /api/query answer: typed values for the CLI (``processor/wire.py``), else plain
    JSON values (money as exact decimal strings, NaN as null) for other callers."""
    if encoding == TYPED_ENCODING:
        rows = encode_rows(result.rows)
        return {"encoding": TYPED_ENCODING, "columns": result.columns, "rows": rows}
    rows = [[json_value(v) for v in row] for row in result.rows]
    return {"columns": result.columns, "rows": rows}


def _make_handler(
    ingestor: Ingestor,
    metrics: Metrics,
    query_runner: QueryRunner,
    auth_token: str | None,
    max_body_bytes: int,
    max_concurrent_exports: int,
    extra_get_routes: dict[str, GetRoute],
    health: Callable[[], dict[str, Any]],
) -> type[BaseHTTPRequestHandler]:
    in_flight = threading.BoundedSemaphore(max_concurrent_exports)

    class Handler(LoopbackHostCheck, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "llm-margin"
        timeout = IDLE_TIMEOUT_SECONDS

        def log_message(self, format: str, *args: Any) -> None:  # no per-request logging
            return

        # -- helpers ---------------------------------------------------------------------------
        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str,
            headers: dict[str, str] | None = None,
        ) -> None:
            self._response_started = True
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _send_json(self, status: int, document: Any, headers: dict[str, str] | None = None):
            body = json.dumps(document, default=json_default).encode()
            self._send(status, body, "application/json", headers)

        def _authorised(self) -> bool:
            if auth_token is None:
                return True
            return bearer_matches(self.headers.get("Authorization"), auth_token)

        def _content_type(self) -> str:
            """The media type of the request body, lower case, without parameters."""
            return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

        def _read_body(self) -> bytes | None:
            length_header = self.headers.get("Content-Length")
            if length_header is None:
                self._reject(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
                return None
            try:
                length = int(length_header)
            except ValueError:
                self._reject(HTTPStatus.BAD_REQUEST, "bad Content-Length")
                return None
            if length < 0 or length > max_body_bytes:
                self._reject(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large", close=True)
                return None
            return self.rfile.read(length)

        def _reject(self, status: int, message: str, close: bool = False) -> None:
            metrics.inc("rejected_requests")
            if close:
                self.close_connection = True
            self._send_json(status, {"code": int(status), "message": message})

        def _answering(self, route: Callable[[], None]) -> None:
            """Run ``route`` so that a request is always answered: an exception it lets out
            (our bug) is logged, counted and answered 500 instead of dropping the connection,
            which an exporter would take for a transient failure and resend forever."""
            self._response_started = False
            try:
                route()
            except ConnectionError:  # the client went away: nobody to answer
                self.close_connection = True
            except Exception:
                log.exception("error handling %s %s", self.command, self.path.split("?", 1)[0])
                metrics.inc("internal_errors")
                # The body may be unread and a response half sent: end the connection after.
                self.close_connection = True
                if not self._response_started:
                    try:
                        self._send_json(
                            HTTPStatus.INTERNAL_SERVER_ERROR,
                            {"code": 500, "message": "internal error (see the processor's log)"},
                        )
                    except OSError:
                        pass

        # -- routes ----------------------------------------------------------------------------
        def do_GET(self) -> None:
            self._answering(self._get)

        def do_POST(self) -> None:
            self._answering(self._post)

        def _get(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                # 200 while accepting data, including while spooling (the body says so).
                self._send_json(200, health())
            elif not self._authorised():
                self._reject(HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token")
            elif path == "/metrics":
                self._send(200, metrics.render().encode(), "text/plain; version=0.0.4")
            elif path in extra_get_routes:  # extra GET routes (budgets), behind auth
                query = self.path.split("?", 1)[1] if "?" in self.path else ""
                try:
                    status, document = extra_get_routes[path](query)
                except Exception as exc:
                    status, document = 500, {"code": 500, "message": str(exc)}
                self._send_json(status, document)
            else:
                self._reject(HTTPStatus.NOT_FOUND, "not found")

        def _post(self) -> None:
            path = self.path.split("?", 1)[0]
            if not self._authorised():
                # Drain the body so the connection stays usable for the next request.
                self._read_body()
                self._reject(HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token")
                return
            # OTLP/HTTP senders must name protobuf or JSON, and the CLI sends JSON: a web page
            # can POST cross-origin only text/plain or form bodies without asking first, so
            # those never reach the store or the SQL endpoint (no token is the default).
            if path in ALLOWED_CONTENT_TYPES and (
                self._content_type() not in ALLOWED_CONTENT_TYPES[path]
            ):
                self._read_body()
                self._reject(
                    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                    f"Content-Type must be one of {', '.join(ALLOWED_CONTENT_TYPES[path])}",
                )
            elif path == "/v1/traces":
                self._traces()
            elif path == "/api/query":
                self._query()
            else:
                self._read_body()
                self._reject(HTTPStatus.NOT_FOUND, "not found")

        def _traces(self) -> None:
            body = self._read_body()
            if body is None:
                return
            # Bound the exports decoded at once (each holds its body and records in memory);
            # beyond it, senders are told to come back, as for a full queue.
            if not in_flight.acquire(blocking=False):
                metrics.inc("concurrency_rejections")
                self._send_json(
                    HTTPStatus.TOO_MANY_REQUESTS,
                    {"code": 429, "message": "too many concurrent exports"},
                    {"Retry-After": "1"},
                )
                return
            try:
                self._export(body)
            finally:
                in_flight.release()

        def _export(self, body: bytes) -> None:
            is_json = self._content_type() == "application/json"
            try:
                data = decompress(body, self.headers.get("Content-Encoding", ""), max_body_bytes)
                request = parse_json(data) if is_json else parse_protobuf(data)
            except PayloadTooLargeError as exc:
                self._reject(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(exc))
                return
            except PayloadError as exc:
                self._reject(HTTPStatus.BAD_REQUEST, str(exc))
                return
            result = ingestor.ingest(request, None if is_json else data)
            if result.outcome is not IngestOutcome.STORED:
                # Both are retried by OTLP exporters, which honour Retry-After.
                status = (
                    HTTPStatus.TOO_MANY_REQUESTS
                    if result.outcome is IngestOutcome.THROTTLED
                    else HTTPStatus.SERVICE_UNAVAILABLE
                )
                self._send_json(
                    status,
                    {"code": int(status), "message": result.message},
                    {"Retry-After": str(result.retry_after_seconds)},
                )
                return
            response = ExportTraceServiceResponse()
            if result.rejected:
                response.partial_success.rejected_spans = result.rejected
                response.partial_success.error_message = result.message
            if is_json:
                self._send_json(
                    200,
                    {
                        "partialSuccess": {
                            "rejectedSpans": str(result.rejected),
                            "errorMessage": result.message,
                        }
                    }
                    if result.rejected
                    else {},
                )
            else:
                self._send(200, response.SerializeToString(), "application/x-protobuf")

        def _query(self) -> None:
            body = self._read_body()
            if body is None:
                return
            try:
                document = json.loads(body or b"{}")
                sql = document["sql"]
                parameters = document.get("parameters") or {}
                encoding = document.get("encoding")
                if not isinstance(sql, str) or not isinstance(parameters, dict):
                    raise ValueError("sql must be a string and parameters an object")
            except (ValueError, KeyError, TypeError) as exc:
                self._reject(HTTPStatus.BAD_REQUEST, f"bad query request: {exc}")
                return
            try:
                result = query_runner(sql, parameters)
            except Exception as exc:  # the SQL's own error, returned to the caller
                self._send_json(HTTPStatus.BAD_REQUEST, {"code": 400, "message": str(exc)})
                return
            self._send_json(200, query_answer(result, encoding))

    return Handler
