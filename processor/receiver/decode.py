"""Decode OTLP/HTTP bodies (protobuf or JSON, optionally gzip) into ExportTraceServiceRequest."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

# OTLP/JSON carries these ids as hex; protobuf's JSON mapping expects base64.
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
# Inflate at most this much between two reservations of a memory budget.
INFLATE_STEP = 1024 * 1024


class PayloadError(ValueError):
    """The body is not a valid OTLP trace export request (answered 400 / INVALID_ARGUMENT)."""


class PayloadTooLargeError(ValueError):
    """The body is over the configured limit (answered 413 / RESOURCE_EXHAUSTED)."""


class UnsupportedEncodingError(PayloadError):
    """A Content-Encoding the receiver does not decode (answered 415, RFC 9110 8.4.1)."""


def decompress(
    body: bytes,
    content_encoding: str,
    max_bytes: int,
    reserve: Callable[[int], None] | None = None,
) -> bytes:
    """The body inflated. ``reserve(n)`` is called before up to ``n`` more bytes are inflated
    (in steps of ``INFLATE_STEP``, at most ``max_bytes`` in all), so a memory budget counts
    the inflated bytes as they come; whatever it raises is let out."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedEncodingError(f"unsupported Content-Encoding {encoding!r}")
    # wbits 16+MAX_WBITS reads a gzip header, MAX_WBITS a zlib stream; max_length bounds memory
    # so a small "zip bomb" cannot expand past the limit.
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    data = bytearray()
    reserved = 0
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits)
        pending = rest
        while True:
            room = max_bytes - len(data)
            step = min(INFLATE_STEP, room)
            if reserve is not None and len(data) + step > reserved:
                reserve(len(data) + step - reserved)
                reserved = len(data) + step
            # One byte past the limit, unreserved, tells a body over it (refused at once).
            limit = step if step < room else room + 1
            try:
                chunk = inflater.decompress(pending, limit)
            except zlib.error as exc:
                raise PayloadError(f"cannot decompress body: {exc}") from exc
            data += chunk
            if len(data) > max_bytes:
                raise PayloadTooLargeError(f"decompressed body exceeds {max_bytes} bytes")
            pending = inflater.unconsumed_tail
            if inflater.eof or (not pending and len(chunk) < limit):
                break
        # Short of its end the stream was cut: what came out is part of a request, whose
        # CRC was never checked, and could decode as a smaller, wrong one.
        if not inflater.eof:
            raise PayloadError("compressed body is cut short")
        rest = inflater.unused_data
        if not rest:
            return bytes(data)
        # A gzip body may be several members, one after another (RFC 1952 2.2): all of it
        # is the body. After a zlib stream nothing may follow.
        if encoding != "gzip":
            raise PayloadError("data after the end of the compressed body")


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
    except RecursionError as exc:
        raise PayloadError("invalid JSON: nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"invalid JSON: {exc}") from exc
    check_shape(document)
    _hex_ids_to_base64(document)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise PayloadError(f"invalid OTLP/JSON: {exc}") from exc
    return request


def check_shape(document: Any) -> None:
    """Raise PayloadError naming the first place where ``document`` (parsed JSON) does not have
    the structure of an ExportTraceServiceRequest: a non-object where a message belongs, a
    non-list where a repeated field does, at any depth (``resourceSpans[0].scopeSpans: expected
    a list, got a string``).

    Needed because ``json_format.ParseDict`` with ``ignore_unknown_fields`` takes a string or a
    list given for a message as an empty message (it iterates it for field names). Scalar
    values, unknown fields and nulls are left to ParseDict, which checks them strictly.
    """
    _check_message(document, ExportTraceServiceRequest.DESCRIPTOR, "", 0)


# Nesting of messages within messages, as json_format's own limit (its max_recursion_depth).
MAX_JSON_DEPTH = 100

_OBJECT, _LIST, _LIST_OF_OBJECTS = 1, 2, 3
# message full name -> {JSON name and field name: (_OBJECT | _LIST | _LIST_OF_OBJECTS, its
# message descriptor or None)}; scalar (and map) fields are absent: ParseDict checks them.
_FIELD_SHAPES: dict[str, dict[str, tuple[int, Any]]] = {}


def _field_shapes(descriptor: Any) -> dict[str, tuple[int, Any]]:
    shapes = _FIELD_SHAPES.get(descriptor.full_name)
    if shapes is None:
        shapes = {}
        for field in descriptor.fields:
            message = field.message_type
            if _is_repeated(field):
                if message is not None and message.GetOptions().map_entry:
                    continue
                shape = (_LIST_OF_OBJECTS, message) if message is not None else (_LIST, None)
            elif message is not None:
                shape = (_OBJECT, message)
            else:
                continue
            shapes[field.json_name] = shapes[field.name] = shape
        _FIELD_SHAPES[descriptor.full_name] = shapes
    return shapes


def _is_repeated(field: Any) -> bool:
    # protobuf 6.31 added ``is_repeated``; 7 removed ``label``.
    repeated = getattr(field, "is_repeated", None)
    if repeated is None:
        return field.label == field.LABEL_REPEATED
    return bool(repeated)


def _check_message(value: Any, descriptor: Any, path: str, depth: int) -> None:
    if not isinstance(value, dict):
        raise PayloadError(f"{path or 'body'}: expected an object, got {_json_type(value)}")
    if depth > MAX_JSON_DEPTH:
        raise PayloadError(f"{path}: nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    shapes = _field_shapes(descriptor)
    for key, item in value.items():
        shape = shapes.get(key)
        if shape is None or item is None:  # scalar or unknown field; null means absent
            continue
        kind, message = shape
        where = f"{path}.{key}" if path else key
        if kind == _OBJECT:
            _check_message(item, message, where, depth + 1)
        elif not isinstance(item, list):
            raise PayloadError(f"{where}: expected a list, got {_json_type(item)}")
        elif kind == _LIST_OF_OBJECTS:
            for index, element in enumerate(item):
                _check_message(element, message, f"{where}[{index}]", depth + 1)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """After check_shape: every level is the object or list it should be, or null."""
    for resource_spans in document.get("resourceSpans") or []:
        for scope_spans in resource_spans.get("scopeSpans") or []:
            for span in scope_spans.get("spans") or []:
                _convert_ids(span)
                for link in span.get("links") or []:
                    _convert_ids(link)


def _convert_ids(obj: dict[str, Any]) -> None:
    for name in _ID_FIELDS:
        value = obj.get(name)
        if isinstance(value, str) and value:
            try:
                obj[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            except ValueError as exc:
                raise PayloadError(f"{name} is not hex: {value[:40]!r}") from exc
