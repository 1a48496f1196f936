"""OTLP/HTTP as the protocol has it, over real sockets: one answer per request whatever is
wrong with it, chunked bodies, 405 for a wrong method, and error bodies in the request's
encoding (a google.rpc.Status, protobuf for protobuf requests)."""

from __future__ import annotations

import json
import socket

import pytest
from google.rpc import code_pb2, status_pb2
from llm_margin.processor.receiver.synthetic import make_request

from tests.conftest import wait_until
from tests.integration.test_receiver import AUTH, TOKEN, _processor, stored_span_ids

pytestmark = pytest.mark.integration

LIMIT = 64 * 1024  # _processor's max_body_bytes


@pytest.fixture(scope="module")
def proc(tmp_path_factory):
    processor = _processor(tmp_path_factory.mktemp("proc"))
    try:
        yield processor
    finally:
        processor.stop()


def exchange(proc, wire: bytes, timeout: float = 3.0) -> list[tuple[int, dict, bytes]]:
    """Send raw bytes on a fresh connection, and nothing after them; every answer read until
    the server closes it: [(status, headers, body)]."""
    with socket.create_connection(("127.0.0.1", proc.http.port), timeout=timeout) as sock:
        sock.sendall(wire)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            pass
    answers = []
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        answers.append((int(lines[0].split()[1]), headers, data[:length]))
        data = data[length:]
    return answers


def request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        # Refused for auth, then the unreadable body was answered too (413 or 411, then 401).
        ({**PROTOBUF, "Content-Length": str(LIMIT + 1)}, 401),
        (PROTOBUF, 401),
        ({"Content-Type": "text/plain", **AUTH, "Content-Length": str(LIMIT + 1)}, 415),
        ({"Content-Type": "text/plain", **AUTH, "Content-Length": "-1"}, 415),
    ],
)
def test_a_refused_request_gets_exactly_one_answer(proc, headers, status):
    answers = exchange(proc, request("POST", "/v1/traces", headers))
    assert [a[0] for a in answers] == [status]


def test_unreadable_bodies_are_answered_and_the_connection_closed(proc):
    for length in ("abc", "+5", "1_0", "-1"):
        headers = {**PROTOBUF, **AUTH, "Content-Length": length}
        # Followed by what would be read as a second request if the connection stayed open.
        answers = exchange(proc, request("POST", "/v1/traces", headers, b"GET /healthz HTTP/1.1"))
        assert [a[0] for a in answers] == [400], length
        assert answers[0][1]["connection"] == "close"


def test_chunked_body_is_stored(proc):
    body = make_request(0, 3).SerializeToString()
    chunked = (
        b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (body[:100], body[100:]))
        + b"0\r\n\r\n"
    )
    headers = {**PROTOBUF, **AUTH, "Transfer-Encoding": "chunked"}
    answers = exchange(proc, request("POST", "/v1/traces", headers, chunked) * 2)
    assert [a[0] for a in answers] == [200, 200]  # and the connection served the next one
    assert len(stored_span_ids(proc)) == 3


@pytest.mark.parametrize(
    ("extra", "chunks", "status"),
    [
        ({}, b"%x\r\n%s\r\n0\r\n\r\n" % (LIMIT + 1, b"x" * (LIMIT + 1)), 413),
        ({}, b"zz\r\n", 400),
        ({"Content-Length": "5"}, b"0\r\n\r\n", 200),  # chunked wins, then the connection closes
        ({"Transfer-Encoding": "gzip, chunked"}, b"0\r\n\r\n", 501),
    ],
)
def test_chunked_limits_and_framing(proc, extra, chunks, status):
    headers = {**PROTOBUF, **AUTH, "Transfer-Encoding": "chunked", **extra}
    answers = exchange(proc, request("POST", "/v1/traces", headers, chunks))
    assert [a[0] for a in answers] == [status]
    assert answers[0][1].get("connection") == "close"


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/v1/traces", 405, "POST"),
        ("PUT", "/v1/traces", 405, "POST"),
        ("DELETE", "/v1/traces", 405, "POST"),
        ("PATCH", "/api/query", 405, "POST"),
        ("POST", "/metrics", 405, "GET"),
        ("PUT", "/api/budget/decision", 405, "GET"),
        ("PUT", "/nowhere", 404, None),
        ("GET", "/nowhere", 404, None),
    ],
)
def test_wrong_method_is_405_naming_the_allowed_one(proc, method, path, status, allow):
    headers = {**AUTH, "Content-Type": "application/json", "Content-Length": "2"}
    # Two requests on one connection: the body of the first is drained, the second served.
    wire = request(method, path, headers, b"{}") + request("GET", "/healthz", {})
    answers = exchange(proc, wire)
    assert [a[0] for a in answers] == [status, 200]
    assert answers[0][1].get("allow") == allow
    assert json.loads(answers[0][2])["code"] == status


def test_wrong_method_needs_the_token_first(proc):
    answers = exchange(proc, request("PUT", "/v1/traces", {"Content-Length": "0"}))
    assert [a[0] for a in answers] == [401]


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        (PROTOBUF, b"\x0a\xff\xff\xff\xff", 400, code_pb2.INVALID_ARGUMENT),
        ({"Authorization": "Bearer wrong-token"}, b"", 401, code_pb2.UNAUTHENTICATED),
        (
            {"Content-Encoding": "gzip"},
            b"\x1f\x8b\x08garbage",
            400,
            code_pb2.INVALID_ARGUMENT,
        ),
    ],
)
def test_protobuf_requests_get_protobuf_status_errors(proc, headers, body, status, code):
    """OTLP/HTTP: error bodies are a google.rpc.Status in the request's encoding."""
    headers = {**PROTOBUF, **AUTH, **headers, "Content-Length": str(len(body))}
    for content_type in ("application/x-protobuf", "application/protobuf"):
        headers["Content-Type"] = content_type
        [(got, answer_headers, answer)] = exchange(
            proc, request("POST", "/v1/traces", headers, body)
        )
        assert got == status
        assert answer_headers["content-type"] == "application/x-protobuf"
        parsed = status_pb2.Status.FromString(answer)
        assert parsed.code == code and parsed.message


def test_json_requests_get_json_status_errors(proc):
    body = b"{not json"
    headers = {"Content-Type": "application/json", **AUTH, "Content-Length": str(len(body))}
    [(status, answer_headers, answer)] = exchange(
        proc, request("POST", "/v1/traces", headers, body)
    )
    assert (status, answer_headers["content-type"]) == (400, "application/json")
    assert json.loads(answer)["message"].startswith("invalid JSON")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"query": "SELECT 1"}', 'no "sql" field'),  # ClickHouse's name for it: not ours
        (b'["SELECT 1"]', 'no "sql" field'),
        (b'{"sql": 1}', "sql must be a string"),
        (b"{not json", "Expecting property name"),
    ],
)
def test_a_malformed_query_request_is_told_what_to_send(proc, body, why):
    """`POST /api/query` answered `bad query request: 'sql'` (a KeyError's text) to a body
    without the field, which did not say what the body should be."""
    headers = {"Content-Type": "application/json", **AUTH, "Content-Length": str(len(body))}
    [(status, _, answer)] = exchange(proc, request("POST", "/api/query", headers, body))
    message = json.loads(answer)["message"]
    assert status == 400 and message.startswith("bad query request (") and why in message
    assert message.endswith(
        'send a JSON object {"sql": "SELECT ...", "parameters": {"name": "value"}} (parameters '
        "fill {name:Type} placeholders; optional)"
    )


def test_protobuf_backpressure_answer_is_a_status_with_retry_after(proc, monkeypatch):
    monkeypatch.setattr(proc.writer, "_max_queued", 1)  # 3 spans never fit
    body = make_request(900, 3).SerializeToString()
    headers = {**PROTOBUF, "Authorization": f"Bearer {TOKEN}", "Content-Length": str(len(body))}
    [(status, answer_headers, answer)] = exchange(
        proc, request("POST", "/v1/traces", headers, body)
    )
    assert (status, answer_headers["retry-after"]) == (429, "1")
    assert answer_headers["content-type"] == "application/x-protobuf"
    assert status_pb2.Status.FromString(answer).code == code_pb2.RESOURCE_EXHAUSTED


def test_gzip_members_cut_bodies_and_unknown_encodings(proc):
    def post(body: bytes, encoding: str) -> int:
        headers = {**PROTOBUF, **AUTH, "Content-Encoding": encoding}
        headers["Content-Length"] = str(len(body))
        [(status, _, _)] = exchange(proc, request("POST", "/v1/traces", headers, body))
        return status

    import gzip

    whole = make_request(700, 4).SerializeToString()
    # Cut before its CRC: every byte inflates, so it was stored as if whole (200).
    assert post(gzip.compress(whole)[:-8], "gzip") == 400
    assert post(b"\x28\xb5\x2f\xfd", "zstd") == 415  # a coding we do not decode (was 400)
    assert not stored_span_ids(proc) & {f"{n:016x}" for n in range(701, 705)}
    # Two gzip members are one body: the second was dropped without a word (200, 2 spans).
    first, second = make_request(710, 2), make_request(720, 2)
    both = gzip.compress(first.SerializeToString()) + gzip.compress(second.SerializeToString())
    assert post(both, "gzip") == 200
    assert {f"{n:016x}" for n in (711, 712, 721, 722)} <= stored_span_ids(proc)


def test_connections_past_the_cap_are_counted_in_metrics(tmp_path):
    """The port closes connections past its cap at once; /metrics must show it (the count
    lived only on the server object)."""
    from llm_margin.processor.metrics import Metrics
    from llm_margin.processor.receiver.otlp_http import OtlpHttpServer

    metrics = Metrics()
    server = OtlpHttpServer("127.0.0.1", 0, None, metrics, None, max_connections=2)
    server.start()
    try:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
        extra = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        assert extra.recv(1) == b""  # closed at once
        extra.close()
        wait_until(lambda: metrics.get("refused_connections") == 1, timeout=5)
        assert "llm_margin_refused_connections_total 1" in metrics.render()
        for sock in idle:
            sock.close()
    finally:
        server.stop()
