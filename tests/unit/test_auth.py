"""The bearer-token check of every endpoint (OTLP HTTP and gRPC, query API, ClickHouse HTTP)."""

import pytest
from llm_margin.processor.auth import bearer_matches, bearer_token


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer s3cret", "s3cret"),
        ("bearer s3cret", "s3cret"),  # the scheme is case-insensitive (RFC 7235)
        ("BEARER  s3cret ", "s3cret"),
        ("Basic czNjcmV0", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("s3cret", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ("Bearer s3cret", True),
        ("bearer s3cret", True),
        ("Bearer s3cre", False),
        ("Bearer s3cret2", False),
        ("Token s3cret", False),
        (None, False),
    ],
)
def test_bearer_matches(header, matches):
    assert bearer_matches(header, "s3cret") is matches
