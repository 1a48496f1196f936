"""Processor configuration: read once at start (YAML file + CLI flags + env), validated.

Fields (YAML keys; the CLI flag of the same name, where there is one, overrides them; see
docs/operations.md for which keys are file-only):

- ``data_dir``: embedded store directory (chDB). Default ``./llm-margin-data``.
- ``clickhouse_url``: ClickHouse server URL (``http://user:pass@host:8123``); when set, the
  embedded store is not used.
- ``database``: database name. Default ``llm_margin``.
- ``create_schema``: create tables at start. Turn off where a DBA owns the schema.
- ``cluster_name``: a ClickHouse cluster (a ``remote_servers`` entry) to create the schema on,
  ``ON CLUSTER``, from ``clickhouse/cluster/`` (replicated shard-local tables behind Distributed
  ones; see docs/deployment.md). Server mode only. Default: unset, single server.
- ``host``: address the receivers bind. Default ``127.0.0.1``.
- ``otlp_grpc_port`` / ``otlp_http_port``: default 4317 / 4318 (0 picks a free port).
- ``auth_token``: bearer token required on every endpoint but /healthz. Also from the
  environment variable ``LLM_MARGIN_AUTH_TOKEN``.
- ``max_body_bytes``: largest accepted request, compressed or not. Default 16 MiB.
- ``max_inflight_body_bytes``: request bodies each receiver holds in memory at once, inflated
  bytes included. OTLP/HTTP reserves each body from it before reading it and answers 429 with
  Retry-After when it cannot; gRPC derives from it how many RPCs grpcio may hold (at least
  the export slots and refusal threads plus a few). Default 256 MiB, or twice
  ``max_body_bytes`` when that is more; at least twice ``max_body_bytes`` (a compressed body
  and what it inflates to are held together).
- ``queue_max_records``: bound of the write queue; beyond it senders are told to retry.
- ``max_concurrent_exports``: export requests each receiver decodes and holds until durable
  at once; beyond it senders are told to retry (HTTP 429, gRPC RESOURCE_EXHAUSTED with
  RetryInfo), never queued. Default 32, 1 to 1024.
- ``ack_timeout_seconds``: how long a receiver waits for its batch to be stored.
- ``billing_file``: plans and customers YAML (see ``billing.py``), loaded at start.
- ``spool_dir``: where batches wait on disk while the store is unavailable. Default
  ``<data_dir>/spool`` (embedded) or ``./llm-margin-spool`` (server mode).
- ``spool_max_bytes``: bound of the spool; beyond it senders are told to retry. Default 1 GiB.
- ``drain_seconds``: on SIGTERM, how long to finish queued writes before exiting. Default 10.
- ``clickhouse_http_port``: serve the embedded store over the ClickHouse HTTP interface on this
  port (clickhouse-connect, Grafana, curl). Off unless set; 0 picks a free port.
- ``price_overlay``: price overlay YAML (custom models, discounts, service-tier multipliers,
  off-peak windows, effective dates; see docs/pricing-and-linking.md). Default: genai-prices
  alone.
- ``task_finalize_seconds``: how long a task whose root span has not arrived waits before its
  ``llm_tasks`` row is written with outcome ``unknown`` (a late root still corrects it).
  Default 0: at once.
- ``max_result_rows`` / ``max_result_bytes``: bound of one answer of the read-only SQL paths
  (``POST /api/query``, which read commands use while ``serve`` runs, and the read-only
  ClickHouse HTTP interface), as ClickHouse counts them (rows; uncompressed bytes of the
  result blocks). The engine stops a query whose answer passes them; the caller gets 413 (the
  ClickHouse HTTP interface: ``Code: 396``) naming the limit. Defaults 500,000 rows and
  32 MiB; 0 turns one off. The project's commands page (``reprice``) or aggregate in SQL.
- ``clickhouse_http_writable``: allow writes (INSERT, DDL) through that interface. Default
  false: every query runs with ``readonly=1``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Any

import yaml
from llm_margin.processor.cluster_schema import validate_cluster_name  # cluster (issue 7)
from llm_margin.processor.readonly_sql import (
    DEFAULT_MAX_RESULT_BYTES,
    DEFAULT_MAX_RESULT_ROWS,
    ResultLimits,
)

# What clickhouse_url (and the commands' --clickhouse-url) may start with.
CLICKHOUSE_URL_SCHEMES = ("http://", "https://", "clickhouse://", "chdb:")

# Exports each receiver decodes and holds until durable at once; beyond it senders are told
# to retry. A Collector's exporter sends 10 at once by default (sending_queue num_consumers).
MAX_CONCURRENT_EXPORTS = 32
# Request bodies each receiver holds in memory at once; beyond it senders are told to retry.
MAX_INFLIGHT_BODY_BYTES = 256 * 1024 * 1024


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message says which and why."""


def _is_int(value: Any) -> bool:
    # YAML reads `true` / `yes` as a bool, and Python counts a bool as the integer 1 or 0:
    # `otlp_grpc_port: true` must be refused, not bound to port 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    # YAML reads .nan and .inf as floats: no wait or timeout means either.
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


# Text fields: a YAML number or list there failed later with a traceback or a misleading
# message (an int path opened that file descriptor).
_TEXT_FIELDS = ("data_dir", "database", "host")
_OPTIONAL_TEXT_FIELDS = (
    "clickhouse_url",
    "auth_token",
    "billing_file",
    "spool_dir",
    "cluster_name",
    "price_overlay",
)


@dataclass
class ServeConfig:
    data_dir: str = "./llm-margin-data"
    clickhouse_url: str | None = None
    database: str = "llm_margin"
    create_schema: bool = True
    host: str = "127.0.0.1"
    otlp_grpc_port: int = 4317
    otlp_http_port: int = 4318
    auth_token: str | None = None
    max_body_bytes: int = 16 * 1024 * 1024
    queue_max_records: int = 200_000
    max_concurrent_exports: int = MAX_CONCURRENT_EXPORTS
    # None: MAX_INFLIGHT_BODY_BYTES, or twice max_body_bytes when that is more (validate()).
    max_inflight_body_bytes: int | None = None
    ack_timeout_seconds: float = 10.0
    billing_file: str | None = None
    spool_dir: str | None = None
    spool_max_bytes: int = 1024 * 1024 * 1024
    drain_seconds: float = 10.0
    clickhouse_http_port: int | None = None
    clickhouse_http_writable: bool = False
    cluster_name: str | None = None  # cluster (issue 7)
    price_overlay: str | None = None  # pricing (issue 4)
    task_finalize_seconds: float = 0.0  # linking (issue 4)
    max_result_rows: int = DEFAULT_MAX_RESULT_ROWS
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES

    @property
    def result_limits(self) -> ResultLimits:
        """The bound of one answer of /api/query and the read-only ClickHouse HTTP interface."""
        return ResultLimits(self.max_result_rows, self.max_result_bytes)

    @property
    def resolved_spool_dir(self) -> str:
        if self.spool_dir:
            return self.spool_dir
        if self.clickhouse_url:
            return "./llm-margin-spool"
        return os.path.join(self.data_dir, "spool")

    def inflight_body_bytes(self) -> int:
        """``max_inflight_body_bytes``, or its default when not given: a larger
        ``max_body_bytes`` raises the default rather than refusing to start. (A config built
        in code need not have been validated.)"""
        if self.max_inflight_body_bytes is not None:
            return self.max_inflight_body_bytes
        return max(MAX_INFLIGHT_BODY_BYTES, 2 * self.max_body_bytes)

    def validate(self) -> ServeConfig:
        for name in _TEXT_FIELDS + _OPTIONAL_TEXT_FIELDS:
            value = getattr(self, name)
            if value is None and name in _OPTIONAL_TEXT_FIELDS:
                continue
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
        for name in ("otlp_grpc_port", "otlp_http_port"):
            port = getattr(self, name)
            if not _is_int(port) or not 0 <= port <= 65535:
                raise ConfigError(f"{name} must be a port number 0-65535, got {port!r}")
        if self.otlp_grpc_port and self.otlp_grpc_port == self.otlp_http_port:
            raise ConfigError("otlp_grpc_port and otlp_http_port must differ")
        # gRPC takes its message limit as a C int: past it, serve failed with a traceback.
        if not _is_int(self.max_body_bytes) or not 1024 <= self.max_body_bytes < 2**31:
            raise ConfigError(
                f"max_body_bytes must be 1024 to {2**31 - 1} (2 GiB - 1), "
                f"got {self.max_body_bytes!r}"
            )
        if not _is_int(self.queue_max_records) or self.queue_max_records < 1:
            raise ConfigError("queue_max_records must be a positive integer")
        # Each slot is a thread and may hold a max_body_bytes request in memory.
        if not _is_int(self.max_concurrent_exports) or not 1 <= self.max_concurrent_exports <= 1024:
            raise ConfigError(
                f"max_concurrent_exports must be 1 to 1024, got {self.max_concurrent_exports!r}"
            )
        if self.max_inflight_body_bytes is None:
            self.max_inflight_body_bytes = self.inflight_body_bytes()
        # Below twice max_body_bytes a large compressed request (its body and what it inflates
        # to) could never fit, and would be answered "retry" forever.
        if (
            not _is_int(self.max_inflight_body_bytes)
            or self.max_inflight_body_bytes < 2 * self.max_body_bytes
        ):
            raise ConfigError(
                "max_inflight_body_bytes must be an integer at least twice max_body_bytes "
                f"({2 * self.max_body_bytes}), got {self.max_inflight_body_bytes!r}"
            )
        if not _is_number(self.ack_timeout_seconds) or self.ack_timeout_seconds <= 0:
            raise ConfigError("ack_timeout_seconds must be a positive number")
        if self.clickhouse_url and not self.clickhouse_url.startswith(CLICKHOUSE_URL_SCHEMES):
            raise ConfigError(f"clickhouse_url must be an http(s) URL, got {self.clickhouse_url!r}")
        if self.billing_file and not os.path.isfile(self.billing_file):
            raise ConfigError(f"billing_file {self.billing_file!r} does not exist")
        if self.billing_file:  # read now: a bad file was a traceback once the store was open
            from llm_margin.processor.billing import load_billing_file
            from llm_margin.processor.budgets.config import load_budget_config

            load_billing_file(self.billing_file)
            load_budget_config(self.billing_file)
        # --- pricing (issue 4): parse the overlay now so a bad file fails at start ---
        if self.price_overlay:
            from llm_margin.processor.pricing.overlay import OverlayError, load_overlay

            try:
                load_overlay(self.price_overlay)
            except OverlayError as exc:
                raise ConfigError(f"price_overlay: {exc}") from exc
        if not _is_number(self.task_finalize_seconds) or self.task_finalize_seconds < 0:
            raise ConfigError("task_finalize_seconds must be a number >= 0")
        # --- end pricing ---
        if not _is_int(self.spool_max_bytes) or self.spool_max_bytes < 1024 * 1024:
            raise ConfigError(f"spool_max_bytes must be >= 1 MiB, got {self.spool_max_bytes!r}")
        if not _is_number(self.drain_seconds) or self.drain_seconds <= 0:
            raise ConfigError("drain_seconds must be a positive number")
        port = self.clickhouse_http_port
        if port is not None:
            if not _is_int(port) or not 0 <= port <= 65535:
                raise ConfigError(f"clickhouse_http_port must be a port number, got {port!r}")
            if port and port in (self.otlp_grpc_port, self.otlp_http_port):
                raise ConfigError("clickhouse_http_port must differ from the OTLP ports")
            if self.clickhouse_url:
                raise ConfigError(
                    "clickhouse_http_port serves the embedded store; it cannot be combined "
                    "with clickhouse_url (use the server's own HTTP interface)"
                )
        for name in ("max_result_rows", "max_result_bytes"):
            value = getattr(self, name)
            # ClickHouse reads the setting as a UInt64; 0 is "no limit".
            if not _is_int(value) or not 0 <= value < 2**63:
                raise ConfigError(f"{name} must be an integer >= 0 (0: no limit), got {value!r}")
        if not isinstance(self.clickhouse_http_writable, bool):
            raise ConfigError("clickhouse_http_writable must be true or false")
        if (
            self.clickhouse_http_writable
            and self.clickhouse_http_port is not None
            and not self.auth_token
            and self.host not in ("127.0.0.1", "localhost", "::1")
        ):
            # Writable means full SQL, file() and url() included: never open to a network.
            raise ConfigError("clickhouse_http_writable on a non-loopback host needs auth_token")
        if not isinstance(self.create_schema, bool):
            raise ConfigError("create_schema must be true or false")
        # --- cluster (issue 7) ---
        if self.cluster_name is not None:
            if not self.clickhouse_url:
                raise ConfigError("cluster_name needs clickhouse_url (a cluster is server mode)")
            try:
                validate_cluster_name(self.cluster_name)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        # --- end cluster ---
        if self.auth_token is not None and len(self.auth_token) < 8:
            raise ConfigError("auth_token must be at least 8 characters")
        return self


def load_serve_config(path: str | None, overrides: dict[str, Any]) -> ServeConfig:
    """Defaults < YAML file < environment < CLI overrides (None values are ignored)."""
    values: dict[str, Any] = {}
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                document = yaml.safe_load(handle) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text: {exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(document, dict):
            raise ConfigError(f"config file {path} must be a mapping")
        known = {f.name for f in fields(ServeConfig)}
        unknown = sorted(set(document) - known)
        if unknown:
            raise ConfigError(f"config file {path}: unknown keys {unknown}; known: {sorted(known)}")
        values.update(document)
        # Relative paths in the file are relative to the file.
        base = os.path.dirname(os.path.abspath(path))
        for key in ("billing_file", "data_dir", "spool_dir", "price_overlay"):
            if isinstance(values.get(key), str) and not os.path.isabs(values[key]):
                values[key] = os.path.join(base, values[key])
    token = os.environ.get("LLM_MARGIN_AUTH_TOKEN")
    if token:
        values["auth_token"] = token
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ServeConfig(**values).validate()
