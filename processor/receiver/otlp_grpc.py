"""OTLP/gRPC receiver: the TraceService Export method over grpcio.

The method is registered with a raw-bytes deserializer so a malformed body is answered
INVALID_ARGUMENT by us (grpcio's own deserialisation failure would say INTERNAL, which some
exporters retry forever). Backpressure is UNAVAILABLE with a ``google.rpc.RetryInfo``, both in
the standard ``grpc-status-details-bin`` trailer and in ``google.rpc.retryinfo-bin``, the key
the OpenTelemetry Python exporter reads. Oversized messages are refused by grpcio itself with
RESOURCE_EXHAUSTED (``grpc.max_receive_message_length``).
"""

from __future__ import annotations

from concurrent import futures

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from llm_margin.processor.auth import bearer_matches
from llm_margin.processor.metrics import Metrics
from llm_margin.processor.receiver.decode import PayloadError, parse_protobuf
from llm_margin.processor.receiver.ingest import Ingestor, IngestOutcome
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


def retry_trailers(message: str, seconds: int) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata telling a gRPC client to retry after ``seconds``."""
    info = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=seconds))
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message)
    status.details.add().Pack(info)
    return (
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", info.SerializeToString()),
    )


class _TraceService:
    def __init__(self, ingestor: Ingestor, metrics: Metrics, auth_token: str | None) -> None:
        self._ingestor = ingestor
        self._metrics = metrics
        self._auth_token = auth_token

    def export(self, body: bytes, context: grpc.ServicerContext) -> bytes:
        if self._auth_token is not None:
            given = dict(context.invocation_metadata()).get("authorization", "")
            if not bearer_matches(str(given), self._auth_token):
                self._metrics.inc("rejected_requests")
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        try:
            request = parse_protobuf(body)
        except PayloadError as exc:
            self._metrics.inc("rejected_requests")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        result = self._ingestor.ingest(request, body)
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
        workers: int = 8,
    ) -> None:
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm-margin-grpc"),
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                # gRPC sets SO_REUSEPORT by default: a second processor on the same port would
                # start without error and the kernel would split exports between the two.
                ("grpc.so_reuseport", 0),
            ],
        )
        service = _TraceService(ingestor, metrics, auth_token)
        handler = grpc.unary_unary_rpc_method_handler(
            service.export, request_deserializer=None, response_serializer=None
        )
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),)
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
