"""The hardened OTLP receivers, over real sockets: auth, size limits, malformed payloads,
partial success, backpressure statuses, health and metrics."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2
from llm_margin.processor.config import ServeConfig
from llm_margin.processor.receiver.synthetic import make_request
from llm_margin.processor.server import Processor
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from tests.conftest import free_port, wait_until

pytestmark = pytest.mark.integration

TOKEN = "test-token-123"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _processor(tmp_path, **overrides) -> Processor:
    values = dict(
        data_dir=str(tmp_path / "data"),
        otlp_grpc_port=free_port(),
        otlp_http_port=free_port(),
        auth_token=TOKEN,
        max_body_bytes=64 * 1024,
    )
    values.update(overrides)
    proc = Processor(ServeConfig(**values).validate())
    proc.start()
    return proc


@pytest.fixture
def guarded(tmp_path):
    proc = _processor(tmp_path)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def tiny_queue(tmp_path):
    proc = _processor(tmp_path, queue_max_records=5)
    try:
        yield proc
    finally:
        proc.stop()


def post(proc, body: bytes, headers: dict[str, str] | None = None, path="/v1/traces"):
    request = urllib.request.Request(proc.http_url + path, data=body, method="POST")
    request.add_header("Content-Type", "application/x-protobuf")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get(proc, path: str, token: str | None = TOKEN):
    request = urllib.request.Request(proc.http_url + path)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def stored_span_ids(proc) -> set[str]:
    return {r[0] for r in proc.store.query("SELECT span_id FROM llm_calls FINAL").rows}


def metric(proc, name: str) -> float:
    return proc.metrics.get(name)


def scraped(proc) -> dict[str, float]:
    """The samples of GET /metrics, by name."""
    status, text = get(proc, "/metrics")
    assert status == 200
    return {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def otlp_json(request) -> bytes:
    """``request`` as an OTLP/JSON body: hex trace and span ids."""
    document = json_format.MessageToDict(request)
    for span in document["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for key in ("traceId", "spanId"):
            span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


# -- HTTP ------------------------------------------------------------------------------------
def test_http_requires_the_bearer_token(guarded):
    body = make_request(0, 3).SerializeToString()
    assert post(guarded, body)[0] == 401
    assert post(guarded, body, {"Authorization": "Bearer wrong-token-xx"})[0] == 401
    assert get(guarded, "/metrics", token=None)[0] == 401
    assert get(guarded, "/healthz", token=None)[0] == 200  # health stays open for probes
    assert stored_span_ids(guarded) == set()
    assert post(guarded, body, AUTH)[0] == 200
    assert len(stored_span_ids(guarded)) == 3
    # the scheme name is case-insensitive (RFC 7235)
    lower = make_request(10, 2).SerializeToString()
    assert post(guarded, lower, {"Authorization": f"bearer {TOKEN}"})[0] == 200
    assert len(stored_span_ids(guarded)) == 5


def test_http_traces_must_be_protobuf_or_json(guarded):
    """OTLP/HTTP senders name their encoding; a web page can POST text/plain or a form
    cross-origin without a preflight, so those bodies are refused (415), never parsed."""
    body = make_request(20, 2).SerializeToString()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        status, _, answer = post(guarded, body, dict(AUTH, **{"Content-Type": content_type}))
        assert status == 415 and b"application/x-protobuf" in answer, content_type
    assert stored_span_ids(guarded) == set()
    assert post(guarded, body, dict(AUTH, **{"Content-Type": "application/protobuf"}))[0] == 200
    assert len(stored_span_ids(guarded)) == 2


def test_http_garbage_is_400_and_the_service_keeps_serving(guarded):
    for garbage, content_type in (
        (b"\x0a\xff\xff\xff\xff\xff\xff", "application/x-protobuf"),
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"\x1f\x8b\x08garbage", "application/x-protobuf"),
    ):
        headers = dict(AUTH, **{"Content-Type": content_type})
        if garbage.startswith(b"\x1f\x8b"):
            headers["Content-Encoding"] = "gzip"
        status, _, body = post(guarded, garbage, headers)
        assert status == 400, (garbage, status, body)
    status, _, _ = post(guarded, make_request(100, 4).SerializeToString(), AUTH)
    assert status == 200
    assert len(stored_span_ids(guarded)) == 4
    assert metric(guarded, "rejected_requests") >= 4


def test_http_json_with_hex_ids_and_gzip(guarded):
    body = gzip.compress(otlp_json(make_request(200, 2)))
    headers = dict(AUTH, **{"Content-Type": "application/json", "Content-Encoding": "gzip"})
    status, _, reply = post(guarded, body, headers)
    assert status == 200, reply
    assert stored_span_ids(guarded) == {f"{201:016x}", f"{202:016x}"}


_SPANS = '{"resourceSpans":[{"scopeSpans":[{"spans":[%s]}]}]}'
# Bodies that once dropped the connection (AttributeError) or were answered 200 (the string
# taken for an empty resource), and the start of the message each is answered with.
MALFORMED_JSON = [
    ('{"resourceSpans": "x"}', "resourceSpans: expected a list, got a string"),
    ('{"resourceSpans":[1]}', "resourceSpans[0]: expected an object, got a number"),
    ('{"resourceSpans":[{"scopeSpans":"x"}]}', "resourceSpans[0].scopeSpans: expected a list"),
    ('{"resourceSpans":[{"resource":"x"}]}', "resourceSpans[0].resource: expected an object"),
    (_SPANS % '"a span"', "resourceSpans[0].scopeSpans[0].spans[0]: expected an object"),
    (_SPANS % '{"attributes":{"k":"v"}}', "spans[0].attributes: expected a list, got an object"),
    (
        _SPANS % '{"attributes":[{"key":"k","value":[1]}]}',
        "spans[0].attributes[0].value: expected an object, got a list",
    ),
    ("[" * 20_000, "invalid JSON: nested too deeply"),
]


def test_http_malformed_json_is_400_naming_it_and_counted(guarded):
    headers = dict(AUTH, **{"Content-Type": "application/json"})
    rejected = scraped(guarded)["llm_margin_rejected_requests_total"]
    for body, message in MALFORMED_JSON:
        status, _, reply = post(guarded, body.encode(), headers)
        assert status == 400, (body, status, reply)
        assert message in json.loads(reply)["message"], (body, reply)
    after = scraped(guarded)
    assert after["llm_margin_rejected_requests_total"] == rejected + len(MALFORMED_JSON)
    assert after["llm_margin_internal_errors_total"] == 0
    # Still serving, and nothing of the refused bodies stored.
    status, _, reply = post(guarded, otlp_json(make_request(500, 3)), headers)
    assert (status, json.loads(reply)) == (200, {})
    assert stored_span_ids(guarded) == {f"{n:016x}" for n in (501, 502, 503)}


def test_http_unexpected_error_is_answered_500_and_counted(guarded, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(guarded.writer, "submit", broken)
    status, _, reply = post(guarded, make_request(600, 2).SerializeToString(), AUTH)
    assert status == 500, reply
    # A google.rpc.Status in the request's encoding (OTLP/HTTP), here protobuf.
    assert status_pb2.Status.FromString(reply) == status_pb2.Status(
        code=code_pb2.INTERNAL, message="internal error (see the processor's log)"
    )
    monkeypatch.undo()
    assert scraped(guarded)["llm_margin_internal_errors_total"] == 1
    assert post(guarded, make_request(600, 2).SerializeToString(), AUTH)[0] == 200
    assert len(stored_span_ids(guarded)) == 2


def test_http_size_limit_413_also_after_decompression(guarded):
    big = make_request(0, 400).SerializeToString()
    assert len(big) > 64 * 1024
    assert post(guarded, big, AUTH)[0] == 413
    # Small on the wire, too big once inflated: refused without inflating it all.
    bomb = gzip.compress(b"\x00" * (10 * 64 * 1024))
    assert post(guarded, bomb, dict(AUTH, **{"Content-Encoding": "gzip"}))[0] == 413
    assert post(guarded, make_request(0, 2).SerializeToString(), AUTH)[0] == 200


def test_http_bad_spans_reported_through_partial_success(guarded):
    body = make_request(300, 6, bad=frozenset({301, 304})).SerializeToString()
    status, _, reply = post(guarded, body, AUTH)
    assert status == 200
    response = ExportTraceServiceResponse.FromString(reply)
    assert response.partial_success.rejected_spans == 2
    assert "negative" in response.partial_success.error_message
    assert stored_span_ids(guarded) == {f"{n + 1:016x}" for n in (300, 302, 303, 305)}


def test_http_queue_full_answers_429_with_retry_after(tiny_queue):
    status, headers, _ = post(tiny_queue, make_request(0, 10).SerializeToString(), AUTH)
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert metric(tiny_queue, "refused_records") == 10
    assert post(tiny_queue, make_request(0, 3).SerializeToString(), AUTH)[0] == 200


def test_metrics_and_healthz(guarded):
    post(guarded, make_request(0, 5, bad=frozenset({2})).SerializeToString(), AUTH)
    post(guarded, make_request(10, 3, llm=False).SerializeToString(), AUTH)
    status, text = get(guarded, "/metrics")
    assert status == 200
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert values["llm_margin_received_spans_total"] == 8
    assert values["llm_margin_stored_calls_total"] == 4
    assert values["llm_margin_rejected_spans_total"] == 1
    assert values["llm_margin_skipped_spans_total"] == 3
    for name in (
        "llm_margin_unpriced_calls_total",
        "llm_margin_spooled_records_total",
        "llm_margin_dropped_records_total",
        "llm_margin_queue_depth",
        "llm_margin_write_seconds_count",
    ):
        assert name in values, name
    assert values["llm_margin_write_seconds_count"] >= 1
    assert values['llm_margin_write_seconds_bucket{le="+Inf"}'] >= 1
    status, text = get(guarded, "/healthz", token=None)
    assert status == 200
    assert json.loads(text) == {"status": "ok", "queue_records": 0, "spooled_records": 0}


# -- gRPC ------------------------------------------------------------------------------------
@pytest.fixture
def channel(guarded):
    with grpc.insecure_channel(f"127.0.0.1:{guarded.grpc.port}") as chan:
        yield chan


def test_grpc_auth_garbage_and_partial_success(guarded, channel):
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    with pytest.raises(grpc.RpcError) as info:
        stub.Export(make_request(0, 2))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

    raw = channel.unary_unary(EXPORT)  # bytes in, bytes out: send what no exporter would
    with pytest.raises(grpc.RpcError) as info:
        raw(b"\x0a\xff\xff\xff\xff\xff\xff\xff", metadata=metadata)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    response = stub.Export(make_request(400, 5, bad=frozenset({402})), metadata=metadata)
    assert response.partial_success.rejected_spans == 1
    assert len(stored_span_ids(guarded)) == 4
    stub.Export(make_request(500, 1), metadata=(("authorization", f"bearer {TOKEN}"),))
    assert len(stored_span_ids(guarded)) == 5

    with pytest.raises(grpc.RpcError) as info:
        stub.Export(make_request(0, 400), metadata=metadata)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_grpc_unexpected_error_is_internal_and_counted(guarded, channel, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    monkeypatch.setattr(guarded.writer, "submit", broken)
    with pytest.raises(grpc.RpcError) as info:
        stub.Export(make_request(600, 2), metadata=metadata)
    assert info.value.code() == grpc.StatusCode.INTERNAL  # was UNKNOWN, and not counted
    assert info.value.details() == "internal error (see the processor's log)"
    monkeypatch.undo()
    assert scraped(guarded)["llm_margin_internal_errors_total"] == 1
    stub.Export(make_request(600, 2), metadata=metadata)
    assert len(stored_span_ids(guarded)) == 2


def test_grpc_queue_full_is_unavailable_with_retry_info(tiny_queue):
    with grpc.insecure_channel(f"127.0.0.1:{tiny_queue.grpc.port}") as chan:
        stub = trace_service_pb2_grpc.TraceServiceStub(chan)
        with pytest.raises(grpc.RpcError) as info:
            stub.Export(make_request(0, 10), metadata=(("authorization", f"Bearer {TOKEN}"),))
    error = info.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    trailers = dict(error.trailing_metadata())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert retry.retry_delay.seconds >= 1
    # The key the OpenTelemetry Python exporter reads for its backoff.
    assert error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]) == retry


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_real_exporter_backs_off_and_delivers_after_queue_full(tmp_path, transport):
    """The SDK's OTLP exporters retry a throttled export (429 + Retry-After, UNAVAILABLE +
    RetryInfo) and it lands once room frees up."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GrpcExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    proc = _processor(tmp_path, queue_max_records=2)
    try:
        memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracer = provider.get_tracer("t")
        for i in range(3):
            with tracer.start_as_current_span("chat") as span:
                span.set_attribute("gen_ai.provider.name", "openai")
                span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
                span.set_attribute("gen_ai.usage.input_tokens", 10 + i)
        spans = memory.get_finished_spans()
        auth = {"authorization": f"Bearer {TOKEN}"}
        if transport == "http":
            exporter = HttpExporter(endpoint=proc.http_url + "/v1/traces", headers=auth)
        else:
            exporter = GrpcExporter(
                endpoint=f"127.0.0.1:{proc.grpc.port}", insecure=True, headers=auth
            )
        # 3 spans never fit a queue bound of 2: refused until an operator raises the bound.
        started = time.monotonic()
        threading.Timer(0.5, lambda: setattr(proc.writer, "_max_queued", 100)).start()
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert time.monotonic() - started >= 0.5
        assert metric(proc, "refused_records") >= 3
        wait_until(lambda: len(stored_span_ids(proc)) == 3, message="3 stored")
        exporter.shutdown()
    finally:
        proc.stop()


def _hold_exports(proc: Processor) -> threading.Event:
    """Each export keeps its slot (its batch is not handed to the writer) until the returned
    event is set."""
    release = threading.Event()
    original = proc.writer.submit

    def slow_submit(*args, **kwargs):
        release.wait(20)
        return original(*args, **kwargs)

    proc.writer.submit = slow_submit
    return release


def test_http_bounds_concurrent_exports(tmp_path):
    proc = _processor(tmp_path, max_concurrent_exports=1)
    try:
        release = _hold_exports(proc)
        body = make_request(0, 2).SerializeToString()
        first = threading.Thread(target=post, args=(proc, body, AUTH))
        first.start()
        wait_until(lambda: proc.metrics.get("received_spans") == 2, message="first in flight")
        status, headers, _ = post(proc, make_request(10, 2).SerializeToString(), AUTH)
        assert status == 429 and headers["Retry-After"] == "1"
        assert scraped(proc)["llm_margin_concurrency_rejections_total"] == 1
        release.set()
        first.join(10)
        assert post(proc, make_request(20, 2).SerializeToString(), AUTH)[0] == 200
        assert len(stored_span_ids(proc)) == 4
    finally:
        proc.stop()


def _held_request(proc, body: bytes) -> socket.socket:
    """A POST whose headers are sent and body held back: its Content-Length is reserved."""
    sock = socket.create_connection(("127.0.0.1", proc.http.port), timeout=10)
    sock.sendall(
        b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-protobuf\r\n"
        + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    )
    return sock


def _finish(sock: socket.socket, body: bytes) -> bytes:
    """Send the held body; the status line of the answer."""
    with sock:
        sock.sendall(body)
        return sock.makefile("rb").readline()


def test_http_bounds_the_request_bodies_in_memory(tmp_path):
    """Bodies are reserved from max_inflight_body_bytes before they are read: with two held
    mid-upload, a third that does not fit is answered 429 + Retry-After at once (its body
    never read), counted; once they finish, the budget is whole again. A gzip body counts what
    it inflates to as well."""
    proc = _processor(tmp_path, max_body_bytes=1200, max_inflight_body_bytes=2400)
    try:
        bodies = [make_request(n * 10, 2).SerializeToString() for n in (1, 2, 3)]
        assert all(900 < len(b) <= 1200 for b in bodies)
        held = [_held_request(proc, body) for body in bodies[:2]]
        budget = proc.http.body_budget
        wait_until(lambda: budget.in_use == len(bodies[0]) + len(bodies[1]), message="held")
        started = time.monotonic()
        status, headers, _ = post(proc, bodies[2], AUTH)
        assert status == 429 and headers["Retry-After"] == "1"
        assert time.monotonic() - started < 5  # at once, not after the held ones
        assert scraped(proc)["llm_margin_inflight_bytes_rejections_total"] == 1
        # A small gzip body fits, but what it inflates to (reserved as it inflates) does not.
        gzipped = gzip.compress(bodies[2])
        assert len(gzipped) + len(bodies[0]) + len(bodies[1]) <= 2400
        status, headers, _ = post(proc, gzipped, {**AUTH, "Content-Encoding": "gzip"})
        assert status == 429 and headers["Retry-After"] == "1"
        assert metric(proc, "inflight_bytes_rejections") == 2
        assert [_finish(sock, body) for sock, body in zip(held, bodies, strict=False)] == [
            b"HTTP/1.1 200 OK\r\n"
        ] * 2
        wait_until(lambda: budget.in_use == 0, message="released")
        assert post(proc, gzipped, {**AUTH, "Content-Encoding": "gzip"})[0] == 200
        # Released just after the answer is sent: the client may read it first.
        wait_until(lambda: budget.in_use == 0, message="released after success")
        assert stored_span_ids(proc) == {f"{n:016x}" for n in (11, 12, 21, 22, 31, 32)}
    finally:
        proc.stop()


def test_http_releases_the_budget_on_refusals_and_cut_uploads(tmp_path):
    proc = _processor(tmp_path, max_body_bytes=1024, max_inflight_body_bytes=2048)
    try:
        budget = proc.http.body_budget
        assert post(proc, b"garbage", AUTH)[0] == 400
        assert post(proc, b"x" * 2000, AUTH)[0] == 413
        json_type = {"Content-Type": "application/json"}
        assert post(proc, b"[]", {**AUTH, **json_type}, path="/api/query")[0] == 400
        sock = _held_request(proc, b"x" * 1000)
        wait_until(lambda: budget.in_use == 1000, message="held")
        sock.close()  # the upload is cut: its reservation goes with it
        wait_until(lambda: budget.in_use == 0, message="released")
    finally:
        proc.stop()


def _retry_delay(error: grpc.RpcError) -> int:
    """The RetryInfo delay an OTLP client reads, checked in both trailers it may look in."""
    trailers = dict(error.trailing_metadata())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == error.code().value[0]
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]) == retry
    return retry.retry_delay.seconds


def test_grpc_bounds_concurrent_exports_and_counts_refusals(tmp_path):
    """Exports beyond max_concurrent_exports are refused at once, RESOURCE_EXHAUSTED with
    RetryInfo (without it OTLP clients must not retry), and counted; none waits in a queue."""
    proc = _processor(tmp_path, max_concurrent_exports=2)
    try:
        release = _hold_exports(proc)
        metadata = (("authorization", f"Bearer {TOKEN}"),)
        with grpc.insecure_channel(f"127.0.0.1:{proc.grpc.port}") as chan:
            stub = trace_service_pb2_grpc.TraceServiceStub(chan)
            held = [stub.Export.future(make_request(n * 10, 1), metadata=metadata) for n in (1, 2)]
            wait_until(lambda: metric(proc, "received_spans") == 2, message="2 exports held")
            refusals = []
            for n in range(3, 6):
                started = time.monotonic()
                with pytest.raises(grpc.RpcError) as info:
                    stub.Export(make_request(n * 10, 1), metadata=metadata, timeout=10)
                refusals.append((info.value, time.monotonic() - started))
            for error, seconds in refusals:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
                assert _retry_delay(error) >= 1
                assert seconds < 5  # refused at once, not queued behind the held exports
            assert scraped(proc)["llm_margin_concurrency_rejections_total"] == 3
            release.set()
            for future in held:
                future.result(timeout=20)
            stub.Export(make_request(60, 1), metadata=metadata, timeout=20)  # slots freed
        assert stored_span_ids(proc) == {f"{n:016x}" for n in (11, 21, 61)}
    finally:
        release.set()
        proc.stop()


def test_a_burst_of_exports_beyond_the_slots_is_told_to_retry(tmp_path, monkeypatch):
    """More refusals at once than refusal threads: they wait microseconds for one and still
    get RetryInfo. grpcio's own refusal (no RetryInfo) would make a Collector drop the data."""
    from concurrent.futures import ThreadPoolExecutor

    from llm_margin.processor.receiver import otlp_grpc

    monkeypatch.setattr(otlp_grpc, "REFUSAL_WORKERS", 1)
    proc = _processor(tmp_path, max_concurrent_exports=1)
    try:
        release = _hold_exports(proc)
        metadata = (("authorization", f"Bearer {TOKEN}"),)
        with grpc.insecure_channel(f"127.0.0.1:{proc.grpc.port}") as chan:
            stub = trace_service_pb2_grpc.TraceServiceStub(chan)
            held = stub.Export.future(make_request(10, 1), metadata=metadata)
            wait_until(lambda: metric(proc, "received_spans") == 1, message="export held")

            def export(n: int) -> grpc.RpcError:
                with pytest.raises(grpc.RpcError) as info:
                    stub.Export(make_request(n, 1), metadata=metadata, timeout=10)
                return info.value

            with ThreadPoolExecutor(24) as senders:
                errors = list(senders.map(export, range(100, 124)))
            assert [e.code() for e in errors] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 24
            assert all(_retry_delay(e) >= 1 for e in errors)
            release.set()
            held.result(timeout=20)
    finally:
        release.set()
        proc.stop()


def test_grpc_pool_refuses_beyond_its_size_and_counts_it(tmp_path, monkeypatch):
    """The last resort: when even the refusal threads are busy, grpcio refuses the RPC
    itself (it used to queue it without bound), and the refusal is counted too."""
    from llm_margin.processor.receiver import otlp_grpc

    monkeypatch.setattr(otlp_grpc, "REFUSAL_WORKERS", 0)  # pool = export slots
    monkeypatch.setattr(otlp_grpc, "WAITING_RPCS", 0)  # and nothing may wait for a thread
    proc = _processor(tmp_path, max_concurrent_exports=1)
    try:
        release = _hold_exports(proc)
        metadata = (("authorization", f"Bearer {TOKEN}"),)
        with grpc.insecure_channel(f"127.0.0.1:{proc.grpc.port}") as chan:
            stub = trace_service_pb2_grpc.TraceServiceStub(chan)
            held = stub.Export.future(make_request(10, 1), metadata=metadata)
            wait_until(lambda: metric(proc, "received_spans") == 1, message="export held")
            with pytest.raises(grpc.RpcError) as info:
                stub.Export(make_request(20, 1), metadata=metadata, timeout=5)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert metric(proc, "concurrency_rejections") == 1
            release.set()
            held.result(timeout=20)
            stub.Export(make_request(30, 1), metadata=metadata, timeout=20)
        assert stored_span_ids(proc) == {f"{n:016x}" for n in (11, 31)}
    finally:
        release.set()
        proc.stop()


def test_api_query_is_read_only_for_every_statement(guarded, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top-secret-value\n")
    for sql in (
        f"SELECT * FROM file('{secret}', 'LineAsString'); SELECT 1",
        "DROP TABLE llm_calls; SELECT 1",
        f"INSERT INTO FUNCTION file('{tmp_path}/out.csv', 'CSV') SELECT 1; SELECT 1",
    ):
        body = json.dumps({"sql": sql}).encode()
        status, _, reply = post(
            guarded, body, dict(AUTH, **{"Content-Type": "application/json"}), path="/api/query"
        )
        assert status == 400, (sql, reply)
        assert b"top-secret" not in reply and b"readonly" in reply.lower()
    assert guarded.store.query("EXISTS TABLE llm_calls").rows == [(1,)]
    assert not (tmp_path / "out.csv").exists()
    body = json.dumps({"sql": "SELECT count() FROM llm_calls FINAL"}).encode()
    status, _, reply = post(
        guarded, body, dict(AUTH, **{"Content-Type": "application/json"}), path="/api/query"
    )
    assert status == 200 and json.loads(reply)["rows"] == [[0]]


def test_ack_timeout_answers_retry_and_the_resend_is_not_counted_twice(tmp_path):
    proc = _processor(tmp_path, ack_timeout_seconds=0.001)
    try:
        body = make_request(500, 6).SerializeToString()
        status, headers, _ = post(proc, body, AUTH)
        assert status == 503 and headers["Retry-After"] == "1"
        assert metric(proc, "ack_timeouts") == 1
        wait_until(lambda: len(stored_span_ids(proc)) == 6, message="written anyway")
        post(proc, body, AUTH)  # the exporter's retry
        wait_until(lambda: metric(proc, "stored_calls") == 12, message="resend written")
        rows = proc.store.query("SELECT count(), uniqExact(span_id) FROM llm_calls FINAL").rows
        assert rows == [(6, 6)]
    finally:
        proc.stop()


def test_http_takes_a_burst_of_new_connections(guarded):
    """A Collector opens its exporter's connections at once; none may be reset (the standard
    library's listen backlog of 5 reset some)."""
    import http.client

    assert guarded.http._server.request_queue_size >= 64
    body = make_request(0, 2).SerializeToString()
    connections = [
        http.client.HTTPConnection("127.0.0.1", guarded.http.port, timeout=30) for _ in range(48)
    ]
    for connection in connections:
        connection.connect()
    statuses = []
    for connection in connections:
        connection.request(
            "POST", "/v1/traces", body, {**AUTH, "Content-Type": "application/x-protobuf"}
        )
    for connection in connections:
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
        connection.close()
    assert set(statuses) <= {200, 429} and 200 in statuses
