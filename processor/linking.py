"""One provider request, one row: nested GenAI spans of the same request share a row key.

Several instrumentations may trace the same request: ours wraps ``Messages.create``, anthropic's
SDK opens ``anthropic.messages.create`` inside it, OpenLLMetry or openai-v2 may wrap it again.
Each emits a GenAI span, parent and child of one another. Counting each would price the request
two or three times (DESIGN.md §4.7), so every span of such a nest gets the same ``span_id`` (the
row key of ``llm_calls``) and ``normalize.call_rank`` decides, through ``version``, which one
ReplacingMergeTree keeps: ours, else the most complete.

Nests are found from parent links (a GenAI call span whose parent is a GenAI call span belongs
to its parent's request) and from the provider's response id (``gen_ai.response.id``), which
every instrumentation of one request records, for instrumentations that do not make their
span the current one and so leave siblings, even separate traces. Spans of one nest usually arrive in one export batch (an SDK exports
in end order, inner spans microseconds before outer ones); when they do not, a bounded memory
of recent span ids carries the key across batches (the collector routes by trace id, so one
replica sees a whole trace). The key of a nest is, in order: our instrumentation's call id
(our stream-start estimate was stored under it), a key already given to one of its spans or
their parent, the outermost span's id. The one case one row cannot cover, another
instrumentation's span stored in an earlier batch than our call span around it, keeps its own
row and is counted in ``conflicts`` (metric ``nested_key_conflicts``).

SDK-internal HTTP attempts (httpx2 client spans under a call span) are not calls: their count
minus one is the call's SDK retry count when no instrumentation recorded one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from llm_margin.processor.normalize import RANK_OURS, version_rank
from llm_margin.processor.records import CallRecord

log = logging.getLogger(__name__)

DEFAULT_MEMORY = 200_000  # span ids remembered per generation (two generations kept)


@dataclass(slots=True)
class CallSpan:
    """A normalised call with the span facts nesting needs."""

    call: CallRecord
    span_id: str  # the span's own id (call.span_id may be our call id)
    parent_span_id: str
    response_id: str = ""  # the provider's id of the response (gen_ai.response.id)


class _Memory:
    """A bounded map kept as two generations: old entries fall off without per-item bookkeeping."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._new: dict[str, Any] = {}
        self._old: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        found = self._new.get(key)
        return found if found is not None else self._old.get(key)

    def put(self, key: str, value: Any) -> None:
        if len(self._new) >= self._capacity:
            self._old, self._new = self._new, {}
        self._new[key] = value


class NestedCallResolver:
    """Gives nested spans of one provider request one row key and keeps the best span per nest.

    Thread-safe; receivers call ``resolve`` once per export request.
    """

    def __init__(self, memory: int = DEFAULT_MEMORY) -> None:
        self._lock = threading.Lock()
        self._key_of_span = _Memory(memory)  # span id of a call span -> its nest key
        self._key_of_parent = _Memory(memory)  # parent id of a nest's outermost span -> key
        # Provider response id -> key: instrumentations that do not make their span current
        # (OpenLLMetry's anthropic) leave sibling spans, even a separate trace, for one request.
        self._key_of_response = _Memory(memory)
        # HTTP attempts whose call span has not arrived yet: an SDK's backoff between attempts
        # often puts the first attempt in an earlier export batch than its call.
        self._http_attempts = _Memory(memory)
        # Nest key -> (customer_id, task_id, ts) of the row stored for it. A later span of the
        # nest (another instrumentation's, exported in a later batch, maybe in another trace)
        # must not move the row: customer_id is part of llm_calls' key (a second row would
        # price the request twice), a moved task leaves its old llm_tasks row counting the
        # call, and versions in different hours would each count in their own hour.
        self._row_of_key = _Memory(memory)
        self.conflicts = 0  # nests split over batches in a way one row could not cover

    def resolve(
        self, spans: Sequence[CallSpan], http_children: Mapping[str, int] | None = None
    ) -> list[CallRecord]:
        """The calls to write: one per nest of this batch, each keyed by its nest's key.

        ``http_children``: parent span id -> number of HTTP client spans under it in the batch.
        """
        by_id = {s.span_id: i for i, s in enumerate(spans)}
        if http_children:
            with self._lock:
                for parent_id, count in http_children.items():
                    if parent_id not in by_id:
                        self._http_attempts.put(
                            parent_id, (self._http_attempts.get(parent_id) or 0) + count
                        )
        if not spans:
            return []
        parent = list(range(len(spans)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        by_response: dict[str, int] = {}
        for i, s in enumerate(spans):
            j = by_id.get(s.parent_span_id)
            if j is not None and j != i:
                parent[root(i)] = root(j)
            if s.response_id:
                k = by_response.setdefault(s.response_id, i)
                if k != i:
                    parent[root(i)] = root(k)
        nests: dict[int, list[int]] = {}
        for i in range(len(spans)):
            nests.setdefault(root(i), []).append(i)
        out: list[CallRecord] = []
        with self._lock:
            for members in nests.values():
                out.append(self._resolve_nest([spans[i] for i in members], by_id, http_children))
        return out

    def _resolve_nest(
        self,
        members: list[CallSpan],
        by_id: Mapping[str, int],
        http_children: Mapping[str, int] | None,
    ) -> CallRecord:
        outermost = [m for m in members if m.parent_span_id not in by_id] or members[:1]
        # Our call id is fixed: our stream-start estimate was stored under it, and the final
        # row must replace it.
        ours = [
            m.call.span_id
            for m in members
            if m.call.span_id != m.span_id or version_rank(m.call.version) == RANK_OURS
        ]
        earlier = [
            k
            for m in members
            for k in (self._key_of_span.get(m.span_id), self._key_of_parent.get(m.span_id))
            if k
        ] + [k for m in outermost if (k := self._key_of_span.get(m.parent_span_id))]
        earlier += [
            k for m in members if m.response_id and (k := self._key_of_response.get(m.response_id))
        ]
        if ours:
            key = ours[0]
        elif earlier:
            key = earlier[0]
        else:
            key = outermost[0].span_id
        if any(k != key for k in earlier):
            # A span of this request was stored under another key in an earlier batch (an
            # export batch ended between two nested spans): that row stays. Counted.
            self.conflicts += 1
        for m in members:
            self._key_of_span.put(m.span_id, key)
        for m in members:
            if m.response_id:
                self._key_of_response.put(m.response_id, key)
        for call_id in ours:  # our call span, maybe not seen yet, is a call of this nest
            self._key_of_span.put(call_id, key)
        for m in outermost:
            if m.parent_span_id:
                self._key_of_parent.put(m.parent_span_id, key)
        best = max(members, key=lambda m: m.call.version)
        call = best.call
        call.span_id = key
        stored = self._row_of_key.get(key)
        attempts = sum(
            (http_children or {}).get(m.span_id, 0) + (self._http_attempts.get(m.span_id) or 0)
            for m in members
        )
        if len(members) > 1 or attempts:
            call.sdk_retries = max(max(m.call.sdk_retries for m in members), attempts - 1)
            if call.customer_id.startswith("(") or not call.task_id:
                # Ours copies baggage; another instrumentation's span may lack it.
                for m in members:
                    if not m.call.customer_id.startswith("("):
                        call.customer_id = m.call.customer_id
                        break
        if stored is not None:
            call.customer_id, call.task_id, call.ts = stored
        else:
            self._row_of_key.put(key, (call.customer_id, call.task_id, call.ts))
        return call


# A sweep re-reads calls stamped up to this long before the previous sweep's end. A call is
# stamped (inserted_at, the store's now64) when the store starts its insert and is visible once
# the insert ends; the last sweep whose range holds the stamp runs more than window + overlap
# after it, so a call is missed only if its insert took longer than that (or, on a cluster, a
# node's clock is that far behind). The store's client gives up on a write after its
# send/receive timeout (60 s, storage.SERVER_TIMEOUTS) and the processor retries it, stamped
# anew; embedded inserts take milliseconds. Read twice is harmless: linking recomputes a task.
SWEEP_OVERLAP_SECONDS = 60.0
SWEEP_LIMIT = 100_000  # tasks linked per sweep; more wait for the next sweep
_EPOCH = datetime(1970, 1, 1)


def _utc_naive(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


class TaskFinalizer:
    """Writes the llm_tasks rows of tasks whose root span never came, once their window passed.

    With ``task_finalize_seconds`` > 0 the linker holds back a task without its root until its
    newest call has been stored that long; this sweep then links it (outcome ``unknown``). A
    root arriving later is linked at once and corrects the row.

    A task is due when its newest call was stored more than the window ago and it has no
    llm_tasks row. Each sweep reads the calls stored (inserted_at, by the store's clock) in
    [previous sweep's end - overlap, now - window): every stored call falls in some sweep's
    range, so every due task is found by the sweep whose range holds its newest call (a task
    found earlier, before its newest call was due, is skipped by link_tasks.sql and found
    again). The first sweep after a start reads back ``lookback_seconds``, so tasks stored
    within that survive restarts. Cost per sweep follows what arrived since the previous one.
    """

    def __init__(
        self,
        store: Any,
        window_seconds: float,
        lookback_seconds: float = 86_400.0,
        overlap_seconds: float = SWEEP_OVERLAP_SECONDS,
    ):
        self._store = store
        self._window = window_seconds
        self._lookback = max(lookback_seconds, window_seconds * 2)
        self._overlap = timedelta(seconds=overlap_seconds)
        self._until: datetime | None = None  # end of the last sweep's range (store's clock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llm-margin-tasks", daemon=True)
        self.finalized = 0

    def start(self) -> None:
        if self._window > 0:
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def sweep(self) -> int:
        """Link every task due for finalisation now; the number of tasks linked."""
        from llm_margin.clickhouse import read_sql

        since = _EPOCH if self._until is None else self._until - self._overlap
        until, ids = self._store.query(
            read_sql("link_open_tasks.sql"),
            {
                "finalize_ms": int(self._window * 1000),
                "lookback_ms": int(self._lookback * 1000),
                "since": since,
                "limit": SWEEP_LIMIT,
            },
        ).rows[0]
        ids = list(ids)
        if ids:
            self._store.link_tasks(ids)
            self.finalized += len(ids)
        if len(ids) < SWEEP_LIMIT:
            # The store's clock, even if it went back: calls are stamped by it. At the limit
            # the range is read again (the tasks linked now have rows and drop out).
            self._until = _utc_naive(until)
        return len(ids)

    def _run(self) -> None:
        interval = min(60.0, max(0.2, self._window / 4))
        while not self._stop.wait(interval):
            try:
                self.sweep()
            except Exception as exc:  # the store may be down; the next sweep retries
                log.warning("task finalisation sweep failed: %s", exc)
