"""Talk to a running `llm-margin serve` that owns an embedded data directory.

chDB lets one process open a data directory, so `serve` writes a state file there naming its
HTTP address, and read commands send their (parameterised) SQL to it instead.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from llm_margin.processor.storage import READ_CLIENTS, QueryResult
from llm_margin.processor.wire import TYPED_ENCODING, decode_rows, json_default

STATE_FILE_NAME = "llm-margin-serve.json"
# How long a read command waits for a recorded processor's /healthz before it asks anyway.
PROBE_TIMEOUT_SECONDS = 5.0


class RemoteError(RuntimeError):
    """The running processor refused or failed a query.

    ``status`` is the HTTP status (None when it did not answer); ``detail`` is its message:
    for 400, the query's own error as ClickHouse worded it. For 413 (the answer passed the
    processor's result limits), ``max_result_rows`` is its row limit when it said it.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: str = "",
        max_result_rows: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or message
        self.max_result_rows = max_result_rows


def state_file_path(data_dir: str) -> str:
    return os.path.join(os.path.abspath(data_dir), STATE_FILE_NAME)


def write_state(data_dir: str, http_url: str, grpc_port: int) -> None:
    path = state_file_path(data_dir)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump({"pid": os.getpid(), "http_url": http_url, "grpc_port": grpc_port}, handle)
    os.replace(tmp, path)


def remove_state(data_dir: str) -> None:
    try:
        os.remove(state_file_path(data_dir))
    except FileNotFoundError:
        pass


def running_server(data_dir: str) -> str | None:
    """HTTP URL of the live `serve` owning data_dir, or None.

    A `serve` killed with SIGKILL leaves its state file behind, and its pid may still exist
    (a zombie, or reused by another process): it counts as live only if its address also
    accepts connections.
    """
    try:
        with open(state_file_path(data_dir), encoding="utf-8") as handle:
            state = json.load(handle)
        pid = int(state["pid"])
        os.kill(pid, 0)
        url = str(state["http_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if _accepts_connections(url) else None


def _accepts_connections(http_url: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> bool:
    """False only when the connection is refused: nothing listens there. Any answer, even an
    error, and a timeout (a busy processor) count as listening."""
    try:
        urllib.request.urlopen(http_url.rstrip("/") + "/healthz", timeout=timeout).close()
    except urllib.error.URLError as exc:
        if isinstance(exc, urllib.error.HTTPError):
            return True
        return not isinstance(exc.reason, ConnectionRefusedError)
    except ConnectionRefusedError:
        return False
    except OSError:
        return True
    return True


class RemoteReader:
    """Same ``query`` interface as Store, answered by the running processor."""

    def __init__(self, http_url: str, auth_token: str | None = None, timeout: float = 60.0):
        self.description = f"running processor at {http_url}"
        self._url = http_url.rstrip("/") + "/api/query"
        self._token = auth_token
        self._timeout = timeout
        # The processor answers each request on a thread with its own read-only client.
        self.read_concurrency = READ_CLIENTS

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        request_document = {
            "sql": sql,
            "parameters": _wire_parameters(parameters or {}),
            "encoding": TYPED_ENCODING,
        }
        body = json.dumps(request_document, default=json_default).encode()
        request = urllib.request.Request(self._url, data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = exc.read()
            detail = _error_message(body)
            hint = ""
            if exc.code == 401:
                hint = " (give the processor's token: --auth-token or LLM_MARGIN_AUTH_TOKEN)"
            raise RemoteError(
                f"{self.description} answered {exc.code}: {detail}{hint}",
                status=exc.code,
                detail=detail,
                max_result_rows=_error_field(body, "max_result_rows"),
            ) from exc
        except urllib.error.URLError as exc:
            raise RemoteError(f"cannot reach {self.description}: {exc.reason}") from exc
        except (OSError, ValueError) as exc:  # dropped connection, a body that is not JSON
            raise RemoteError(f"no usable answer from {self.description}: {exc}") from exc
        try:
            return _result(document)
        except (KeyError, TypeError, ValueError) as exc:
            raise RemoteError(f"unreadable answer from {self.description}: {exc!r}") from exc

    def close(self) -> None:
        return None


def _result(document: dict[str, Any]) -> QueryResult:
    rows = document["rows"]
    # A processor from before typed answers sends plain JSON values (money as strings).
    if document.get("encoding") == TYPED_ENCODING:
        return QueryResult(document["columns"], decode_rows(rows))
    return QueryResult(document["columns"], [tuple(r) for r in rows])


def _error_message(body: bytes) -> str:
    """The processor's message from its JSON error body, else the body's text."""
    text = body.decode(errors="replace")
    try:
        message = json.loads(text)["message"]
    except (ValueError, KeyError, TypeError):
        return text.strip()
    return str(message)


def _error_field(body: bytes, name: str) -> int | None:
    """An integer field of the processor's JSON error body, else None."""
    try:
        value = json.loads(body)[name]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _wire_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        if isinstance(value, datetime):
            out[key] = {"__datetime__": value.isoformat()}
        else:
            out[key] = value
    return out


def parameters_from_wire(parameters: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        if isinstance(value, dict) and "__datetime__" in value:
            out[key] = datetime.fromisoformat(value["__datetime__"])
        else:
            out[key] = value
    return out
