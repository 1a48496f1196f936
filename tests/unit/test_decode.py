"""OTLP/HTTP body decoding: table-driven, pure."""

from __future__ import annotations

import base64
import gzip
import json
import re
import zlib

import pytest
from google.protobuf import json_format
from llm_margin.processor.receiver.decode import (
    PayloadError,
    PayloadTooLargeError,
    UnsupportedEncodingError,
    check_shape,
    decompress,
    parse_json,
    parse_protobuf,
)
from llm_margin.processor.receiver.synthetic import make_request

LIMIT = 1 << 16


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("", lambda b: b),
        ("identity", lambda b: b),
        ("gzip", gzip.compress),
        ("GZIP ", gzip.compress),
        ("deflate", zlib.compress),
    ],
)
def test_decompress_round_trips(encoding, encode):
    data = b"otlp" * 1000
    assert decompress(encode(data), encoding, LIMIT) == data


_DATA = bytes(range(256)) * 64  # 16 KiB that does not compress to nothing


def _gzip(data: bytes) -> bytes:
    """gzip with a fixed timestamp: the bodies name the cases, and pytest-xdist's workers must
    collect the same names."""
    return gzip.compress(data, mtime=0)


@pytest.mark.parametrize(
    ("body", "encoding", "expected"),
    [
        # Several gzip members are one body (RFC 1952), as `cat a.gz b.gz` or pigz writes it.
        (_gzip(b"abc") + _gzip(b"def"), "gzip", b"abcdef"),
        (_gzip(_DATA) * 3, "gzip", _DATA * 3),
        (_gzip(b"") + _gzip(b"x"), "GZIP", b"x"),
        (_gzip(b"\0" * LIMIT), "gzip", b"\0" * LIMIT),  # exactly the limit
        (
            _gzip(b"\0" * (LIMIT - 1)) + _gzip(b"\1"),
            "gzip",
            b"\0" * (LIMIT - 1) + b"\1",
        ),
    ],
)
def test_decompress_reads_every_gzip_member(body, encoding, expected):
    assert decompress(body, encoding, LIMIT) == expected


@pytest.mark.parametrize(
    ("body", "encoding", "error"),
    [
        (b"not gzip", "gzip", PayloadError),
        (b"x", "br", UnsupportedEncodingError),
        (b"x", "zstd", UnsupportedEncodingError),
        (_gzip(b"\0" * (LIMIT + 1)), "gzip", PayloadTooLargeError),
        (zlib.compress(b"\0" * (LIMIT * 50)), "deflate", PayloadTooLargeError),
        # Within the limit each, over it together.
        (_gzip(b"\0" * LIMIT) + _gzip(b"\0"), "gzip", PayloadTooLargeError),
        (_gzip(b"\0" * (LIMIT // 2 + 1)) * 2, "gzip", PayloadTooLargeError),
        # Cut short: the part that inflates was taken for the whole body, CRC unchecked.
        (_gzip(_DATA)[:-8], "gzip", PayloadError),
        (_gzip(_DATA)[: len(_gzip(_DATA)) // 2], "gzip", PayloadError),
        (zlib.compress(_DATA)[:-4], "deflate", PayloadError),
        (_gzip(b"abc") + b"\0\0\0\0", "gzip", PayloadError),  # garbage after it
        (zlib.compress(b"abc") + b"more", "deflate", PayloadError),
    ],
)
def test_decompress_refuses(body, encoding, error):
    with pytest.raises(error):
        decompress(body, encoding, LIMIT)


def test_protobuf_round_trip_and_garbage():
    request = make_request(0, 3)
    assert parse_protobuf(request.SerializeToString()) == request
    with pytest.raises(PayloadError):
        parse_protobuf(b"\x0a\xff\xff\xff\xff\xff")


def _json_with_hex_ids(request) -> dict:
    document = json_format.MessageToDict(request)
    for span in document["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for key in ("traceId", "spanId"):
            span[key] = base64.b64decode(span[key]).hex()
    return document


def test_json_hex_ids_decode_to_the_same_request():
    request = make_request(5, 2)
    parsed = parse_json(json.dumps(_json_with_hex_ids(request)).encode())
    assert parsed == request
    assert parsed.resource_spans[0].scope_spans[0].spans[0].span_id == (6).to_bytes(8, "big")


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'"x"',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": ["not an object"]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "zz"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
        b"\xff\xfe",
    ],
)
def test_json_garbage_is_a_payload_error(body):
    with pytest.raises(PayloadError):
        parse_json(body)


def _span_body(span: object) -> dict:
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


def _attribute_body(value: object) -> dict:
    return _span_body({"name": "chat", "attributes": [{"key": "k", "value": value}]})


_SPAN = "resourceSpans[0].scopeSpans[0].spans[0]"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "body: expected an object, got a list"),
        ("x", "body: expected an object, got a string"),
        ({"resourceSpans": "x"}, "resourceSpans: expected a list, got a string"),
        ({"resourceSpans": {}}, "resourceSpans: expected a list, got an object"),
        ({"resourceSpans": [1]}, "resourceSpans[0]: expected an object, got a number"),
        ({"resourceSpans": [None]}, "resourceSpans[0]: expected an object, got null"),
        (
            {"resourceSpans": [{"scopeSpans": "x"}]},
            "resourceSpans[0].scopeSpans: expected a list, got a string",
        ),
        (
            {"resourceSpans": [{"resource": "x"}]},
            "resourceSpans[0].resource: expected an object, got a string",
        ),
        (
            {"resourceSpans": [{"resource": ["attributes"]}]},
            "resourceSpans[0].resource: expected an object, got a list",
        ),
        (
            {"resourceSpans": [{"resource": {"attributes": {"k": "v"}}}]},
            "resourceSpans[0].resource.attributes: expected a list, got an object",
        ),
        (
            {"resourceSpans": [{"scopeSpans": [{"scope": "x"}]}]},
            "resourceSpans[0].scopeSpans[0].scope: expected an object, got a string",
        ),
        (
            {"resourceSpans": [{"scopeSpans": [{"spans": {}}]}]},
            "resourceSpans[0].scopeSpans[0].spans: expected a list, got an object",
        ),
        (_span_body("x"), f"{_SPAN}: expected an object, got a string"),
        (_span_body(True), f"{_SPAN}: expected an object, got a boolean"),
        (
            _span_body({"attributes": {"gen_ai.system": "openai"}}),
            f"{_SPAN}.attributes: expected a list, got an object",
        ),
        (_span_body({"attributes": ["k"]}), f"{_SPAN}.attributes[0]: expected an object"),
        (_span_body({"status": "ok"}), f"{_SPAN}.status: expected an object, got a string"),
        (_span_body({"events": [7]}), f"{_SPAN}.events[0]: expected an object, got a number"),
        (_span_body({"links": "x"}), f"{_SPAN}.links: expected a list, got a string"),
        (_span_body({"links": ["x"]}), f"{_SPAN}.links[0]: expected an object, got a string"),
        (_attribute_body([1]), f"{_SPAN}.attributes[0].value: expected an object, got a list"),
        (_attribute_body("v"), f"{_SPAN}.attributes[0].value: expected an object, got a string"),
        (
            _attribute_body({"arrayValue": {"values": "x"}}),
            f"{_SPAN}.attributes[0].value.arrayValue.values: expected a list, got a string",
        ),
        (
            _attribute_body({"kvlistValue": {"values": [{"key": "a", "value": 1}]}}),
            f"{_SPAN}.attributes[0].value.kvlistValue.values[0].value: expected an object",
        ),
        # Field names as in the .proto are accepted by ParseDict, so they are checked too.
        ({"resource_spans": [{"scope_spans": 1}]}, "resource_spans[0].scope_spans: expected a"),
    ],
)
def test_check_shape_names_what_is_wrong(document, message):
    with pytest.raises(PayloadError, match=re.escape(message)):
        check_shape(document)
    with pytest.raises(PayloadError, match=re.escape(message)):  # and parse_json uses it
        parse_json(json.dumps(document).encode())


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"resourceSpans": None},
        {"resourceSpans": []},
        {"resourceSpans": [{}], "unknownField": "x"},
        {"resourceSpans": [{"resource": None, "scopeSpans": None, "somethingNew": [1]}]},
        _span_body({}),
        _attribute_body({"stringValue": "v"}),
        _attribute_body({"arrayValue": {"values": [{"intValue": "3"}, {"boolValue": True}]}}),
        _attribute_body({"kvlistValue": {"values": [{"key": "a", "value": {"doubleValue": 1}}]}}),
    ],
)
def test_check_shape_accepts_otlp(document):
    check_shape(document)
    parse_json(json.dumps(document).encode())


def test_check_shape_accepts_what_the_sdk_serialises():
    document = _json_with_hex_ids(make_request(7, 3))
    check_shape(document)


def test_json_nested_too_deeply_is_a_payload_error():
    with pytest.raises(PayloadError, match="nested too deeply"):
        parse_json(b"[" * 100_000)
    value: dict = {"stringValue": "x"}
    for _ in range(60):  # 120 messages deep: past the limit, well within json.loads'
        value = {"arrayValue": {"values": [value]}}
    with pytest.raises(PayloadError, match="nested too deeply"):
        check_shape(_attribute_body(value))
