"""`demo` wipes its --data-dir: only a directory an earlier demo made, or an empty one."""

from __future__ import annotations

import subprocess
import sys

import pytest
from llm_margin.demo.run import DEMO_MARKER, DemoDirectoryError, prepare_data_dir


def test_a_new_directory_is_made_and_marked(tmp_path):
    data = tmp_path / "demo"
    prepare_data_dir(str(data))
    assert [p.name for p in data.iterdir()] == [DEMO_MARKER]


def test_an_earlier_demos_directory_is_wiped(tmp_path):
    data = tmp_path / "demo"
    prepare_data_dir(str(data))
    (data / "store").mkdir()
    (data / "store" / "part.bin").write_bytes(b"old")
    prepare_data_dir(str(data))
    assert [p.name for p in data.iterdir()] == [DEMO_MARKER]


def test_a_demo_directory_from_before_the_marker_is_wiped(tmp_path):
    data = tmp_path / "llm-margin-demo-data"
    (data / "metadata").mkdir(parents=True)
    (data / "weekly.html").write_text("<html>")
    prepare_data_dir(str(data))
    assert [p.name for p in data.iterdir()] == [DEMO_MARKER]


def test_an_empty_directory_is_used(tmp_path):
    prepare_data_dir(str(tmp_path))
    assert (tmp_path / DEMO_MARKER).exists()


@pytest.mark.parametrize("layout", ["user file", "real store"])
def test_a_directory_the_demo_did_not_make_is_left_alone(tmp_path, layout):
    data = tmp_path / "mine"
    data.mkdir()
    kept = data / ("notes.txt" if layout == "user file" else "metadata")
    kept.write_text("keep me")
    with pytest.raises(DemoDirectoryError, match="not empty and was not made by the demo"):
        prepare_data_dir(str(data))
    assert kept.read_text() == "keep me"
    assert not (data / DEMO_MARKER).exists()


def test_a_file_is_refused(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(DemoDirectoryError, match="is a file"):
        prepare_data_dir(str(path))
    assert path.read_text() == "x"


def test_a_demo_directory_in_use_is_not_wiped(tmp_path):
    # `serve` on an earlier demo's directory holds chDB's flock on its status file; the demo
    # deleted the store under it, and the running processor went on with a deleted store.
    data = tmp_path / "demo"
    prepare_data_dir(str(data))
    (data / "metadata").mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "os.write(fd, f'PID: {os.getpid()}\\n'.encode())\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            str(data / "status"),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(
            DemoDirectoryError, match=f"in use by another process \\(pid {holder.pid}\\)"
        ):
            prepare_data_dir(str(data))
        assert (data / "metadata").is_dir()
    finally:
        holder.kill()
        holder.wait()
