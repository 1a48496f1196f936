"""`llm-margin serve`: receive OTLP, price, link, store."""

from __future__ import annotations

import argparse

from llm_margin.processor.commands._common import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the processor (OTLP gRPC + HTTP receivers)",
        description="Receive OTLP traces, price every LLM call, link tasks, store rows.",
    )
    parser.add_argument("--config", help="YAML config file (see docs: every field)")
    parser.add_argument("--data-dir", help="embedded store directory (default ./llm-margin-data)")
    parser.add_argument("--clickhouse-url", help="ClickHouse server URL (server mode)")
    parser.add_argument("--database", help="database name (default llm_margin)")
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--otlp-grpc-port", type=int, help="OTLP/gRPC port (default 4317)")
    parser.add_argument("--otlp-http-port", type=int, help="OTLP/HTTP port (default 4318)")
    parser.add_argument("--billing-file", help="plans and customers YAML to load at start")
    parser.add_argument(
        "--auth-token",
        help="bearer token required on every endpoint but /healthz (or env LLM_MARGIN_AUTH_TOKEN)",
    )
    parser.add_argument("--max-body-bytes", type=int, help="largest request (default 16 MiB)")
    parser.add_argument(
        "--max-concurrent-exports",
        type=int,
        help="exports each receiver handles at once (default 32); beyond it senders retry",
    )
    parser.add_argument(
        "--max-inflight-body-bytes",
        type=int,
        help="request bodies each receiver holds in memory at once (default 256 MiB or "
        "2 x --max-body-bytes, whichever is more); beyond it senders retry",
    )
    parser.add_argument(
        "--queue-max-records",
        type=int,
        help="write queue bound in records (default 200000); beyond it senders retry",
    )
    parser.add_argument(
        "--spool-dir", help="on-disk spool while the store is down (default <data-dir>/spool)"
    )
    parser.add_argument("--spool-max-bytes", type=int, help="spool bound (default 1 GiB)")
    parser.add_argument(
        "--drain-seconds", type=float, help="on SIGTERM, time to finish writes (default 10)"
    )
    parser.add_argument(
        "--clickhouse-http-port",
        type=int,
        help="serve the embedded store over the ClickHouse HTTP interface on this port",
    )
    parser.add_argument(
        "--clickhouse-http-writable",
        action="store_const",
        const=True,
        help="allow INSERT/DDL through the ClickHouse HTTP interface (default read-only)",
    )
    parser.add_argument(
        "--max-result-rows",
        type=int,
        help="largest answer, in rows, of /api/query (read commands while serve runs) and "
        "the read-only ClickHouse HTTP interface (default 500000; 0: no limit)",
    )
    parser.add_argument(
        "--max-result-bytes",
        type=int,
        help="largest answer of those, in uncompressed bytes (default 32 MiB; 0: no limit)",
    )
    parser.add_argument(  # pricing (issue 4)
        "--price-overlay",
        help="price overlay YAML (custom models, discounts, multipliers of service tiers, speed "
        "modes, inference geographies and traffic types, off-peak windows, dates)",
    )
    parser.add_argument(  # linking (issue 4)
        "--task-finalize-seconds",
        type=float,
        help="wait this long for a task's root span before writing it with outcome unknown",
    )
    parser.add_argument(  # cluster (issue 7)
        "--cluster-name", help="create the schema ON CLUSTER from clickhouse/cluster/ (server mode)"
    )
    parser.add_argument(
        "--no-create-schema",
        dest="create_schema",
        action="store_const",
        const=False,
        help="do not create tables (a DBA owns the schema)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from llm_margin.processor.config import ConfigError, load_serve_config
    from llm_margin.processor.server import serve_forever

    try:
        config = load_serve_config(
            args.config,
            {
                "data_dir": args.data_dir,
                "clickhouse_url": args.clickhouse_url,
                "database": args.database,
                "host": args.host,
                "otlp_grpc_port": args.otlp_grpc_port,
                "otlp_http_port": args.otlp_http_port,
                "billing_file": args.billing_file,
                "create_schema": args.create_schema,
                "auth_token": args.auth_token,
                "max_body_bytes": args.max_body_bytes,
                "max_concurrent_exports": args.max_concurrent_exports,
                "max_inflight_body_bytes": args.max_inflight_body_bytes,
                "queue_max_records": args.queue_max_records,
                "spool_dir": args.spool_dir,
                "spool_max_bytes": args.spool_max_bytes,
                "drain_seconds": args.drain_seconds,
                "clickhouse_http_port": args.clickhouse_http_port,
                "clickhouse_http_writable": args.clickhouse_http_writable,
                "max_result_rows": args.max_result_rows,
                "max_result_bytes": args.max_result_bytes,
                "cluster_name": args.cluster_name,  # cluster (issue 7)
                "price_overlay": args.price_overlay,  # pricing (issue 4)
                "task_finalize_seconds": args.task_finalize_seconds,  # linking (issue 4)
            },
        )
    except ConfigError as exc:
        raise CommandError(f"configuration error: {exc}") from exc
    from llm_margin.processor.storage import SchemaError, StoreLockedError

    try:
        return serve_forever(config)
    # start-up failures the user can fix (a port in use, a store held by another process):
    # one line and exit 2, not a traceback
    except (SchemaError, StoreLockedError, OSError) as exc:
        raise CommandError(str(exc)) from exc
