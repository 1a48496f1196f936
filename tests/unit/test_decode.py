"""OTLP/HTTP body decoding: table-driven, pure."""

from __future__ import annotations

import base64
import gzip
import json
import zlib

import pytest
from google.protobuf import json_format
from llm_margin.processor.receiver.decode import (
    PayloadError,
    PayloadTooLargeError,
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


@pytest.mark.parametrize(
    ("body", "encoding", "error"),
    [
        (b"not gzip", "gzip", PayloadError),
        (b"x", "br", PayloadError),
        (gzip.compress(b"\0" * (LIMIT + 1)), "gzip", PayloadTooLargeError),
        (zlib.compress(b"\0" * (LIMIT * 50)), "deflate", PayloadTooLargeError),
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
