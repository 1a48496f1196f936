"""Run a report's independent queries at the same time, on read-only clients.

A report page (`report weekly`) is several queries that do not depend on each other. The store
lends up to ``read_concurrency`` read-only clients (``Store.query_readonly``; a running
processor answers remote readers the same way), so the queries overlap instead of queueing:
chDB plans a query on one thread and a ClickHouse server has cores to spare.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from llm_margin.processor.storage import QueryResult

T = TypeVar("T")


class ReadOnlyReader:
    """A reader whose ``query`` is the store's ``query_readonly``."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.read_concurrency: int = getattr(store, "read_concurrency", 1)

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        # Report SQL is the project's own: no statement check, still a read-only session.
        return self._store.query_readonly(sql, parameters, own_sql=True)


def read_only(reader: Any) -> Any:
    """The reader to run report queries on: read-only clients when the store has them."""
    return ReadOnlyReader(reader) if hasattr(reader, "query_readonly") else reader


def gather(jobs: Mapping[str, Callable[[], T]], workers: int) -> dict[str, T]:
    """Every job's result by name, running up to ``workers`` at once; the first failure is
    raised (after the others finish) as the job raised it."""
    if workers <= 1 or len(jobs) <= 1:
        return {name: job() for name, job in jobs.items()}
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}
