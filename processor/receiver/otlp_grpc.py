"""OTLP/gRPC receiver: the TraceService Export method over grpcio."""

from __future__ import annotations

import hmac
from concurrent import futures
from typing import Any

import grpc
from llm_margin.processor.metrics import Metrics
from llm_margin.processor.receiver.ingest import Ingestor, IngestOutcome
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, ingestor: Ingestor, metrics: Metrics, auth_token: str | None) -> None:
        self._ingestor = ingestor
        self._metrics = metrics
        self._expected = f"Bearer {auth_token}" if auth_token else None

    def Export(self, request: Any, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        if self._expected is not None:
            given = dict(context.invocation_metadata()).get("authorization", "")
            if not hmac.compare_digest(given.encode(), self._expected.encode()):
                self._metrics.inc("rejected_requests")
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        result = self._ingestor.ingest(request)
        if result.outcome is IngestOutcome.RETRY_LATER:
            # UNAVAILABLE is retryable for every OTLP exporter.
            context.abort(grpc.StatusCode.UNAVAILABLE, result.message)
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.message
        return response


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
            options=[("grpc.max_receive_message_length", max_message_bytes)],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceService(ingestor, metrics, auth_token), self._server
        )
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot bind OTLP gRPC on {host}:{port}")

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float = 5.0) -> None:
        self._server.stop(grace).wait(grace + 1)
