"""`serve` start-up failures a user can fix are one line on stderr and exit 2, and a second
processor cannot share a running one's gRPC port (gRPC's default SO_REUSEPORT would let it
start and the kernel would split exports between two stores)."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from tests.conftest import bin_path, free_port

pytestmark = pytest.mark.integration


def serve(
    data_dir, grpc_port: int, http_port: int, *extra: str, timeout: float = 120
) -> subprocess.CompletedProcess:
    ports = ("--otlp-grpc-port", str(grpc_port), "--otlp-http-port", str(http_port))
    return subprocess.run(
        [bin_path("llm-margin"), "serve", "--data-dir", str(data_dir), *ports, *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("llm-margin serve:")]
    assert len(ours) == 1 and expected in ours[0], result.stderr


def test_grpc_port_of_a_running_serve_is_refused(serve_process, tmp_path):
    result = serve(tmp_path / "second", serve_process["grpc_port"], free_port())
    assert_one_line_error(
        result, f"cannot listen for OTLP gRPC on 127.0.0.1:{serve_process['grpc_port']}"
    )


def test_http_port_in_use_is_refused(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(tmp_path / "data", free_port(), port)
    assert_one_line_error(result, f"cannot listen for OTLP HTTP on 127.0.0.1:{port}")


def test_data_dir_of_a_running_serve_is_refused(serve_process):
    result = serve(serve_process["data_dir"], free_port(), free_port())
    assert_one_line_error(result, "is in use by another process")


def test_spool_dir_of_a_running_serve_is_refused(serve_process, tmp_path):
    """Two processors on one spool (one config for two replicas) numbered segments alike and
    replaced each other's acknowledged batches."""
    spool_dir = os.path.join(serve_process["data_dir"], "spool")
    pid = serve_process["process"].pid
    result = serve(
        tmp_path / "second", free_port(), free_port(), "--spool-dir", spool_dir, timeout=60
    )
    assert_one_line_error(
        result, f"spool directory {spool_dir} is in use by another process (pid {pid})"
    )
