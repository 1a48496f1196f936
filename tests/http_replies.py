"""Replies shared by the small HTTP servers the tests stand up on loopback."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler


def reply_ok(handler: BaseHTTPRequestHandler) -> None:
    """200 with the body ``ok``, its length given (keep-alive clients wait for it)."""
    handler.send_response(200)
    handler.send_header("Content-Length", "2")
    handler.end_headers()
    handler.wfile.write(b"ok")
