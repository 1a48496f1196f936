"""The ClickHouse HTTP interface unpacks a compressed body only up to its body limit: a small
compressed body must not become gigabytes in the processor's memory."""

from __future__ import annotations

import gzip
import zlib

import lz4.frame
import pytest
from clickhouse_connect.driver.compression import _zstd_compress
from llm_margin.processor import clickhouse_http
from llm_margin.processor.clickhouse_http import ClickHouseHttpError, decode_body

COMPRESS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "lz4": lz4.frame.compress,
    "zstd": _zstd_compress,
}


@pytest.mark.parametrize("encoding", sorted(COMPRESS))
def test_bodies_unpack_up_to_the_limit_and_no_further(encoding, monkeypatch):
    monkeypatch.setattr(clickhouse_http, "MAX_BODY_BYTES", 1000)
    within = b"SELECT 1" + b" " * 992
    assert decode_body(COMPRESS[encoding](within), encoding) == within
    with pytest.raises(ClickHouseHttpError) as refused:
        decode_body(COMPRESS[encoding](within + b" "), encoding)
    assert refused.value.status == 413


def test_a_truncated_gzip_body_is_refused():
    with pytest.raises(ClickHouseHttpError) as refused:
        decode_body(gzip.compress(b"SELECT 1" * 100)[:-12], "gzip")
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "params",
    [
        {"query_id": "a\r\nSet-Cookie: session=x"},
        {"query_id": "a\nX: y"},
        {"default_format": "TSV\r\nSet-Cookie: session=x"},
    ],
)
def test_values_echoed_as_headers_cannot_add_headers(params):
    """query_id and default_format come back as response headers: a line break in one split
    the answer and added headers of the caller's choosing."""
    with pytest.raises(ClickHouseHttpError) as info:
        clickhouse_http.split_request({"query": "SELECT 1", **params}, b"")
    assert info.value.status == 400


def test_ordinary_query_ids_and_formats_pass():
    request = clickhouse_http.split_request(
        {"query": "SELECT 1", "query_id": "grafana-42 panel:3", "default_format": "JSONEachRow"},
        b"",
    )
    assert (request.query_id, request.default_format) == ("grafana-42 panel:3", "JSONEachRow")
