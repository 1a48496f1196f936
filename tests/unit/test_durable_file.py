"""Files the processor must find again after a crash (spool segments, the webhook's pending
alerts) are written under a temporary name, fsynced, renamed, and then their directory is
fsynced, so that the rename itself survives a power cut. What was fsynced is read back from
the descriptors passed to ``os.fsync`` (no crash is simulated)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from llm_margin.processor.budgets.sinks import WebhookSink
from llm_margin.processor.budgets.thresholds import Alert
from llm_margin.processor.durable_file import write_durably
from llm_margin.processor.metrics import Metrics

from tests.conftest import free_port


@pytest.fixture
def fsynced(monkeypatch) -> list[str]:
    """The paths of what os.fsync was called on, in order."""
    paths: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return paths


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_the_file_then_its_directory_are_fsynced(tmp_path, fsynced):
    target = tmp_path / "state.json"
    write_durably(str(target), b"[1]")
    assert target.read_bytes() == b"[1]"
    assert not (tmp_path / "state.json.tmp").exists()
    assert fsynced == [str(tmp_path / "state.json.tmp"), str(tmp_path)]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_durably(str(target), "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert not (tmp_path / "state.json.tmp").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_the_webhook_pending_file_is_written_durably(tmp_path, fsynced):
    state = tmp_path / "webhook-pending.json"
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nobody listening: the alert waits
    sink = WebhookSink(dead, timeout=5, attempts=1, metrics=Metrics(), state_file=str(state))
    alert = Alert(
        "allowance_used", "warning", "customer", "c1", "c1", "2026-11", Decimal(50),
        Decimal(10), Decimal(20), "50% used", "customer c1 has used 50%",
    )  # fmt: skip
    sink.send([alert], datetime(2026, 11, 22, 12, tzinfo=timezone.utc))
    assert sink.pending == 1 and state.exists()
    assert str(tmp_path) in fsynced  # the rename reached the disk too
