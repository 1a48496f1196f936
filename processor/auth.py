"""The bearer-token check shared by every endpoint that takes the configured auth token."""

from __future__ import annotations

import hmac


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value, or None. The scheme name is
    case-insensitive (RFC 7235): gRPC clients and proxies send ``bearer`` too."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def bearer_matches(header: str | None, expected: str) -> bool:
    """Whether the header carries exactly ``expected``, compared in constant time."""
    token = bearer_token(header)
    return token is not None and hmac.compare_digest(token.encode(), expected.encode())
