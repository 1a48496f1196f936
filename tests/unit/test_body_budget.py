"""The byte budget of request bodies in memory: accounting, reservations, what inflating and
chunked reading reserve, and the gRPC RPC cap derived from it (pure, no sockets)."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest
from llm_margin.processor.http_server import read_chunked
from llm_margin.processor.receiver.body_budget import (
    MIN_WAITING_RPCS,
    BudgetExhaustedError,
    ByteBudget,
    grpc_rpc_cap,
)
from llm_margin.processor.receiver.decode import INFLATE_STEP, PayloadTooLargeError, decompress


@pytest.mark.parametrize(
    ("capacity", "steps", "in_use"),
    [
        (10, [("reserve", 10, True)], 10),  # exactly the capacity fits
        (10, [("reserve", 11, False)], 0),  # over it: nothing reserved
        (10, [("reserve", 6, True), ("reserve", 5, False), ("reserve", 4, True)], 10),
        (10, [("reserve", 6, True), ("release", 6, None), ("reserve", 10, True)], 10),
        (10, [("reserve", 0, True)], 0),
        (10, [("reserve", 3, True), ("release", 4, ValueError)], 3),  # never below zero
        (10, [("reserve", -1, ValueError)], 0),
    ],
)
def test_budget_accounting(capacity, steps, in_use):
    budget = ByteBudget(capacity)
    for op, size, expected in steps:
        if expected is ValueError:
            with pytest.raises(ValueError):
                getattr(budget, "try_reserve" if op == "reserve" else "release")(size)
        elif op == "reserve":
            assert budget.try_reserve(size) is expected
        else:
            budget.release(size)
    assert budget.in_use == in_use


def test_a_reservation_grows_refuses_past_the_budget_and_releases_once():
    budget = ByteBudget(100)
    other = budget.reservation()
    other.grow(30)
    with budget.reservation() as mine:
        mine.grow(40)
        mine.grow(30)
        with pytest.raises(BudgetExhaustedError, match="100 bytes"):
            mine.grow(1)
        assert (mine.size, budget.in_use) == (70, 100)
        mine.close()
        mine.close()  # every path may close it: released once
        assert budget.in_use == 30
    assert budget.in_use == 30
    other.close()
    assert budget.in_use == 0


class _Recorder:
    def __init__(self) -> None:
        self.total = 0

    def __call__(self, size: int) -> None:
        assert size > 0
        self.total += size


@pytest.mark.parametrize(
    ("encoding", "inflated", "max_bytes"),
    [
        ("gzip", 10, 1024),
        ("gzip", 3 * INFLATE_STEP + 5, 4 * INFLATE_STEP),  # several steps
        ("gzip", 2 * INFLATE_STEP, 2 * INFLATE_STEP),  # exactly the limit
        ("deflate", INFLATE_STEP + 1, 2 * INFLATE_STEP),
    ],
)
def test_inflating_reserves_what_it_inflates_never_past_the_limit(encoding, inflated, max_bytes):
    raw = bytes(range(256)) * (inflated // 256) + b"x" * (inflated % 256)
    body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    reserve = _Recorder()
    assert decompress(body, encoding, max_bytes, reserve) == raw
    # Everything inflated was reserved first, over-reserving at most one step, never past
    # max_bytes (a request the budget can hold is never refused forever).
    assert inflated <= reserve.total <= min(max_bytes, inflated + INFLATE_STEP)


def test_many_gzip_members_reserve_what_they_inflate_not_a_step_each():
    body = b"".join(gzip.compress(b"a" * 100) for _ in range(50))
    reserve = _Recorder()
    assert decompress(body, "gzip", 8 * INFLATE_STEP, reserve) == b"a" * 5000
    assert reserve.total <= 5000 + INFLATE_STEP


def test_inflating_stops_when_the_budget_refuses_and_past_the_limit():
    bomb = gzip.compress(b"\0" * (4 * INFLATE_STEP))

    def refuse_second(size: int, calls=[]) -> None:  # noqa: B006 - counts its calls
        calls.append(size)
        if len(calls) == 2:
            raise BudgetExhaustedError("full")

    with pytest.raises(BudgetExhaustedError):
        decompress(bomb, "gzip", 8 * INFLATE_STEP, refuse_second)
    reserve = _Recorder()
    with pytest.raises(PayloadTooLargeError):
        decompress(bomb, "gzip", INFLATE_STEP + 7, reserve)
    assert reserve.total == INFLATE_STEP + 7


def test_chunked_reading_reserves_each_chunk_before_reading_it():
    stream = io.BytesIO(b"3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n")
    sizes: list[int] = []
    assert read_chunked(stream, 100, sizes.append) == b"abcdefgh"
    assert sizes == [3, 5]

    def refuse(size: int) -> None:
        raise BudgetExhaustedError("full")

    stream = io.BytesIO(b"3\r\nabc\r\n0\r\n\r\n")
    with pytest.raises(BudgetExhaustedError):
        read_chunked(stream, 100, refuse)
    assert stream.tell() == 3  # only the size line was read


MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("budget", "message", "threads", "waiting", "cap"),
    [
        (256 * MIB, 16 * MIB, 40, 128, 40 + MIN_WAITING_RPCS),  # defaults: the floor
        (256 * MIB, 1 * MIB, 40, 128, 168),  # small messages: all the waiting room
        (256 * MIB, 4 * MIB, 40, 128, 64),  # the budget's share
        (64 * MIB, 64 * 1024, 2, 128, 130),
        (2 * MIB, 1 * MIB, 1, 0, 1),  # no waiting room asked for: none given
        (2 * MIB, 1 * MIB, 1, 3, 4),  # floor capped by what was asked for
    ],
)
def test_grpc_rpc_cap(budget, message, threads, waiting, cap):
    assert grpc_rpc_cap(budget, message, threads, waiting) == cap
    # Past the export slots, RPCs always reach a refusal thread (with RetryInfo) first.
    assert cap >= threads
