"""Batch writer: a bounded queue of received batches, one worker that makes them durable.

Receivers wait on a batch's ticket and acknowledge the exporter only once its rows are durable:
inserted into the store, or, while the store is unavailable, written to the on-disk spool
(``spool.py``). A crash before that makes the exporter retry (at-least-once); span-id keys make
it exactly-once in storage. A full queue or a full spool refuses new batches at once: the
receivers turn that into 429/503 or UNAVAILABLE, which exporters retry.

Ordering: while anything is spooled, new batches are appended behind it, and the spool is
replayed oldest first, so rows reach the store in the order they were acknowledged.

Linking (recomputing ``llm_tasks`` and attempt numbers for the batch's tasks) runs on a second
thread: while it links one batch, the writer inserts the next, and it links everything inserted
meanwhile in one pass. A batch is acknowledged once inserted and linked, so a report read after
an acknowledgement sees its tasks. If linking fails the rows are already stored, but the batch
is not acknowledged: the exporter resends it (deduplicated by span id) and it is linked then.
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
from llm_margin.processor.spool import (
    Segment,
    Spool,
    SpoolFullError,
    UnreadableSegmentError,
    batch_payload,
)
from llm_margin.processor.storage import Store

log = logging.getLogger(__name__)

RETRY_MIN_SECONDS = 0.5
RETRY_MAX_SECONDS = 15.0
REPLAY_ROUND_SECONDS = 2.0


class QueueFullError(RuntimeError):
    """The writer cannot take the batch now; the sender should retry later.

    ``throttled`` is True when the queue is merely full (HTTP 429), False when the processor
    is shutting down or cannot make data durable (HTTP 503).
    """

    def __init__(self, message: str, *, throttled: bool = True) -> None:
        super().__init__(message)
        self.throttled = throttled


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
        """True once durable; False on timeout; raises the error if it could not be made so."""
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
        linger_seconds: float = 0.02,
        spool: Spool | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._max_queued = max_queued_records
        self._max_batch = max_batch_records
        self._linger = linger_seconds
        self._spool = spool
        self._queue: deque[Ticket] = deque()
        self._queued_records = 0
        # Records taken from the queue but not acknowledged yet (inserting or linking): they
        # count against max_queued_records too, so a slow linker pushes back on the senders.
        self._in_flight_records = 0
        self._to_link: list[tuple[list[Ticket], set[str]]] = []
        self._link_cond = threading.Condition()
        self._linker_stopping = False
        self._linker = threading.Thread(
            target=self._run_linker, name="llm-margin-linker", daemon=True
        )
        self._cond = threading.Condition()
        self._stopping = False
        self._retry_at = 0.0
        self._retry_delay = RETRY_MIN_SECONDS
        self._thread = threading.Thread(target=self._run, name="llm-margin-writer", daemon=True)
        if spool is not None:
            self._metrics.set("spool_bytes", spool.bytes)

    def start(self) -> None:
        self._linker.start()
        self._thread.start()

    def health(self) -> dict[str, object]:
        """Writer state for /healthz: ``ok``, or ``spooling`` while the store is unavailable."""
        spooled = self._spool.records if self._spool is not None else 0
        store_down = time.monotonic() < self._retry_at
        return {
            "status": "spooling" if spooled or store_down else "ok",
            "queue_records": self.queued_records,
            "spooled_records": spooled,
        }

    @property
    def queued_records(self) -> int:
        with self._cond:
            return self._queued_records

    def submit(
        self, calls: Sequence[CallRecord], task_spans: Sequence[TaskSpanRecord] = ()
    ) -> Ticket:
        ticket = Ticket(calls, task_spans)
        if ticket.size == 0:
            ticket.done.set()
            return ticket
        with self._cond:
            if self._stopping:
                self._metrics.inc("refused_records", ticket.size)
                raise QueueFullError("the processor is shutting down", throttled=False)
            if self._queued_records + self._in_flight_records + ticket.size > self._max_queued:
                self._metrics.inc("queue_full_rejections")
                self._metrics.inc("refused_records", ticket.size)
                raise QueueFullError("write queue is full")
            self._queue.append(ticket)
            self._queued_records += ticket.size
            self._metrics.set("queue_depth", self._queued_records)
            self._cond.notify()
        return ticket

    # -- worker --------------------------------------------------------------------------------
    def _take(self) -> list[Ticket]:
        with self._cond:
            while not self._queue and not self._stopping:
                if self._spool is not None and len(self._spool):
                    # Wake up to replay the spool even when nothing new arrives.
                    wait = max(0.0, self._retry_at - time.monotonic())
                    if wait == 0.0:
                        return []
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            if not self._queue:
                return []
        # Linger briefly so small concurrent requests share one insert.
        if self._linger and self._queued_records < self._max_batch:
            time.sleep(self._linger)
        with self._cond:
            taken: list[Ticket] = []
            count = 0
            while self._queue and (not taken or count + self._queue[0].size <= self._max_batch):
                ticket = self._queue.popleft()
                taken.append(ticket)
                count += ticket.size
            self._queued_records -= count
            self._in_flight_records += count
            self._metrics.set("queue_depth", self._queued_records)
        return taken

    def _run(self) -> None:
        while True:
            tickets = self._take()
            if tickets:
                self._write(tickets)
            self._replay()
            with self._cond:
                if self._stopping and not self._queue:
                    return

    def _write(self, tickets: list[Ticket]) -> None:
        calls = [c for t in tickets for c in t.calls]
        task_spans = [s for t in tickets for s in t.task_spans]
        error: BaseException | None = None
        if self._spool is not None and (len(self._spool) or time.monotonic() < self._retry_at):
            # Keep acknowledged order: behind what is already waiting on disk.
            error = self._to_spool(calls, task_spans)
        else:
            try:
                self._insert_rows(calls, task_spans)
            except Exception as exc:
                self._metrics.inc("write_errors")
                refused = self._insert_isolating(calls, task_spans)
                if refused is None:
                    self._store_failed(exc)
                    error = exc if self._spool is None else self._to_spool(calls, task_spans)
                    self._acknowledge(tickets, error)
                    return
                tickets = self._refuse(tickets, refused, exc)
            # Stored: acknowledged once the linker has linked their tasks.
            with self._link_cond:
                self._to_link.append((tickets, _task_ids(calls, task_spans)))
                self._link_cond.notify()
            return
        self._acknowledge(tickets, error)

    def _acknowledge(self, tickets: list[Ticket], error: BaseException | None) -> None:
        with self._cond:
            self._in_flight_records -= sum(t.size for t in tickets)
        for ticket in tickets:
            ticket.error = error
            ticket.done.set()

    def _insert(self, calls: list[CallRecord], task_spans: list[TaskSpanRecord]) -> None:
        """Insert and link at once (spool replay; intake pipelines the two)."""
        self._insert_rows(calls, task_spans)
        self._store.link_tasks(_task_ids(calls, task_spans))

    def _insert_rows(self, calls: list[CallRecord], task_spans: list[TaskSpanRecord]) -> None:
        started = time.perf_counter()
        self._store.insert_calls(calls)
        self._store.insert_task_spans(task_spans)
        self._metrics.observe_write(time.perf_counter() - started)
        self._metrics.inc("stored_calls", len(calls))
        self._metrics.inc("stored_task_spans", len(task_spans))
        self._metrics.inc("unpriced_calls", sum(1 for c in calls if not c.priced))
        self._retry_delay = RETRY_MIN_SECONDS

    def _insert_isolating(
        self, calls: list[CallRecord], task_spans: list[TaskSpanRecord]
    ) -> tuple[list[CallRecord], list[TaskSpanRecord]] | None:
        """After an insert of these records failed: insert them again in halves, down to single
        records, so a record the store refuses (a value it cannot hold that the checks on the
        way in missed) does not take the rest with it; a batch merges several exports. The
        records refused on their own, or None when the store took none of them or stopped
        answering: an outage, not the records' fault."""
        records: list[CallRecord | TaskSpanRecord] = [*calls, *task_spans]
        if len(records) < 2 or not self._store.ping():
            return None
        refused: list[CallRecord | TaskSpanRecord] = []
        stored_any = False
        # A store that answers but refuses every insert (disk, permissions) fails each part:
        # give up after this many failures in a row instead of trying every record alone.
        budget = 4 * len(records).bit_length() + 8
        failures = 0
        half = len(records) // 2
        parts = [records[half:], records[:half]]
        while parts:
            part = parts.pop()
            try:
                self._insert_rows(*_split(part))
            except Exception:
                self._metrics.inc("write_errors")
                failures += 1
                if failures > budget:
                    return None
                if len(part) > 1:
                    half = len(part) // 2
                    parts += [part[half:], part[:half]]  # oldest first
                elif self._store.ping():
                    refused.extend(part)
                else:
                    return None
            else:
                stored_any = True
                failures = 0
        return _split(refused) if stored_any else None

    def _refuse(
        self,
        tickets: list[Ticket],
        refused: tuple[list[CallRecord], list[TaskSpanRecord]],
        exc: BaseException,
    ) -> list[Ticket]:
        """Set aside records the store refuses (counted, kept in the spool's ``bad/``); the
        tickets still to acknowledge. Without a spool to keep them, the tickets holding them
        fail instead and the rest go on."""
        count = len(refused[0]) + len(refused[1])
        if count == 0:
            return tickets
        if self._spool is not None:
            try:
                path = self._spool.set_aside(batch_payload(*refused), count)
            except OSError as write_error:
                exc = write_error
            else:
                self._metrics.inc("dropped_records", count)
                log.error("%d records the store refuses set aside in %s: %s", count, path, exc)
                return tickets
        bad = {id(r) for part in refused for r in part}
        failed = [t for t in tickets if any(id(r) in bad for r in (*t.calls, *t.task_spans))]
        self._acknowledge(failed, exc)
        failed_ids = {id(t) for t in failed}
        return [t for t in tickets if id(t) not in failed_ids]

    # -- linker --------------------------------------------------------------------------------
    def _run_linker(self) -> None:
        while True:
            with self._link_cond:
                while not self._to_link and not self._linker_stopping:
                    self._link_cond.wait()
                if not self._to_link:
                    return
                batches, self._to_link = self._to_link, []
            task_ids: set[str] = set()
            for _, ids in batches:
                task_ids |= ids
            error: BaseException | None = None
            started = time.perf_counter()
            try:
                self._store.link_tasks(task_ids)
            except Exception as exc:  # rows are stored; unacknowledged, the exporter resends
                self._metrics.inc("link_errors")
                log.warning("task linking failed; the batch will be resent: %s", exc)
                error = exc
            self._metrics.observe_link(time.perf_counter() - started)
            for tickets, _ in batches:
                self._acknowledge(tickets, error)

    def _store_failed(self, exc: BaseException) -> None:
        log.warning("store write failed (retry in %.1fs): %s", self._retry_delay, exc)
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(RETRY_MAX_SECONDS, self._retry_delay * 2)

    def _to_spool(self, calls: list[CallRecord], task_spans: list[TaskSpanRecord]):
        assert self._spool is not None
        records = len(calls) + len(task_spans)
        try:
            self._spool.append(batch_payload(calls, task_spans), records)
        except (SpoolFullError, OSError) as exc:
            # Not acknowledged: the exporters keep the data and retry.
            self._metrics.inc("spool_full_rejections")
            self._metrics.inc("refused_records", records)
            return exc
        self._metrics.inc("spooled_records", records)
        self._metrics.set("spool_bytes", self._spool.bytes)
        return None

    def _replay(self) -> None:
        """Move spooled batches into the store, oldest first, until empty or it fails."""
        if self._spool is None:
            return
        # Replay for a while before taking new batches. Consecutive segments go in one insert
        # (up to a writer batch), so replay is much faster than intake and the spool shrinks
        # even under sustained load; new batches wait in the bounded queue meanwhile.
        round_ends = time.monotonic() + REPLAY_ROUND_SECONDS
        one_at_a_time = False
        while len(self._spool) and time.monotonic() >= self._retry_at:
            try:
                group = self._spool.peek_many(1 if one_at_a_time else self._max_batch)
            except UnreadableSegmentError as exc:
                # It would end this thread, and every later export would be answered "retry".
                self._set_aside(exc.segment, exc)
                continue
            if not group:
                return
            calls = [c for _, (group_calls, _) in group for c in group_calls]
            task_spans = [t for _, (_, group_tasks) in group for t in group_tasks]
            try:
                self._insert(calls, task_spans)
            except Exception as exc:
                self._metrics.inc("write_errors")
                if not self._store.ping():
                    self._store_failed(exc)
                    return
                refused = self._insert_isolating(calls, task_spans)
                if refused is None:
                    if len(group) > 1:
                        one_at_a_time = True  # find the segment the store refuses
                        continue
                    if not self._next_segment_goes_in():
                        # The store answers queries but takes no inserts (disk, permissions,
                        # a broken part): a store failure, not this segment's fault.
                        self._store_failed(exc)
                        return
                    # The store takes the next segment but none of this one: it would block
                    # the spool forever. Set it aside for inspection and count it.
                    self._set_aside(group[0][0], exc)
                    continue
                try:
                    # Linked before the refused records are set aside: a failure here
                    # replays the group next round, and sets nothing aside twice.
                    self._store.link_tasks(_task_ids(calls, task_spans))
                    count = len(refused[0]) + len(refused[1])
                    if count:
                        path = self._spool.set_aside(batch_payload(*refused), count)
                        self._metrics.inc("dropped_records", count)
                        log.error("%d spooled records set aside in %s: %s", count, path, exc)
                except Exception as later:
                    self._metrics.inc("write_errors")
                    self._store_failed(later)
                    return
            for segment, _ in group:
                self._spool.remove(segment)
                self._metrics.inc("replayed_records", segment.records)
            self._metrics.set("spool_bytes", self._spool.bytes)
            if time.monotonic() >= round_ends:
                with self._cond:
                    if self._queue:
                        return  # let fresh batches join the tail; replay resumes next round

    def _set_aside(self, segment: Segment, exc: BaseException) -> None:
        """Quarantine a segment that cannot go in, so it cannot block the rest; counted."""
        assert self._spool is not None
        self._spool.quarantine(segment)
        self._metrics.inc("dropped_records", segment.records)
        self._metrics.set("spool_bytes", self._spool.bytes)
        log.error("spool segment %s set aside: %s", segment.path, exc)

    def _next_segment_goes_in(self) -> bool:
        """Insert the second-oldest segment on its own; True (and it is removed) if stored."""
        assert self._spool is not None
        try:
            second = self._spool.peek_many(1, skip=1)
        except UnreadableSegmentError as exc:
            self._set_aside(exc.segment, exc)
            return False
        if not second:
            return False
        segment, (calls, task_spans) = second[0]
        try:
            self._insert(calls, task_spans)
        except Exception:
            self._metrics.inc("write_errors")
            return False
        self._spool.remove(segment)
        self._metrics.inc("replayed_records", segment.records)
        return True

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop taking batches, make what is queued durable, True if drained in time."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._link_cond:
            self._linker_stopping = True
            self._link_cond.notify_all()
        if self._linker.is_alive():
            self._linker.join(max(0.0, deadline - time.monotonic()))
        drained = not self._thread.is_alive() and not self._linker.is_alive()
        if not drained:
            log.warning(
                "writer did not drain within %.1fs; unacknowledged batches are retried", timeout
            )
        return drained


def _split(
    records: Sequence[CallRecord | TaskSpanRecord],
) -> tuple[list[CallRecord], list[TaskSpanRecord]]:
    calls = [r for r in records if isinstance(r, CallRecord)]
    return calls, [r for r in records if not isinstance(r, CallRecord)]


def _task_ids(calls: Sequence[CallRecord], task_spans: Sequence[TaskSpanRecord]) -> set[str]:
    return {c.task_id for c in calls} | {s.task_id for s in task_spans}
