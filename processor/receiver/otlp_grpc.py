"""OTLP/gRPC receiver: the TraceService Export method over grpcio.

The method is registered with a raw-bytes deserializer so a malformed body is answered
INVALID_ARGUMENT by us (grpcio's own deserialisation failure would say INTERNAL, which some
exporters retry forever). Backpressure is UNAVAILABLE with a ``google.rpc.RetryInfo``, both in
the standard ``grpc-status-details-bin`` trailer and in ``google.rpc.retryinfo-bin``, the key
the OpenTelemetry Python exporter reads. Oversized messages are refused by grpcio itself with
RESOURCE_EXHAUSTED (``grpc.max_receive_message_length``).

Concurrency is bounded, and nothing queues: at most ``max_concurrent_exports`` exports are
decoded and waiting for their batch to be durable at once. One more is refused at once with
RESOURCE_EXHAUSTED and a RetryInfo (without RetryInfo, OTLP clients such as the Collector
must not retry RESOURCE_EXHAUSTED, and would drop the data). Refusing takes a thread, so the
pool has ``REFUSAL_WORKERS`` more threads than export slots. grpcio's own
``maximum_concurrent_rpcs`` caps the RPCs it holds (receiving, waiting for a thread, running)
at the pool's size plus ``WAITING_RPCS``: a burst of RPCs waits briefly for a refusal thread
(each answers in microseconds) and is still told to retry. Only beyond that cap grpcio refuses
by itself, RESOURCE_EXHAUSTED without RetryInfo (which senders do not retry), instead of
queueing without bound. Both kinds of refusal are counted in ``concurrency_rejections``.

Each held RPC may hold a message of ``max_message_bytes``, received before our handler runs,
so the cap is also what bounds memory: ``max_inflight_body_bytes`` sizes the waiting room
(``body_budget.grpc_rpc_cap``), down to a floor of the pool plus ``MIN_WAITING_RPCS``. Worst
case: ``cap × max_message_bytes``.
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from llm_margin.processor.auth import bearer_matches
from llm_margin.processor.config import MAX_CONCURRENT_EXPORTS, MAX_INFLIGHT_BODY_BYTES
from llm_margin.processor.metrics import Metrics
from llm_margin.processor.receiver.body_budget import grpc_rpc_cap
from llm_margin.processor.receiver.decode import PayloadError, parse_protobuf
from llm_margin.processor.receiver.ingest import RETRY_AFTER_SECONDS, Ingestor, IngestOutcome
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

log = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
EXPORT_METHOD = f"/{SERVICE}/Export"
# Pool threads beyond the export slots: they only answer "retry later", so a refusal never
# waits behind exports that hold every slot (each may wait ack_timeout_seconds).
REFUSAL_WORKERS = 8
# RPCs grpcio may hold beyond its threads: a burst (or slow uploads, which count from their
# first byte) waits for a refusal thread and gets RetryInfo, rather than grpcio's own refusal,
# which has none and makes senders drop the data. Each holds one message: fewer when
# max_inflight_body_bytes cannot hold this many (grpc_rpc_cap).
WAITING_RPCS = 128
BUSY_MESSAGE = "too many concurrent exports; retry later"


def retry_trailers(
    message: str, seconds: int, code: int = code_pb2.UNAVAILABLE
) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata telling a gRPC client to retry after ``seconds``; ``code`` (a
    ``google.rpc.Code``) must be the status code the RPC is aborted with."""
    info = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=seconds))
    status = status_pb2.Status(code=code, message=message)
    status.details.add().Pack(info)
    return (
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", info.SerializeToString()),
    )


class _TraceService:
    def __init__(
        self,
        ingestor: Ingestor,
        metrics: Metrics,
        auth_token: str | None,
        max_concurrent_exports: int,
    ) -> None:
        self._ingestor = ingestor
        self._metrics = metrics
        self._auth_token = auth_token
        self._slots = threading.BoundedSemaphore(max_concurrent_exports)

    def export(self, body: bytes, context: grpc.ServicerContext) -> bytes:
        if self._auth_token is not None:
            given = dict(context.invocation_metadata()).get("authorization", "")
            if not bearer_matches(str(given), self._auth_token):
                self._metrics.inc("rejected_requests")
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        if not self._slots.acquire(blocking=False):
            self._metrics.inc("concurrency_rejections")
            context.set_trailing_metadata(
                retry_trailers(BUSY_MESSAGE, RETRY_AFTER_SECONDS, code_pb2.RESOURCE_EXHAUSTED)
            )
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, BUSY_MESSAGE)
        try:
            return self._export(body, context)
        finally:
            self._slots.release()

    def _export(self, body: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            request = parse_protobuf(body)
        except PayloadError as exc:
            self._metrics.inc("rejected_requests")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            result = self._ingestor.ingest(request, body)
        except Exception:  # our bug: logged and counted, as the HTTP receiver's 500 is
            log.exception("error handling an OTLP/gRPC export")
            self._metrics.inc("internal_errors")
            context.abort(grpc.StatusCode.INTERNAL, "internal error (see the processor's log)")
        if result.outcome is not IngestOutcome.STORED:
            context.set_trailing_metadata(
                retry_trailers(result.message, result.retry_after_seconds)
            )
            context.abort(grpc.StatusCode.UNAVAILABLE, result.message)
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.message
        return response.SerializeToString()


class _Pool(futures.ThreadPoolExecutor):
    """The server's thread pool, counting the RPCs it holds (submitted, not yet finished)."""

    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="llm-margin-grpc")
        self._held_lock = threading.Lock()
        self.held = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> futures.Future:
        with self._held_lock:
            self.held += 1
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        return future

    def _release(self, _future: Any) -> None:
        with self._held_lock:
            self.held -= 1


class _ExportHandler(grpc.GenericRpcHandler):
    """Routes Export to the service and counts the RPCs grpcio refuses on its own.

    grpcio asks its handlers for an RPC's method before it compares the RPCs it holds with
    ``maximum_concurrent_rpcs`` (and tells nobody but the client when that refuses it). The
    pool's count is never above grpcio's (an RPC leaves the pool's books a moment before
    grpcio's), so an RPC counted here is always refused; one arriving in that moment may be
    refused uncounted.
    """

    def __init__(self, handler: Any, pool: _Pool, limit: int, metrics: Metrics) -> None:
        self._handler = handler
        self._pool = pool
        self._limit = limit
        self._metrics = metrics

    def service(self, handler_call_details: Any) -> Any:
        if handler_call_details.method != EXPORT_METHOD:
            return None
        if self._pool.held >= self._limit:
            self._metrics.inc("concurrency_rejections")
        return self._handler


class OtlpGrpcServer:
    def __init__(
        self,
        host: str,
        port: int,
        ingestor: Ingestor,
        metrics: Metrics,
        *,
        auth_token: str | None = None,
        max_message_bytes: int = 16 * 1024 * 1024,
        max_concurrent_exports: int = MAX_CONCURRENT_EXPORTS,
        max_inflight_body_bytes: int = MAX_INFLIGHT_BODY_BYTES,
    ) -> None:
        # grpcio queues RPCs for a busy pool without bound unless capped; exports never hold
        # the refusal threads, so what waits for a thread waits microseconds.
        threads = max_concurrent_exports + REFUSAL_WORKERS
        pool = self._pool = _Pool(threads)
        held_at_most = self.max_rpcs = grpc_rpc_cap(
            max_inflight_body_bytes, max_message_bytes, threads, WAITING_RPCS
        )
        self._server = grpc.server(
            pool,
            maximum_concurrent_rpcs=held_at_most,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                # gRPC sets SO_REUSEPORT by default: a second processor on the same port would
                # start without error and the kernel would split exports between the two.
                ("grpc.so_reuseport", 0),
            ],
        )
        service = _TraceService(ingestor, metrics, auth_token, max_concurrent_exports)
        handler = grpc.unary_unary_rpc_method_handler(
            service.export, request_deserializer=None, response_serializer=None
        )
        self._server.add_generic_rpc_handlers(
            (_ExportHandler(handler, pool, held_at_most, metrics),)
        )
        try:
            self.port = self._server.add_insecure_port(f"{host}:{port}")
        except RuntimeError:  # grpcio >= 1.52 raises; older versions return port 0
            self.port = 0
        if self.port == 0:
            raise OSError(f"cannot listen for OTLP gRPC on {host}:{port}: address in use?")

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float = 5.0) -> None:
        self._server.stop(grace).wait(grace + 1)
        self._pool.shutdown(wait=False)  # grpcio leaves a pool it was given running
