"""The background flusher of stream-start records (llm_margin.instrumentation._flush)."""

from __future__ import annotations

import os
import threading
import time

import pytest
from llm_margin.instrumentation._flush import BackgroundFlusher


def wait_for(predicate, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


class Provider:
    def __init__(self, gate: threading.Event | None = None, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.gate = gate
        self.fail = fail

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.calls.append(timeout_millis)
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail:
            raise RuntimeError("exporter down")
        return True


def test_requests_return_at_once_and_coalesce():
    gate = threading.Event()
    provider = Provider(gate)
    errors: list[str] = []
    flusher = BackgroundFlusher(lambda: provider, on_error=errors.append, min_interval_s=0)
    start = time.perf_counter()
    flusher.request_flush()
    assert wait_for(lambda: provider.calls)  # the first flush is under way, and blocked
    for _ in range(100):
        flusher.request_flush()
    assert time.perf_counter() - start < 1  # the app never waits on the exporter
    gate.set()
    assert wait_for(lambda: flusher.flushes == 2)
    time.sleep(0.1)
    assert len(provider.calls) == 2  # 100 requests during a flush: one more flush
    assert provider.calls[0] == 5_000 and errors == []  # bounded


def test_provider_without_force_flush_is_left_alone():
    errors: list[str] = []
    flusher = BackgroundFlusher(object, on_error=errors.append)  # like the API's proxy provider
    flusher.request_flush()
    time.sleep(0.1)
    assert flusher.flushes == 0 and errors == []


def test_errors_are_reported_not_raised_and_the_thread_goes_on():
    errors: list[str] = []
    provider = Provider(fail=True)
    flusher = BackgroundFlusher(lambda: provider, on_error=errors.append, min_interval_s=0)
    flusher.request_flush()
    assert wait_for(lambda: errors == ["flush"])
    provider.fail = False
    flusher.request_flush()
    assert wait_for(lambda: flusher.flushes == 1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_thread():
    provider = Provider()
    flusher = BackgroundFlusher(lambda: provider, on_error=lambda kind: None, min_interval_s=0)
    flusher.request_flush()
    assert wait_for(lambda: flusher.flushes == 1)
    pid = os.fork()
    if pid == 0:  # the child: the parent's thread is not here
        try:
            flusher.request_flush()
            os._exit(0 if wait_for(lambda: flusher.flushes == 2) else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
