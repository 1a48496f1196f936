"""Background flush of the stream-start record.

Why: the provisional span that marks a stream's start (``LLMCall.emit_provisional``) ends into
the app's span processor, usually the SDK's ``BatchSpanProcessor``, which exports every
``OTEL_BSP_SCHEDULE_DELAY`` (5 s by default). An app killed within those seconds left no record
of a call it was already paying for. So once the provisional span has ended we ask the tracer
provider to export what it holds now, from a daemon thread, so that the app's thread never waits
on an exporter:

* ``request_flush()`` (the hot path) only sets an ``Event`` (and starts the thread the first
  time, or again when it is gone, e.g. in a forked child);
* the thread calls ``provider.force_flush(timeout_millis=...)`` and waits again. Requests made
  while it flushes coalesce into one more flush, and flushes are at least ``min_interval_s``
  apart, so a burst of stream starts costs a few exports, not one each.

A provider without ``force_flush`` (the API's no-op or proxy provider) is left alone. Our errors
go to ``on_error`` (``record_internal_error``: logged once, counted), never to the app.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

FLUSH_TIMEOUT_MILLIS = 5_000  # bound of one force_flush (the SDK's BatchSpanProcessor ignores it)
MIN_INTERVAL_S = 0.05  # at most 20 flushes a second, whatever the rate of stream starts


class BackgroundFlusher:
    """One daemon thread that flushes ``provider()`` whenever ``request_flush()`` was called."""

    def __init__(
        self,
        provider: Callable[[], Any],
        on_error: Callable[[str], None],
        timeout_millis: int = FLUSH_TIMEOUT_MILLIS,
        min_interval_s: float = MIN_INTERVAL_S,
    ) -> None:
        self._provider = provider
        self._on_error = on_error
        self._timeout_millis = timeout_millis
        self._min_interval_s = min_interval_s
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.flushes = 0  # completed force_flush calls (for tests and debugging)
        if hasattr(os, "register_at_fork"):
            # a child has no flusher thread, and locks held at fork would stay held in it
            os.register_at_fork(after_in_child=self._reinit_after_fork)

    def request_flush(self) -> None:
        """Ask for a flush soon; returns at once. Never raises."""
        try:
            thread = self._thread
            if thread is None or not thread.is_alive():
                self._start()
            if not self._wake.is_set():
                self._wake.set()
        except Exception:
            self._on_error("flush_request")

    def _start(self) -> None:
        with self._lock:
            thread = self._thread
            if thread is not None and thread.is_alive():
                return
            self._wake = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(self._wake,), name="llm-margin-flush", daemon=True
            )
            thread.start()
            self._thread = thread

    def _reinit_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None

    def _run(self, wake: threading.Event) -> None:
        while True:
            wake.wait()
            wake.clear()
            self._flush()
            time.sleep(self._min_interval_s)  # requests made meanwhile: one flush next round

    def _flush(self) -> None:
        try:
            flush = getattr(self._provider(), "force_flush", None)
            if flush is None:
                return
            flush(timeout_millis=self._timeout_millis)
            self.flushes += 1
        except Exception:
            self._on_error("flush")
