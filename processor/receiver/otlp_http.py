"""OTLP/HTTP receiver plus the processor's small HTTP API, on one port.

Routes: POST /v1/traces (OTLP protobuf or JSON, gzip), GET /healthz, GET /metrics,
POST /api/query (read-only SQL for CLI commands while `serve` owns the embedded store; an
answer past the configured result limits is refused with 413, see ``readonly_sql.py``).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from google.rpc import code_pb2, status_pb2
from llm_margin.processor.auth import bearer_matches
from llm_margin.processor.config import MAX_CONCURRENT_EXPORTS, MAX_INFLIGHT_BODY_BYTES
from llm_margin.processor.http_server import (
    IDLE_TIMEOUT_SECONDS,
    MAX_CONNECTIONS,
    BodyError,
    BoundedHTTPServer,
    LoopbackHostCheck,
    is_loopback_host,
    read_chunked,
)
from llm_margin.processor.metrics import Metrics
from llm_margin.processor.readonly_sql import ResultTooLargeError
from llm_margin.processor.receiver.body_budget import BudgetExhaustedError, ByteBudget
from llm_margin.processor.receiver.decode import (
    PayloadError,
    PayloadTooLargeError,
    UnsupportedEncodingError,
    decompress,
    parse_json,
    parse_protobuf,
)
from llm_margin.processor.receiver.ingest import RETRY_AFTER_SECONDS, Ingestor, IngestOutcome
from llm_margin.processor.reports.values import json_value
from llm_margin.processor.wire import TYPED_ENCODING, encode_rows, json_default
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

log = logging.getLogger(__name__)

PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
ALLOWED_CONTENT_TYPES = {
    "/v1/traces": (*PROTOBUF_TYPES, "application/json"),
    "/api/query": ("application/json",),
}
POST_PATHS = frozenset(ALLOWED_CONTENT_TYPES)
GET_PATHS = frozenset({"/healthz", "/metrics"})
# What POST /api/query takes, told to a caller that sent something else.
QUERY_BODY = (
    'send a JSON object {"sql": "SELECT ...", "parameters": {"name": "value"}} '
    "(parameters fill {name:Type} placeholders; optional)"
)
# int() would also take "+5", " 5", "5_0" and non-ASCII digits as a Content-Length.
_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")
# The google.rpc.Code of an OTLP/HTTP error's Status body, as gRPC would say it.
_RPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    405: code_pb2.UNIMPLEMENTED,
    411: code_pb2.INVALID_ARGUMENT,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    500: code_pb2.INTERNAL,
    501: code_pb2.UNIMPLEMENTED,
    503: code_pb2.UNAVAILABLE,
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
        max_connections: int = MAX_CONNECTIONS,
        max_inflight_body_bytes: int = MAX_INFLIGHT_BODY_BYTES,
    ) -> None:
        # Shared by every connection: what their bodies hold in memory at once.
        self.body_budget = ByteBudget(max_inflight_body_bytes)
        handler = _make_handler(
            ingestor,
            metrics,
            query_runner,
            auth_token,
            max_body_bytes,
            max_concurrent_exports,
            extra_get_routes or {},
            health or (lambda: {"status": "ok"}),
            self.body_budget,
        )
        try:
            self._server = BoundedHTTPServer(
                (host, port),
                handler,
                max_connections=max_connections,
                on_refused=lambda: metrics.inc("refused_connections"),
            )
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
    body_budget: ByteBudget,
) -> type[BaseHTTPRequestHandler]:
    in_flight = threading.BoundedSemaphore(max_concurrent_exports)
    get_paths = GET_PATHS | frozenset(extra_get_routes)

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
            if self.close_connection:  # tell the client not to send another request on it
                self.send_header("Connection", "close")
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

        def _body(self) -> bytes:
            """The request body; BodyError if it cannot be read as framed, or is too large."""
            coding = self.headers.get("Transfer-Encoding")
            if coding is not None:
                # It overrides Content-Length (RFC 9112 section 6.3); a request with both may
                # be smuggling a second one past a proxy: answer it, then close.
                if self.headers.get("Content-Length") is not None:
                    self.close_connection = True
                if coding.strip().lower() != "chunked":
                    raise BodyError(501, f"unsupported Transfer-Encoding {coding[:40]!r}")
                return read_chunked(self.rfile, max_body_bytes, self._reservation.grow)
            length_header = self.headers.get("Content-Length")
            if length_header is None:
                raise BodyError(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
            if not _CONTENT_LENGTH.fullmatch(length_header.strip()):
                raise BodyError(HTTPStatus.BAD_REQUEST, "bad Content-Length")
            length = int(length_header)
            if length > max_body_bytes:
                raise BodyError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
            self._reservation.grow(length)  # before reading: the bytes are then held
            body = self.rfile.read(length)
            if len(body) < length:
                raise BodyError(HTTPStatus.BAD_REQUEST, "body cut short")
            return body

        def _read_body(self) -> bytes | None:
            """The body, or None once the request has been answered because it cannot be
            read; then the connection closes (where the next request starts is unknown)."""
            try:
                return self._body()
            except BodyError as exc:
                self._reject(exc.status, str(exc), close=True)
                return None
            except BudgetExhaustedError as exc:
                self.close_connection = True  # the body is left unread
                self._busy(str(exc))
                return None

        def _busy(self, message: str) -> None:
            """Too many request bodies in memory: retry later (as for a full queue)."""
            metrics.inc("inflight_bytes_rejections")
            self._send_status(
                HTTPStatus.TOO_MANY_REQUESTS, message, {"Retry-After": str(RETRY_AFTER_SECONDS)}
            )

        def _discard_body(self) -> None:
            """Read and drop the body of a request answered without it, so the connection
            can serve the next one: the answer must be the only one this request gets."""
            if "Content-Length" not in self.headers and "Transfer-Encoding" not in self.headers:
                return  # no body (RFC 9112 section 6.3)
            try:
                self._body()
            except (BodyError, BudgetExhaustedError):
                self.close_connection = True

        def _reject(
            self,
            status: int,
            message: str,
            close: bool = False,
            headers: dict[str, str] | None = None,
        ) -> None:
            metrics.inc("rejected_requests")
            if close:
                self.close_connection = True
            self._send_status(status, message, headers)

        def _send_status(
            self, status: int, message: str, headers: dict[str, str] | None = None
        ) -> None:
            """An error answer: a google.rpc.Status, in protobuf to an OTLP protobuf request
            (OTLP/HTTP answers in the request's encoding), else in JSON."""
            if self._is_protobuf_export():
                status_message = status_pb2.Status(
                    code=_RPC_CODES.get(int(status), code_pb2.UNKNOWN), message=message
                )
                body = status_message.SerializeToString()
                self._send(status, body, "application/x-protobuf", headers)
            else:
                self._send_json(status, {"code": int(status), "message": message}, headers)

        def _is_protobuf_export(self) -> bool:
            return self.path.split("?", 1)[0] == "/v1/traces" and (
                self._content_type() in PROTOBUF_TYPES
            )

        def _not_here(self, path: str) -> None:
            """404, or 405 naming the methods the path takes."""
            allowed = [
                m for m, paths in (("GET", get_paths), ("POST", POST_PATHS)) if path in paths
            ]
            if allowed:
                self._reject(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    f"{self.command} not allowed; use {' or '.join(allowed)}",
                    headers={"Allow": ", ".join(allowed)},
                )
            else:
                self._reject(HTTPStatus.NOT_FOUND, "not found")

        def _answering(self, route: Callable[[], None]) -> None:
            """Run ``route`` so that a request is always answered: an exception it lets out
            (our bug) is logged, counted and answered 500 instead of dropping the connection,
            which an exporter would take for a transient failure and resend forever."""
            self._response_started = False
            # What this request's body holds of the shared budget, released on every path.
            self._reservation = body_budget.reservation()
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
                        self._send_status(
                            HTTPStatus.INTERNAL_SERVER_ERROR,
                            "internal error (see the processor's log)",
                        )
                    except OSError:
                        pass
            finally:
                self._reservation.close()

        # -- routes ----------------------------------------------------------------------------
        def do_GET(self) -> None:
            self._answering(self._get)

        def do_POST(self) -> None:
            self._answering(self._post)

        # Methods no route takes: 405 (not the standard library's 501 page). HEAD stays 501:
        # its answer must have no body.
        def do_PUT(self) -> None:
            self._answering(self._other)

        do_DELETE = do_PATCH = do_OPTIONS = do_PUT

        def _other(self) -> None:
            self._discard_body()
            if self._authorised():
                self._not_here(self.path.split("?", 1)[0])
            else:
                self._reject(HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token")

        def _get(self) -> None:
            self._discard_body()  # a GET may have one: unread, it would be taken for a request
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
                self._not_here(path)

        def _post(self) -> None:
            path = self.path.split("?", 1)[0]
            if not self._authorised():
                self._discard_body()
                self._reject(HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token")
                return
            # OTLP/HTTP senders must name protobuf or JSON, and the CLI sends JSON: a web page
            # can POST cross-origin only text/plain or form bodies without asking first, so
            # those never reach the store or the SQL endpoint (no token is the default).
            if path in ALLOWED_CONTENT_TYPES and (
                self._content_type() not in ALLOWED_CONTENT_TYPES[path]
            ):
                self._discard_body()
                self._reject(
                    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                    f"Content-Type must be one of {', '.join(ALLOWED_CONTENT_TYPES[path])}",
                )
            elif path == "/v1/traces":
                self._traces()
            elif path == "/api/query":
                self._query()
            else:
                self._discard_body()
                self._not_here(path)

        def _traces(self) -> None:
            body = self._read_body()
            if body is None:
                return
            # Bound the exports decoded at once (each holds its body and records in memory);
            # beyond it, senders are told to come back, as for a full queue.
            if not in_flight.acquire(blocking=False):
                metrics.inc("concurrency_rejections")
                self._send_status(
                    HTTPStatus.TOO_MANY_REQUESTS,
                    "too many concurrent exports",
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
                data = decompress(
                    body,
                    self.headers.get("Content-Encoding", ""),
                    max_body_bytes,
                    self._reservation.grow,  # the inflated bytes are held too
                )
                request = parse_json(data) if is_json else parse_protobuf(data)
            except BudgetExhaustedError as exc:
                self._busy(str(exc))  # the body was read whole: the connection stays usable
                return
            except PayloadTooLargeError as exc:
                self._reject(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(exc))
                return
            except UnsupportedEncodingError as exc:
                self._reject(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, str(exc))
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
                self._send_status(
                    status, result.message, {"Retry-After": str(result.retry_after_seconds)}
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
                if not isinstance(document, dict) or "sql" not in document:
                    raise ValueError('no "sql" field')
                sql = document["sql"]
                parameters = document.get("parameters") or {}
                encoding = document.get("encoding")
                if not isinstance(sql, str) or not isinstance(parameters, dict):
                    raise ValueError("sql must be a string and parameters an object")
            except (ValueError, TypeError) as exc:
                self._reject(HTTPStatus.BAD_REQUEST, f"bad query request ({exc}): {QUERY_BODY}")
                return
            try:
                result = query_runner(sql, parameters)
            except ResultTooLargeError as exc:  # stopped by the engine; the limits say how much
                limits = exc.limits
                self._send_json(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    {
                        "code": 413,
                        "message": str(exc),
                        "max_result_rows": limits.rows,
                        "max_result_bytes": limits.bytes,
                    },
                )
                return
            except Exception as exc:  # the SQL's own error, returned to the caller
                self._send_json(HTTPStatus.BAD_REQUEST, {"code": 400, "message": str(exc)})
                return
            self._send_json(200, query_answer(result, encoding))

    return Handler
