"""A byte budget for request bodies held in memory, shared by a receiver's requests.

OTLP/HTTP reads a request's body before it takes an export slot, so without a budget the
bodies held at once were bounded only by the connection cap times ``max_body_bytes`` (256 ×
16 MiB, 4 GiB). Each request reserves what it will hold before reading it (its
``Content-Length``, each chunk as it arrives, what a compressed body inflates to as it
inflates); when the budget cannot cover it the request is answered "retry later" at once.

gRPC cannot reserve: grpcio receives a message before our handler runs. There the budget
sizes grpcio's cap on the RPCs it holds (``grpc_rpc_cap``).
"""

from __future__ import annotations

import threading

# Past the export slots and refusal threads, how many RPCs may always wait for a refusal
# thread, whatever the budget: fewer and a small burst is refused by grpcio without
# RetryInfo, which senders do not retry (they drop the data).
MIN_WAITING_RPCS = 8


class BudgetExhaustedError(Exception):
    """The budget cannot cover a reservation now; the request should be retried later."""


class ByteBudget:
    """``capacity`` bytes, reserved and released by concurrent requests; never overdrawn."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._in_use = 0

    @property
    def in_use(self) -> int:
        return self._in_use

    def try_reserve(self, size: int) -> bool:
        """Reserve ``size`` bytes if they fit, at once; False (nothing reserved) if not."""
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        with self._lock:
            if self._in_use + size > self.capacity:
                return False
            self._in_use += size
            return True

    def release(self, size: int) -> None:
        with self._lock:
            if not 0 <= size <= self._in_use:
                raise ValueError(f"releasing {size} bytes of {self._in_use} reserved")
            self._in_use -= size

    def reservation(self) -> Reservation:
        return Reservation(self)


class Reservation:
    """One request's share of a budget: grows as the request reads, released once at its end
    (``close`` is idempotent, so every path may call it)."""

    def __init__(self, budget: ByteBudget) -> None:
        self._budget = budget
        self.size = 0

    def grow(self, size: int) -> None:
        """Reserve ``size`` more bytes; BudgetExhaustedError if the budget cannot cover them."""
        if not self._budget.try_reserve(size):
            raise BudgetExhaustedError(
                f"request bodies in memory are at their limit ({self._budget.capacity} bytes); "
                "retry later"
            )
        self.size += size

    def close(self) -> None:
        size, self.size = self.size, 0
        if size:
            self._budget.release(size)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def grpc_rpc_cap(budget_bytes: int, max_message_bytes: int, threads: int, waiting_rpcs: int) -> int:
    """grpcio's ``maximum_concurrent_rpcs``: as many RPCs as the budget holds at one message
    each, up to ``threads + waiting_rpcs``, but never fewer than the threads plus
    ``MIN_WAITING_RPCS`` (or ``waiting_rpcs`` if smaller): RPCs past the export slots must
    reach a refusal thread to be told, with RetryInfo, to retry."""
    floor = threads + min(waiting_rpcs, MIN_WAITING_RPCS)
    return max(floor, min(threads + waiting_rpcs, budget_bytes // max_message_bytes))
