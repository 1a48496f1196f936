"""A read command refused by a token-protected processor says how to give the token."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from llm_margin.processor.remote import RemoteError, RemoteReader


@pytest.fixture
def refusing_processor():
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            status = 401 if self.path == "/api/query" else 404
            body = json.dumps({"message": "missing or wrong bearer token"}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_401_names_the_token_option_and_variable(refusing_processor):
    with pytest.raises(RemoteError) as info:
        RemoteReader(refusing_processor, auth_token="wrong").query("SELECT 1")
    message = str(info.value)
    assert "answered 401: missing or wrong bearer token" in message
    assert "--auth-token" in message and "LLM_MARGIN_AUTH_TOKEN" in message
    assert info.value.status == 401
