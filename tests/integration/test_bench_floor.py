"""The benchmark's storage floor (bench/processor_floor.py) still stores what it is sent. It
inserts into llm_calls by column name, so a column added to the schema broke its insert, and
bench_processor.py then hung until its senders timed out. One real floor server on a free
loopback port, one export of the benchmark's own payload."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.integration

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "bench")


def test_the_floor_server_stores_an_export(tmp_path):
    sys.path.insert(0, BENCH)
    try:
        from bench_processor import make_request
    finally:
        sys.path.remove(BENCH)
    port = free_port()
    command = [
        sys.executable, os.path.join(BENCH, "processor_floor.py"),
        "--port", str(port), "--data-dir", str(tmp_path / "floor"),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "ready" in process.stdout.readline()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = make_request(0, 64).SerializeToString()
        connection.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"")
        connection.request("POST", "/count", b"")
        assert connection.getresponse().read() == b"64"
        connection.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
