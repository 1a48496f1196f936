"""`llm-margin serve`: wire the store, the writer and both receivers; run until signalled."""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time
from typing import Any

from llm_margin.processor.billing import load_billing_file, store_billing
from llm_margin.processor.config import ServeConfig
from llm_margin.processor.metrics import Metrics
from llm_margin.processor.pipeline import Pipeline
from llm_margin.processor.pricing import PriceBook, default_price_book
from llm_margin.processor.receiver.ingest import Ingestor
from llm_margin.processor.receiver.otlp_grpc import OtlpGrpcServer
from llm_margin.processor.receiver.otlp_http import OtlpHttpServer
from llm_margin.processor.remote import parameters_from_wire, remove_state, write_state
from llm_margin.processor.spool import Spool
from llm_margin.processor.storage import QueryResult, Store
from llm_margin.processor.writer import BatchWriter

log = logging.getLogger(__name__)

READ_ONLY_SETTINGS = "readonly"
# Alerts waiting for the webhook, kept across restarts (in the spool directory).
WEBHOOK_STATE_FILE = "webhook-pending.json"


class Processor:
    """The running service. ``start()`` binds everything; ``stop()`` drains and releases."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.store = Store.open(
            data_dir=config.data_dir,
            clickhouse_url=config.clickhouse_url,
            database=config.database,
            create_schema=config.create_schema,
            cluster=config.cluster_name,  # cluster (issue 7)
        )
        if not config.create_schema:
            try:  # fail at start, not batch after batch into the spool
                self.store.verify_schema()
            except Exception:
                self.store.close()
                raise
            if not self.store.tasks_by_start_filled():
                # not fatal (a hand-built store may be mid-migration), but `report features`
                # leaves out the tasks it lacks until the DBA runs the back-fill
                log.warning(
                    "llm_tasks_by_start lacks the tasks stored before it existed, so `report "
                    "features` leaves them out: run clickhouse/backfill_tasks_by_start.sql "
                    "once, then ALTER TABLE llm_tasks_by_start MODIFY COMMENT '%s' "
                    "(docs/deployment.md)",
                    self.store.TASKS_BY_START_FILLED,
                )
        if config.billing_file:
            plans, customers = load_billing_file(config.billing_file)
            store_billing(self.store, plans, customers)
        # --- linking (issue 4): root-less tasks finalised after a window ---
        from llm_margin.processor.linking import TaskFinalizer

        self.store.task_finalize_seconds = float(config.task_finalize_seconds)
        self.task_finalizer = TaskFinalizer(self.store, config.task_finalize_seconds)
        # --- end linking ---
        try:
            self.spool = Spool(config.resolved_spool_dir, config.spool_max_bytes)
        except Exception:
            self.store.close()
            raise
        self.writer = BatchWriter(
            self.store,
            self.metrics,
            max_queued_records=config.queue_max_records,
            spool=self.spool,
        )
        ingestor = Ingestor(
            Pipeline(  # pricing (issue 4): the overlay, when configured
                PriceBook.from_file(config.price_overlay)
                if config.price_overlay
                else default_price_book(),
                self.metrics,
            ),
            self.writer,
            ack_timeout=config.ack_timeout_seconds,
            metrics=self.metrics,
        )
        self.grpc = OtlpGrpcServer(
            config.host,
            config.otlp_grpc_port,
            ingestor,
            self.metrics,
            auth_token=config.auth_token,
            max_message_bytes=config.max_body_bytes,
            max_concurrent_exports=config.max_concurrent_exports,
            max_inflight_body_bytes=config.inflight_body_bytes(),
        )
        # --- budgets hook (issue 6): evaluator thread + GET /api/budget/decision ---
        from llm_margin.processor.budgets.config import load_budget_config
        from llm_margin.processor.budgets.evaluator import DECISION_PATH, BudgetEvaluator

        self.budgets = BudgetEvaluator(
            self.store,
            load_budget_config(config.billing_file),
            metrics=self.metrics,
            # in the spool directory: durable, private (0700) and locked to this processor
            webhook_state_file=os.path.join(config.resolved_spool_dir, WEBHOOK_STATE_FILE),
        )
        http_extra_routes = {DECISION_PATH: self.budgets.http_decision}
        # --- end budgets hook ---
        self.http = OtlpHttpServer(
            config.host,
            config.otlp_http_port,
            ingestor,
            self.metrics,
            self._read_query,
            auth_token=config.auth_token,
            max_body_bytes=config.max_body_bytes,
            max_concurrent_exports=config.max_concurrent_exports,
            max_inflight_body_bytes=config.inflight_body_bytes(),
            extra_get_routes=http_extra_routes,
            health=self.writer.health,
        )
        self.clickhouse_http = None
        if config.clickhouse_http_port is not None and self.store.embedded_path:
            from llm_margin.processor.clickhouse_http import ClickHouseHttpServer

            self.clickhouse_http = ClickHouseHttpServer(
                config.host,
                config.clickhouse_http_port,
                self.store.embedded_path,
                config.database,
                auth_token=config.auth_token,
                writable=config.clickhouse_http_writable,
                result_limits=config.result_limits,
            )
        # /api/query callers get every read client but one. The budget rounds read on the same
        # clients: four callers' queries (up to max_execution_time each) held them all, rounds
        # stopped, and after a few intervals decisions answered 503 (a fail-closed app then
        # refuses every LLM call). (Embedded, callers' queries now run on clients of their own,
        # whose sessions carry the result bound; this still caps how many run at once.)
        self._remote_reads = threading.BoundedSemaphore(max(1, self.store.read_concurrency - 1))
        self._stopped = threading.Event()

    def _read_query(self, sql: str, parameters: dict[str, Any]) -> QueryResult:
        """A remote caller's SQL: read-only, its answer bounded (ResultTooLargeError past
        max_result_rows / max_result_bytes: the whole answer is held in memory here)."""
        with self._remote_reads:
            return self.store.query_readonly(
                sql, parameters_from_wire(parameters), limits=self.config.result_limits
            )

    @property
    def http_url(self) -> str:
        return f"http://{self.config.host}:{self.http.port}"

    def start(self) -> None:
        self.writer.start()
        self.grpc.start()
        self.http.start()
        if self.clickhouse_http is not None:
            self.clickhouse_http.start()
        self.budgets.start()  # budgets hook (issue 6)
        self.task_finalizer.start()  # linking (issue 4)
        if not self.config.clickhouse_url:
            write_state(self.config.data_dir, self.http_url, self.grpc.port)

    def stop(self, drain_seconds: float | None = None) -> None:
        """Stop receiving, make queued batches durable within the drain deadline, release."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if drain_seconds is None:
            drain_seconds = self.config.drain_seconds
        # One deadline for the whole drain: the gRPC grace used to come on top of it, so a
        # stuck store kept the process up to 6 s past drain_seconds (init systems escalate).
        deadline = time.monotonic() + drain_seconds
        # Stop accepting first: in-flight requests finish (their batches drain below) and
        # exporters retry against the next instance.
        self.grpc.stop(grace=min(5.0, drain_seconds / 2))
        self.http.stop()
        if self.clickhouse_http is not None:
            self.clickhouse_http.stop()
        self.budgets.stop()  # budgets hook (issue 6)
        self.task_finalizer.stop()  # linking (issue 4)
        drained = self.writer.shutdown(max(0.0, deadline - time.monotonic()))
        if not self.config.clickhouse_url:
            remove_state(self.config.data_dir)
        if drained:  # a writer stuck in an insert holds the store; exiting releases it
            self.store.close()
            self.spool.close()


def tune_garbage_collector() -> None:
    """Keep CPython's cycle collector off the hot path of a long-running server.

    Every span allocates dozens of short-lived objects, so the default threshold (700 net
    allocations) ran a young-generation collection every few spans, and older ones re-walked
    everything that survived startup (modules, price book, SQL text). Those objects are moved
    out of the collector's view and young collections run ~70x less often: in
    bench/bench_processor.py, 12% more spans/s and 9% less CPU per span, for ~40 MiB more
    peak RSS. Cycles are still collected; other garbage is freed by reference counting."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(50_000, middle, old)


def serve_forever(config: ServeConfig) -> int:
    processor = Processor(config)
    processor.start()
    tune_garbage_collector()
    done = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(
        f"llm-margin processor: OTLP gRPC {config.host}:{processor.grpc.port}, "
        f"OTLP HTTP {processor.http_url}, store {processor.store.description}"
        + (
            f", ClickHouse HTTP http://{config.host}:{processor.clickhouse_http.port}"
            if processor.clickhouse_http is not None
            else ""
        ),
        flush=True,
    )
    done.wait()
    processor.stop()
    print("llm-margin processor: stopped", flush=True)
    return 0
