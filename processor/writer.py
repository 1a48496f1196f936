"""Batch writer: a bounded queue of received batches, one worker that writes them durably.

Receivers wait on a batch's ticket and acknowledge the exporter only once its rows are stored,
so a crash before that makes the exporter retry (at-least-once; span-id keys make it
exactly-once in storage). A full queue refuses new batches at once: the receivers turn that
into 429/503 or UNAVAILABLE, which exporters retry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from llm_margin.processor.metrics import Metrics
from llm_margin.processor.records import CallRecord, TaskSpanRecord
from llm_margin.processor.storage import Store

log = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """The writer's queue is at its bound; the sender should retry later."""


@dataclass
class Ticket:
    calls: Sequence[CallRecord]
    task_spans: Sequence[TaskSpanRecord]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    @property
    def size(self) -> int:
        return len(self.calls) + len(self.task_spans)

    def wait(self, timeout: float) -> bool:
        """True once stored; False on timeout; raises the write error if the write failed."""
        if not self.done.wait(timeout):
            return False
        if self.error is not None:
            raise self.error
        return True


class BatchWriter:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        *,
        max_queued_records: int = 200_000,
        max_batch_records: int = 50_000,
        linger_seconds: float = 0.05,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._max_queued = max_queued_records
        self._max_batch = max_batch_records
        self._linger = linger_seconds
        self._queue: deque[Ticket] = deque()
        self._queued_records = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="llm-margin-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(
        self, calls: Sequence[CallRecord], task_spans: Sequence[TaskSpanRecord] = ()
    ) -> Ticket:
        ticket = Ticket(calls, task_spans)
        if ticket.size == 0:
            ticket.done.set()
            return ticket
        with self._cond:
            if self._stopping:
                raise QueueFullError("the processor is shutting down")
            if self._queued_records + ticket.size > self._max_queued:
                self._metrics.inc("queue_full_rejections")
                raise QueueFullError("write queue is full")
            self._queue.append(ticket)
            self._queued_records += ticket.size
            self._metrics.set("queue_depth", self._queued_records)
            self._cond.notify()
        return ticket

    def _take(self) -> list[Ticket]:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                return []
        # Linger briefly so small concurrent requests share one insert.
        if self._linger:
            time.sleep(self._linger)
        with self._cond:
            taken: list[Ticket] = []
            count = 0
            while self._queue and (not taken or count + self._queue[0].size <= self._max_batch):
                ticket = self._queue.popleft()
                taken.append(ticket)
                count += ticket.size
            self._queued_records -= count
            self._metrics.set("queue_depth", self._queued_records)
        return taken

    def _run(self) -> None:
        while True:
            tickets = self._take()
            if not tickets:
                return
            self._write(tickets)

    def _write(self, tickets: list[Ticket]) -> None:
        calls = [c for t in tickets for c in t.calls]
        task_spans = [s for t in tickets for s in t.task_spans]
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            self._store.insert_calls(calls)
            self._store.insert_task_spans(task_spans)
            self._store.link_tasks({c.task_id for c in calls} | {s.task_id for s in task_spans})
        except Exception as exc:  # reported to every waiting receiver, which answers "retry"
            error = exc
            self._metrics.inc("write_errors")
            log.warning("write of %d records failed: %s", len(calls) + len(task_spans), exc)
        else:
            self._metrics.inc("stored_calls", len(calls))
            self._metrics.inc("stored_task_spans", len(task_spans))
            self._metrics.inc("unpriced_calls", sum(1 for c in calls if not c.priced))
        self._metrics.observe_write(time.perf_counter() - started)
        for ticket in tickets:
            ticket.error = error
            ticket.done.set()

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop taking batches, write what is queued, return True if drained in time."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()
