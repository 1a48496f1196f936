"""The embedded store served over the ClickHouse HTTP interface (the subset clients use).

Lets clickhouse-connect (``get_client(host=..., port=...)``), Grafana's ClickHouse plugin and
``curl`` read the embedded chDB store while ``llm-margin serve`` owns it, and lets a second
processor write into it with ``--clickhouse-url http://host:port`` (when writes are enabled).

Supported, as ClickHouse does it:

- ``GET /ping`` and ``GET /`` without a query: ``Ok.``
- ``GET|POST /`` with the statement in ``?query=``, in the body, or both (query param first,
  then the body); ``INSERT ... FORMAT <fmt>`` followed by data in the body (how
  clickhouse-connect inserts), with ``Content-Encoding`` gzip, deflate, lz4 or zstd.
- ``database``, ``default_format`` (TabSeparated by default; a trailing ``FORMAT`` wins), any
  output format chDB produces (Native, RowBinary, TabSeparated*, JSON*, CSV*, ...),
  ``param_<name>`` query parameters for ``{name:Type}`` placeholders, and other URL parameters
  as query settings.
- ``enable_http_compression=1`` with ``Accept-Encoding: gzip`` (or deflate): a compressed
  answer.
- Response headers ``X-ClickHouse-Format``, ``X-ClickHouse-Timezone``,
  ``X-ClickHouse-Query-Id``, ``X-ClickHouse-Summary``; errors carry
  ``X-ClickHouse-Exception-Code`` and a ``Code: N. DB::Exception: ...`` body.
- Auth when a token is configured: ``Authorization: Bearer <token>``, ``X-ClickHouse-Key``,
  basic auth whose password is the token, or ``?password=``.

Every request runs on its own chDB connection handle with ``readonly=1`` applied after the
client's settings, unless writes are enabled: a read-only interface cannot write, change
settings back, or run a multi-statement that does.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hmac
import json
import os
import re
import tempfile
import threading
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from llm_margin.processor.auth import bearer_token
from llm_margin.processor.http_server import (
    IDLE_TIMEOUT_SECONDS,
    BoundedHTTPServer,
    LoopbackHostCheck,
    is_loopback_host,
)
from llm_margin.processor.readonly_sql import (
    FORMAT_QUERY_SQL,
    READ_LIMITS,
    READONLY_CODE,
    RESULT_LIMIT_CODE,
    ReadOnlyStatementError,
    ResultLimits,
    check_read_statement,
    is_result_limit_error,
    result_limit_message,
)
from llm_margin.processor.storage import load_chdb_in_utc

load_chdb_in_utc()  # before chdb is loaded here: the store reads every time in UTC
import chdb  # noqa: E402

DEFAULT_FORMAT = "TabSeparated"
MAX_BODY_BYTES = 512 * 1024 * 1024
AUTH_FAILED = 516
READONLY = 164
UNKNOWN_ERROR = 1000

# URL parameters that steer the HTTP layer rather than the query (never passed as settings).
TRANSPORT_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "compress",
        "decompress",
        "enable_http_compression",
        "wait_end_of_query",
        "buffer_size",
        "client_protocol_version",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "quota_key",
        "role",
        "add_http_cors_header",
        "cancel_http_readonly_queries_on_client_close",
        "http_wait_end_of_query",
    }
)
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FORMAT_NAME = re.compile(r"^[A-Za-z0-9_]+$")
# Settings a read-only request may set (URL parameters): output formatting, time zones, and
# how a query is planned. The rest are refused, as a ClickHouse server refuses settings to a
# readonly=1 user: some touch files (output_format_schema writes one, format_schema* read
# them) or lift the session's bounds (READ_LIMITS).
_READ_ONLY_SETTING = re.compile(
    r"^(?!.*(?:schema|path|file|_dir|url|command|password|user))"
    r"(?:output_format_\w+|date_time_\w+|session_timezone|join_use_nulls|extremes"
    r"|result_overflow_mode|max_result_rows|max_result_bytes|max_block_size|max_threads"
    r"|select_sequential_consistency|final|optimize_\w+|query_plan_\w+|use_skip_indexes\w*"
    r"|use_query_cache|readonly|allow_experimental_\w+|enable_\w+|precise_float_parsing"
    r"|decimal_check_overflow|limit|offset)$"
)
_INSERT_WITH_DATA = re.compile(
    rb"^\s*INSERT\s+INTO\s+(?P<target>.+?)\s+FORMAT\s+(?P<format>\w+)[ \t]*(?:\r?\n|$)",
    re.IGNORECASE | re.DOTALL,
)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_RESULT_STATEMENT = re.compile(
    r"^\s*(?:\(\s*)*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN|CHECK)\b", re.IGNORECASE
)
_CODE = re.compile(r"Code:\s*(\d+)")
# HTTP status by error code, as ClickHouse's HTTP handler answers (exceptionCodeToHTTPStatus):
# the query's fault is 4xx, so clients and proxies do not retry it as a server failure.
_STATUS_BY_CODE = {
    **dict.fromkeys((6, 8, 26, 27, 36, 38, 41, 44, 53, 62, 72, 117, 321, 376), 400),
    **dict.fromkeys((46, 47, 50, 56, 60, 63, 73, 81, 115), 404),
    **dict.fromkeys((READONLY, 497), 403),
    48: 501,
    159: 408,
    393: 413,
}


class ClickHouseHttpError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class Request:
    """One HTTP request, reduced to what the engine needs."""

    statement: bytes
    data: bytes | None = None
    database: str | None = None
    default_format: str = DEFAULT_FORMAT
    parameters: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    query_id: str = ""


@dataclass
class Response:
    body: bytes
    result_format: str | None
    summary: dict[str, str]


def split_request(params: Mapping[str, str], body: bytes) -> Request:
    """Statement, insert data, parameters and settings of one request (pure)."""
    query = params.get("query", "").encode()
    data: bytes | None = None
    if query:
        if body and _INSERT_WITH_DATA.match(query + b"\n"):
            statement, data = query, body
        else:
            statement = query + (b" " + body if body else b"")
    else:
        match = _INSERT_WITH_DATA.match(body)
        if match and match.end() < len(body):
            statement, data = body[: match.end()].rstrip(), body[match.end() :]
        else:
            statement = body
    if not statement.strip():
        raise ClickHouseHttpError(400, 62, "Empty query")
    settings: dict[str, str] = {}
    parameters: dict[str, str] = {}
    for key, value in params.items():
        if key.startswith("param_"):
            parameters[key[6:]] = value
        elif key not in TRANSPORT_PARAMS:
            if not _SETTING_NAME.match(key):
                raise ClickHouseHttpError(400, 115, f"Unknown setting {key!r}")
            settings[key] = value
    # Both come back as response headers: a line break in them would add headers of the
    # caller's choosing (Set-Cookie for 127.0.0.1 from a page's <img> request).
    default_format = params.get("default_format") or DEFAULT_FORMAT
    if not _FORMAT_NAME.match(default_format):
        raise ClickHouseHttpError(400, 73, f"Unknown format {default_format!r}")
    query_id = params.get("query_id") or str(uuid.uuid4())
    if not query_id.isprintable():
        raise ClickHouseHttpError(400, 36, f"query_id {query_id!r} has control characters")
    return Request(
        statement=statement,
        data=data,
        database=params.get("database") or None,
        default_format=default_format,
        parameters=parameters,
        settings=settings,
        query_id=query_id,
    )


def form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The fields of a multipart/form-data body, which ClickHouse reads as URL parameters:
    clickhouse-connect sends the query and its ``param_*`` values that way once they are too
    long for a URL. Files in it (external tables) are not supported."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise ClickHouseHttpError(400, 36, "malformed multipart/form-data body")
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            raise ClickHouseHttpError(400, 36, "multipart/form-data part without a name")
        if part.get_filename() is not None:
            raise ClickHouseHttpError(
                501, 48, f"external tables are not supported (form file {name!r})"
            )
        payload = part.get_payload(decode=True) or b""
        try:
            fields[str(name)] = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ClickHouseHttpError(400, 36, f"form field {name!r} is not UTF-8") from exc
    return fields


def response_encoding(accept_encoding: str) -> str | None:
    """gzip or deflate when the client accepts it (``enable_http_compression=1`` asks for a
    compressed answer, as ClickHouse does); None otherwise, and the answer goes uncompressed."""
    accepted = set()
    for item in accept_encoding.lower().split(","):
        name, _, quality = item.strip().partition(";")
        if quality.strip().replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            accepted.add(name.strip())
    for encoding in ("gzip", "deflate"):
        if encoding in accepted:
            return encoding
    return None


def decode_body(body: bytes, encoding: str) -> bytes:
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    try:
        if encoding in ("gzip", "deflate"):
            # Bounded: a small compressed body must not unpack into gigabytes.
            wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
            inflater = zlib.decompressobj(wbits)
            out = inflater.decompress(body, MAX_BODY_BYTES)
            if inflater.unconsumed_tail:
                raise ClickHouseHttpError(413, 0, "decompressed request body too large")
            if not inflater.eof:
                raise ValueError("truncated stream")
            return out
        if encoding in ("lz4", "zstd"):
            if encoding == "lz4":
                import lz4.frame

                inflater = lz4.frame.LZ4FrameDecompressor()
            else:
                from clickhouse_connect.driver.compression import _zstd_decompressor

                inflater = _zstd_decompressor()
            out = inflater.decompress(body, max_length=MAX_BODY_BYTES + 1)
            if len(out) > MAX_BODY_BYTES:
                raise ClickHouseHttpError(413, 0, "decompressed request body too large")
            return out
    except ClickHouseHttpError:
        raise
    except Exception as exc:
        raise ClickHouseHttpError(400, 271, f"cannot decompress body ({encoding}): {exc}") from exc
    raise ClickHouseHttpError(400, 271, f"unsupported Content-Encoding {encoding!r}")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Engine:
    """Runs requests on fresh chDB handles of one data directory."""

    def __init__(
        self,
        data_path: str,
        database: str,
        *,
        writable: bool,
        result_limits: ResultLimits | None = None,
    ) -> None:
        self._path = data_path
        self._database = database
        self._writable = writable
        # Bound of a read-only answer: chDB holds it all (result.bytes()) before it is sent.
        self._limits = result_limits or ResultLimits()
        self.timezone = self._scalar("SELECT timezone()") or "UTC"

    def _scalar(self, sql: str) -> str:
        conn = chdb.connect(self._path)
        try:
            return conn.query(sql, "TabSeparated").bytes().decode().strip()
        finally:
            conn.close()

    def run(self, request: Request, *, read_only: bool = False) -> Response:
        """Run one request; ``read_only`` (a GET) as if writes were disabled."""
        read_only = read_only or not self._writable
        conn = chdb.connect(self._path)
        try:
            conn.query(f"USE `{_backtick(request.database or self._database)}`", "TabSeparated")
            if read_only:
                refused = sorted(n for n in request.settings if not _READ_ONLY_SETTING.match(n))
                if refused:
                    raise ClickHouseHttpError(
                        403,
                        READONLY_CODE,
                        f"Cannot modify setting {refused[0]!r} in readonly mode. (READONLY)",
                    )
            for name, value in request.settings.items():
                conn.query(f"SET {name} = {_quote(value)}", "TabSeparated")
            bounded: dict[str, Any] = {}  # the processor's result bounds, when they apply
            if read_only:
                for name, limit in READ_LIMITS.items():  # after the request's own settings
                    conn.query(f"SET {name} = {int(limit)}", "TabSeparated")
                bounded = result_settings(request.settings, self._limits)
                for name, value in bounded.items():
                    conn.query(f"SET {name} = {_quote(str(value))}", "TabSeparated")
                conn.query("SET readonly = 1", "TabSeparated")
            statement = request.statement.decode("utf-8", errors="strict")
            if read_only:
                if request.data is not None:
                    raise ClickHouseHttpError(
                        403, READONLY_CODE, "Cannot execute query in readonly mode. (READONLY)"
                    )
                check_read_statement(statement, lambda text: _format_query(conn, text))
            if request.data is not None:
                return self._insert(conn, statement, request.data)
            result = conn.query(statement, request.default_format, params=request.parameters)
            trailing = _TRAILING_FORMAT.search(statement)
            result_format = None
            if _RESULT_STATEMENT.match(statement):
                result_format = trailing.group(1) if trailing else request.default_format
            return Response(result.bytes() or b"", result_format, _summary(result, False))
        except ClickHouseHttpError:
            raise
        except ReadOnlyStatementError as exc:
            raise ClickHouseHttpError(_http_status(exc.code), exc.code, str(exc)) from exc
        except UnicodeDecodeError as exc:
            raise ClickHouseHttpError(400, 36, f"query is not UTF-8: {exc}") from exc
        except Exception as exc:
            message = str(exc)
            found = _CODE.search(message)
            code = int(found.group(1)) if found else UNKNOWN_ERROR
            status = _http_status(code)
            start = message.find("Code: ")
            detail = message[start:] if start >= 0 else message
            if code == RESULT_LIMIT_CODE and _ours(bounded, message):
                message = result_limit_message(self._limits, detail)
                message = f"Code: {code}. DB::Exception: {message}"
                raise ClickHouseHttpError(413, code, message) from exc
            raise ClickHouseHttpError(status, code, detail) from exc
        finally:
            conn.close()

    def _insert(self, conn: Any, statement: str, data: bytes) -> Response:
        match = _INSERT_WITH_DATA.match(statement.encode() + b"\n")
        if match is None:
            raise ClickHouseHttpError(400, 62, "data sent with a statement that is not an INSERT")
        target = match.group("target").decode()
        fmt = match.group("format").decode()
        handle = tempfile.NamedTemporaryFile(suffix=".chdata", delete=False)  # noqa: SIM115
        try:
            with handle:
                handle.write(data)
            result = conn.query(
                f"INSERT INTO {target} FROM INFILE {_quote(handle.name)} FORMAT {fmt}",
                "TabSeparated",
            )
        finally:
            os.unlink(handle.name)
        return Response(b"", None, _summary(result, True))


def result_settings(requested: Mapping[str, str], limits: ResultLimits) -> dict[str, Any]:
    """The processor's result bounds a read-only request gets (pure): each bound the request
    did not set lower itself, and then ``result_overflow_mode = 'throw'``; nothing when the
    request's own bounds are as tight (its overflow mode then stays as it asked)."""
    out: dict[str, Any] = {}
    for name, ours in (("max_result_rows", limits.rows), ("max_result_bytes", limits.bytes)):
        try:
            theirs = int(requested.get(name, "0") or 0)
        except ValueError:  # chDB refused the SET already
            theirs = 0
        if ours and not 0 < theirs <= ours:
            out[name] = ours
    if out:
        out["result_overflow_mode"] = "throw"
    return out


def _ours(bounded: Mapping[str, Any], message: str) -> bool:
    """Whether a result-limit error is the processor's bound, not one the request set."""
    if not is_result_limit_error(message):
        return False
    which = "max_result_rows" if "max rows:" in message else "max_result_bytes"
    return which in bounded


def _http_status(code: int) -> int:
    return _STATUS_BY_CODE.get(code, 500)


def _format_query(conn: Any, statement: str) -> str:
    # Query parameters travel in ClickHouse's escaped text format.
    escaped = "".join(_ESCAPES.get(ch, ch) for ch in statement)
    result = conn.query(FORMAT_QUERY_SQL, "TabSeparatedRaw", params={"statement": escaped})
    return (result.bytes() or b"").decode().removesuffix("\n")


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def _backtick(name: str) -> str:
    if not name or any(ch in name for ch in "`\\\0"):
        raise ClickHouseHttpError(400, 81, f"invalid database name {name!r}")
    return name


def _summary(result: Any, written: bool) -> dict[str, str]:
    try:
        rows, size = str(result.rows_read()), str(result.bytes_read())
        elapsed = str(int(result.elapsed() * 1e9))
    except Exception:
        return {}
    if written:
        return {"written_rows": rows, "written_bytes": size, "elapsed_ns": elapsed}
    return {"read_rows": rows, "read_bytes": size, "elapsed_ns": elapsed}


def authorised(headers: Mapping[str, str], params: Mapping[str, str], token: str | None) -> bool:
    """Whether any of the ways ClickHouse clients send a secret carries the token."""
    if token is None:
        return True
    expected = token.encode()
    candidates: list[str] = []
    auth = headers.get("Authorization") or ""
    if (bearer := bearer_token(auth)) is not None:
        candidates.append(bearer)
    elif auth.startswith("Basic "):
        try:
            decoded = base64.b64decode(auth[6:], validate=True).decode()
            candidates.append(decoded.partition(":")[2])
        except (binascii.Error, UnicodeDecodeError):
            pass
    for value in (headers.get("X-ClickHouse-Key"), params.get("password")):
        if value:
            candidates.append(value)
    return any(hmac.compare_digest(c.encode(), expected) for c in candidates)


class ClickHouseHttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        data_path: str,
        database: str,
        *,
        auth_token: str | None = None,
        writable: bool = False,
        result_limits: ResultLimits | None = None,
    ) -> None:
        engine = Engine(data_path, database, writable=writable, result_limits=result_limits)
        try:
            self._server = BoundedHTTPServer((host, port), _make_handler(engine, auth_token))
            self._server.loopback_only = auth_token is None and is_loopback_host(host)
        except OSError as exc:
            raise OSError(
                f"cannot listen for the ClickHouse HTTP interface on {host}:{port}: "
                f"{exc.strerror or exc}"
            ) from exc
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="llm-margin-clickhouse-http", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(engine: Engine, auth_token: str | None) -> type[BaseHTTPRequestHandler]:
    class Handler(LoopbackHostCheck, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "llm-margin-clickhouse"
        timeout = IDLE_TIMEOUT_SECONDS

        def log_message(self, format: str, *args: Any) -> None:  # no per-request logging
            return

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, exc: ClickHouseHttpError) -> None:
            body = f"Code: {exc.code}. DB::Exception: {exc}".encode()
            if str(exc).startswith("Code: "):
                body = str(exc).encode()
            self._send(
                exc.status,
                body + b"\n",
                {
                    "Content-Type": "text/plain; charset=UTF-8",
                    "X-ClickHouse-Exception-Code": str(exc.code),
                },
            )

        def _handle(self, body: bytes, form: Mapping[str, str] | None = None) -> None:
            parts = urlsplit(self.path)
            params = dict(parse_qsl(parts.query, keep_blank_values=True))
            params.update(form or {})
            if parts.path in ("/ping", "/replicas_status") or (
                parts.path == "/" and self.command == "GET" and "query" not in params
            ):
                self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
                return
            if parts.path != "/":
                self._error(ClickHouseHttpError(404, 0, f"There is no handle {parts.path}"))
                return
            if not authorised(self.headers, params, auth_token):
                self._error(ClickHouseHttpError(401, AUTH_FAILED, "Authentication failed"))
                return
            try:
                request = split_request(params, body)
                # ClickHouse: GET never writes.
                response = engine.run(request, read_only=self.command == "GET")
            except ClickHouseHttpError as exc:
                self._error(exc)
                return
            headers = {
                "X-ClickHouse-Query-Id": request.query_id,
                "X-ClickHouse-Timezone": engine.timezone,
                "X-ClickHouse-Summary": json.dumps(response.summary),
                "Content-Type": "text/plain; charset=UTF-8",
            }
            if response.result_format:
                headers["X-ClickHouse-Format"] = response.result_format
            body = response.body
            if params.get("enable_http_compression") in ("1", "true"):
                encoding = response_encoding(self.headers.get("Accept-Encoding", ""))
                if encoding is not None:
                    body = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
                    headers["Content-Encoding"] = encoding
            self._send(200, body, headers)

        def do_GET(self) -> None:
            self._handle(b"")

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/" and not authorised(
                self.headers, dict(parse_qsl(parts.query, keep_blank_values=True)), auth_token
            ):
                # Before the body is read or decompressed: no work for an unknown caller.
                self.close_connection = True
                self._error(ClickHouseHttpError(401, AUTH_FAILED, "Authentication failed"))
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                try:
                    raw = self._read_chunked()
                except ValueError:
                    self.close_connection = True
                    self._error(ClickHouseHttpError(400, 0, "malformed chunked body"))
                    return
            elif 0 <= length <= MAX_BODY_BYTES:
                raw = self.rfile.read(length)
            else:
                self.close_connection = True
                self._error(ClickHouseHttpError(413, 0, "request body too large"))
                return
            if raw is None:
                self.close_connection = True
                self._error(ClickHouseHttpError(413, 0, "request body too large"))
                return
            try:
                body = decode_body(raw, self.headers.get("Content-Encoding", ""))
                content_type = self.headers.get("Content-Type", "")
                form = None
                if content_type.lower().startswith("multipart/form-data"):
                    form, body = form_fields(content_type, body), b""
            except ClickHouseHttpError as exc:
                self._error(exc)
                return
            self._handle(body, form)

        def _read_chunked(self) -> bytes | None:
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline(1024)  # trailing CRLF after the last chunk
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)

    return Handler
