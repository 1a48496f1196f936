"""The writer and its spool against a real embedded store, with store outages injected."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from llm_margin.processor.metrics import Metrics
from llm_margin.processor.records import CallRecord
from llm_margin.processor.spool import Spool, SpoolFullError
from llm_margin.processor.storage import Store
from llm_margin.processor.writer import BatchWriter, QueueFullError

from tests.conftest import wait_until


class Outage(ConnectionError):
    pass


class FlakyStore:
    """A real Store whose inserts fail while ``down`` (or for ``poison`` span ids)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = False
        self.poison: set[str] = set()
        self.inserted: list[list[str]] = []

    def insert_calls(self, calls):
        if self.down:
            raise Outage("store unreachable")
        if any(c.span_id in self.poison for c in calls):
            raise ValueError("the store refuses this row")
        self.store.insert_calls(calls)
        self.inserted.append([c.span_id for c in calls])

    def ping(self) -> bool:
        return not self.down

    def __getattr__(self, name):
        return getattr(self.store, name)


@pytest.fixture
def store(tmp_path):
    real = Store.open(data_dir=str(tmp_path / "db"))
    try:
        yield FlakyStore(real)
    finally:
        real.close()


def calls(first: int, count: int) -> list[CallRecord]:
    now = datetime.now(timezone.utc)
    return [
        CallRecord(ts=now, trace_id="t" * 32, span_id=f"s{n:05d}", task_id="task", input_tokens=n)
        for n in range(first, first + count)
    ]


def stored(store: FlakyStore) -> list[str]:
    return [r[0] for r in store.query("SELECT span_id FROM llm_calls FINAL ORDER BY span_id").rows]


def make_writer(store, spool, **kwargs) -> tuple[BatchWriter, Metrics]:
    metrics = Metrics()
    writer = BatchWriter(store, metrics, spool=spool, linger_seconds=0, **kwargs)
    writer.start()
    return writer, metrics


def test_outage_spools_acknowledges_and_replays_in_order(store, tmp_path):
    spool = Spool(str(tmp_path / "spool"), 10 * 1024 * 1024)
    writer, metrics = make_writer(store, spool)
    try:
        assert writer.submit(calls(0, 5)).wait(10)
        store.down = True
        for first in (5, 10, 15):
            assert writer.submit(calls(first, 5)).wait(10)  # acknowledged: durable on disk
        assert len(spool) == 3 and metrics.get("spooled_records") == 15
        assert stored(store) == [f"s{n:05d}" for n in range(5)]
        store.down = False
        wait_until(lambda: len(spool) == 0, timeout=20, message="spool replayed")
        assert stored(store) == [f"s{n:05d}" for n in range(20)]
        # Replayed oldest first (consecutive segments may share one insert).
        assert [span for batch in store.inserted for span in batch] == [
            f"s{n:05d}" for n in range(20)
        ]
        assert metrics.get("replayed_records") == 15
        assert metrics.get("spool_bytes") == 0
        assert not [n for n in os.listdir(spool.directory) if n.endswith(".spool")]
    finally:
        writer.shutdown(5)


def test_spool_full_refuses_instead_of_acknowledging(store, tmp_path):
    spool = Spool(str(tmp_path / "spool"), 4096)
    writer, metrics = make_writer(store, spool)
    try:
        store.down = True
        with pytest.raises(SpoolFullError):
            writer.submit(calls(0, 200)).wait(10)
        assert metrics.get("refused_records") == 200
        assert metrics.get("spooled_records") == 0
    finally:
        writer.shutdown(5)


def test_spool_left_by_a_crash_is_replayed_at_start(store, tmp_path):
    directory = str(tmp_path / "spool")
    earlier = Spool(directory, 10 * 1024 * 1024)
    earlier.append((calls(0, 3), []), 3)
    earlier.append((calls(3, 2), []), 2)
    with open(os.path.join(directory, "0000000000000009-1.spool.tmp"), "wb") as handle:
        handle.write(b"half written, never acknowledged")
    spool = Spool(directory, 10 * 1024 * 1024)
    assert len(spool) == 2 and spool.records == 5
    writer, _ = make_writer(store, spool)
    try:
        wait_until(lambda: len(spool) == 0, timeout=20, message="replayed")
        assert stored(store) == [f"s{n:05d}" for n in range(5)]
        assert not [n for n in os.listdir(directory) if n.endswith(".tmp")]
    finally:
        writer.shutdown(5)


def test_a_segment_the_store_refuses_is_set_aside_and_counted(store, tmp_path):
    spool = Spool(str(tmp_path / "spool"), 10 * 1024 * 1024)
    writer, metrics = make_writer(store, spool)
    try:
        store.down = True
        assert writer.submit(calls(0, 2)).wait(10)
        assert writer.submit(calls(2, 2)).wait(10)
        store.poison = {"s00000", "s00001"}  # every record of the first segment
        store.down = False
        wait_until(lambda: len(spool) == 0, timeout=20, message="spool drained")
        assert stored(store) == ["s00002", "s00003"]
        assert metrics.get("dropped_records") == 2
        assert len(os.listdir(os.path.join(spool.directory, "bad"))) == 1
    finally:
        writer.shutdown(5)


def bad_records(spool: Spool) -> list[str]:
    """Span ids of the calls set aside in the spool's bad/ directory."""
    import pickle

    bad = os.path.join(spool.directory, "bad")
    out = []
    for name in sorted(os.listdir(bad)):
        with open(os.path.join(bad, name), "rb") as handle:
            out += [c.span_id for c in pickle.load(handle)[0]]
    return out


def test_one_record_the_store_refuses_does_not_take_its_batch_with_it(store, tmp_path):
    """Several exports share one insert: one row the store refuses used to send the whole
    insert to the spool, report the store as down, and then set aside every export in it
    (acknowledged rows dropped) once a later batch went in."""
    spool = Spool(str(tmp_path / "spool"), 10 * 1024 * 1024)
    writer, metrics = make_writer(store, spool)
    writer._linger = 0.2  # the three exports below go in one insert
    try:
        store.poison = {"s00007"}
        tickets = [writer.submit(calls(n * 5, 5)) for n in range(3)]
        assert all(t.wait(10) for t in tickets)
        assert stored(store) == [f"s{n:05d}" for n in range(15) if n != 7]
        assert _tasks(store) == {"task": 14}  # linked before the acknowledgement
        assert metrics.get("dropped_records") == 1 and bad_records(spool) == ["s00007"]
        assert len(spool) == 0 and writer.health()["status"] == "ok"
        assert writer.submit(calls(15, 1)).wait(10)  # straight to the store, not the spool
        assert metrics.get("spooled_records") == 0 and len(stored(store)) == 15
    finally:
        writer.shutdown(5)


def test_one_spooled_record_the_store_refuses_does_not_take_its_segment(store, tmp_path):
    spool = Spool(str(tmp_path / "spool"), 10 * 1024 * 1024)
    writer, metrics = make_writer(store, spool)
    try:
        store.down = True
        assert writer.submit(calls(0, 4)).wait(10)
        assert writer.submit(calls(4, 2)).wait(10)
        store.poison = {"s00001"}
        store.down = False  # both segments replay in one insert, which the store refuses
        wait_until(lambda: len(spool) == 0, timeout=20, message="spool drained")
        assert stored(store) == [f"s{n:05d}" for n in range(6) if n != 1]
        assert _tasks(store) == {"task": 5}
        assert metrics.get("dropped_records") == 1 and bad_records(spool) == ["s00001"]
        assert metrics.get("replayed_records") == 6
    finally:
        writer.shutdown(5)


def test_a_store_refusing_every_insert_is_an_outage_found_in_few_tries(store, tmp_path):
    spool = Spool(str(tmp_path / "spool"), 10 * 1024 * 1024)
    writer, metrics = make_writer(store, spool)
    try:
        store.poison = {f"s{n:05d}" for n in range(1000)}  # answers, takes nothing
        assert writer.submit(calls(0, 1000)).wait(10)  # spooled, not set aside
        assert len(spool) == 1 and metrics.get("dropped_records") == 0
        assert metrics.get("write_errors") <= 60  # not one insert per record
    finally:
        writer.shutdown(5)


def test_set_aside_segments_are_never_overwritten_after_a_restart(tmp_path):
    directory = str(tmp_path / "spool")
    earlier = Spool(directory, 10 * 1024 * 1024)
    earlier.quarantine(earlier.append((calls(0, 1), []), 1))
    spool = Spool(directory, 10 * 1024 * 1024)  # restarted: nothing left but bad/
    spool.quarantine(spool.append((calls(1, 1), []), 1))
    spool.set_aside((calls(2, 1), []), 1)
    assert bad_records(spool) == ["s00000", "s00001", "s00002"]


def test_a_store_that_answers_but_takes_no_inserts_keeps_the_spool(store, tmp_path):
    spool = Spool(str(tmp_path / "spool"), 10 * 1024 * 1024)
    writer, metrics = make_writer(store, spool)
    try:
        store.down = True
        assert writer.submit(calls(0, 2)).wait(10)
        assert writer.submit(calls(2, 2)).wait(10)
        store.poison = {f"s{n:05d}" for n in range(4)}  # every insert fails, ping succeeds
        store.down = False
        wait_until(lambda: metrics.get("write_errors") >= 4, timeout=20, message="retried")
        assert metrics.get("dropped_records") == 0 and len(spool) == 2
        store.poison = set()  # repaired: everything goes in, in order
        wait_until(lambda: len(spool) == 0, timeout=30, message="replayed after repair")
        assert stored(store) == [f"s{n:05d}" for n in range(4)]
    finally:
        writer.shutdown(5)


def test_queue_bound_and_shutdown_refusals(store):
    writer, metrics = make_writer(store, None, max_queued_records=3)
    try:
        with pytest.raises(QueueFullError) as info:
            writer.submit(calls(0, 4))
        assert info.value.throttled
        assert metrics.get("refused_records") == 4
        assert writer.submit(calls(0, 3)).wait(10)
    finally:
        assert writer.shutdown(5)
    with pytest.raises(QueueFullError) as info:
        writer.submit(calls(10, 1))
    assert not info.value.throttled


def test_without_a_spool_an_outage_is_reported_to_the_sender(store):
    writer, _ = make_writer(store, None)
    try:
        store.down = True
        with pytest.raises(Outage):
            writer.submit(calls(0, 2)).wait(10)
    finally:
        writer.shutdown(5)


def test_shutdown_drains_what_is_queued(store):
    writer, _ = make_writer(store, None)
    tickets = [writer.submit(calls(n * 10, 10)) for n in range(5)]
    assert writer.shutdown(10)
    assert all(t.done.is_set() and t.error is None for t in tickets)
    assert len(stored(store)) == 50


def test_spool_drains_under_sustained_load(store, tmp_path):
    """Fresh batches keep arriving while the spool replays: it must still empty."""
    import threading

    spool = Spool(str(tmp_path / "spool"), 50 * 1024 * 1024)
    writer, _ = make_writer(store, spool)
    stop = threading.Event()
    submitted = [0]

    def load() -> None:
        while not stop.is_set():
            writer.submit(calls(10_000 + submitted[0], 20)).wait(10)
            submitted[0] += 20

    try:
        store.down = True
        for n in range(10):
            assert writer.submit(calls(n * 20, 20)).wait(10)
        sender = threading.Thread(target=load)
        sender.start()
        store.down = False
        wait_until(lambda: len(spool) == 0 and submitted[0] > 0, timeout=20, message="drained")
        stop.set()
        sender.join(10)
        assert len(stored(store)) == 200 + submitted[0]
    finally:
        stop.set()
        writer.shutdown(5)


def _tasks(store: FlakyStore) -> dict[str, int]:
    return dict(store.query("SELECT task_id, calls FROM llm_tasks FINAL").rows)


def test_acknowledged_means_stored_and_linked(store):
    writer, metrics = make_writer(store, None)
    try:
        tickets = [writer.submit(calls(n * 10, 10)) for n in range(6)]
        assert all(t.wait(10) for t in tickets)
        # Linking runs beside the inserts, yet no batch is acknowledged before its task is.
        assert _tasks(store) == {"task": 60}
        assert "llm_margin_link_seconds_count" in metrics.render()
    finally:
        writer.shutdown(5)


def test_a_failed_link_is_not_acknowledged_and_the_resend_links(store):
    writer, metrics = make_writer(store, None)
    real_link = store.store.link_tasks

    def failing_link(task_ids):
        raise Outage("store went away between insert and link")

    try:
        store.link_tasks = failing_link
        with pytest.raises(Outage):
            writer.submit(calls(0, 4)).wait(10)
        assert metrics.get("link_errors") == 1
        assert len(stored(store)) == 4 and _tasks(store) == {}  # stored, not linked
        store.link_tasks = real_link
        assert writer.submit(calls(0, 4)).wait(10)  # the exporter's resend
        assert len(stored(store)) == 4 and _tasks(store) == {"task": 4}
    finally:
        writer.shutdown(5)


def test_an_unreadable_segment_is_set_aside_and_the_writer_keeps_writing(store, tmp_path):
    """A spool file that cannot be read back (damaged on disk, removed by hand) used to end
    the writer thread: every later export was answered "retry" forever."""
    directory = str(tmp_path / "spool")
    earlier = Spool(directory, 10 * 1024 * 1024)
    earlier.append((calls(0, 2), []), 2)
    damaged = earlier.append((calls(2, 3), []), 3)
    earlier.append((calls(5, 1), []), 1)
    with open(damaged.path, "wb") as handle:
        handle.write(b"\x80\x05truncated")
    spool = Spool(directory, 10 * 1024 * 1024)
    writer, metrics = make_writer(store, spool)
    try:
        wait_until(lambda: len(spool) == 0, timeout=20, message="spool drained")
        assert writer.submit(calls(6, 2)).wait(10)
        assert stored(store) == [f"s{n:05d}" for n in (0, 1, 5, 6, 7)]
        assert metrics.get("dropped_records") == 3
        assert os.listdir(os.path.join(directory, "bad")) == [os.path.basename(damaged.path)]
    finally:
        writer.shutdown(5)


def test_a_call_spooled_before_the_audio_columns_replays_with_zero_audio():
    import pickle

    from llm_margin.processor.records import CALL_COLUMNS

    call = CallRecord(ts=datetime.now(timezone.utc), trace_id="t", span_id="s", input_tokens=9)
    # what an older release pickled: (None, {slot: value}) without the audio counts
    none, slots = call.__getstate__()
    del slots["input_audio_tokens"], slots["output_audio_tokens"]
    restored = CallRecord.__new__(CallRecord)
    restored.__setstate__((none, slots))
    assert restored.input_tokens == 9
    assert (restored.input_audio_tokens, restored.output_audio_tokens) == (0, 0)
    assert len(restored.row()) == len(CALL_COLUMNS)
    assert pickle.loads(pickle.dumps(call)) == call


@pytest.mark.parametrize(
    "added",
    [
        {"web_search_calls": 0, "file_search_calls": 0},  # the search counts
        {"speed": ""},  # the speed mode
        {"inference_geo": ""},  # where inference ran
        {"traffic_type": ""},  # how the provider served it (Vertex AI Provisioned Throughput)
        # sub-inferences and their costs
        {"sub_usage": (), "sub_usage_cost_usd": Decimal(0), "sub_usage_entry_costs_usd": ()},
    ],
)
def test_a_call_spooled_before_newer_columns_replays_with_their_defaults(added):
    from llm_margin.processor.records import CALL_COLUMNS

    call = CallRecord(ts=datetime.now(timezone.utc), trace_id="t", span_id="s", input_tokens=9)
    # what the release before them pickled: (None, {slot: value}) without those fields
    none, slots = call.__getstate__()
    for name in added:
        del slots[name]
    restored = CallRecord.__new__(CallRecord)
    restored.__setstate__((none, slots))
    assert restored.input_tokens == 9
    assert {name: getattr(restored, name) for name in added} == added
    assert len(restored.row()) == len(CALL_COLUMNS)
