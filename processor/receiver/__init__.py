"""OTLP receivers (gRPC and HTTP) and the request decoding they share."""
