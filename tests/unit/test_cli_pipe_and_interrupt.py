"""Output piped to a reader that stops early (`| head`) and Ctrl-C are not errors to show as a
traceback: a closed pipe ends the command quietly with status 0, Ctrl-C with one line and 130."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from llm_margin.processor import cli


def test_output_to_a_closed_pipe_prints_no_traceback():
    # The reader is gone before the command writes: every write gets EPIPE.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "llm_margin.processor.cli", "prices", "show", "gpt-4o-mini"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.stderr.decode() == ""
    assert done.returncode == 0


@pytest.mark.parametrize("command", [["sql", "SELECT 1"], ["report", "weekly"]])
def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys, command):
    def handler(_args):
        raise KeyboardInterrupt

    parser = cli.build_parser()
    original = parser.parse_args
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(
        parser, "parse_args", lambda argv=None: _with_handler(original(command), handler)
    )
    assert cli.main(command) == 130
    assert capsys.readouterr().err.strip().splitlines() == [f"llm-margin {command[0]}: interrupted"]


def _with_handler(args, handler):
    args.handler = handler
    return args
