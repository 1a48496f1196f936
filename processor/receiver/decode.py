"""Decode OTLP/HTTP bodies (protobuf or JSON, optionally gzip) into ExportTraceServiceRequest."""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

# OTLP/JSON carries these ids as hex; protobuf's JSON mapping expects base64.
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class PayloadError(ValueError):
    """The body is not a valid OTLP trace export request (answered 400 / INVALID_ARGUMENT)."""


def decompress(body: bytes, content_encoding: str, max_bytes: int) -> bytes:
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise PayloadError(f"unsupported Content-Encoding {encoding!r}")
    # wbits 16+MAX_WBITS reads a gzip header, MAX_WBITS a zlib stream; max_length bounds memory
    # so a small "zip bomb" cannot expand past the limit.
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    try:
        data = zlib.decompressobj(wbits).decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise PayloadError(f"cannot decompress body: {exc}") from exc
    if len(data) > max_bytes:
        raise PayloadTooLargeError(f"decompressed body exceeds {max_bytes} bytes")
    return data


class PayloadTooLargeError(ValueError):
    """The body is over the configured limit (answered 413 / RESOURCE_EXHAUSTED)."""


def parse_protobuf(data: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as exc:
        raise PayloadError(f"invalid protobuf: {exc}") from exc
    return request


def parse_json(data: bytes) -> ExportTraceServiceRequest:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"invalid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise PayloadError("OTLP/JSON body must be an object")
    _hex_ids_to_base64(document)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise PayloadError(f"invalid OTLP/JSON: {exc}") from exc
    return request


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    for resource_spans in document.get("resourceSpans") or []:
        for scope_spans in (resource_spans or {}).get("scopeSpans") or []:
            for span in (scope_spans or {}).get("spans") or []:
                _convert_ids(span)
                for link in span.get("links") or []:
                    _convert_ids(link)


def _convert_ids(obj: dict[str, Any]) -> None:
    if not isinstance(obj, dict):
        raise PayloadError("span must be an object")
    for name in _ID_FIELDS:
        value = obj.get(name)
        if isinstance(value, str) and value:
            try:
                obj[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            except ValueError as exc:
                raise PayloadError(f"{name} is not hex: {value[:40]!r}") from exc
