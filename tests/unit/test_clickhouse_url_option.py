"""--clickhouse-url that is not a URL (`host:8123`, a typo): one line naming the flag. The
client read it as no address and connected to localhost:8123, and its error named that."""

from __future__ import annotations

import pytest
from llm_margin.processor import cli


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "customers"],
        ["sql", "SELECT 1"],
        ["export", "--period", "2026-11"],
        ["prices", "check"],
        ["reprice", "--since", "7d"],
    ],
)
def test_a_clickhouse_url_that_is_not_a_url_is_refused(capsys, argv):
    assert cli.main([*argv, "--clickhouse-url", "ch-host:8123"]) == 2
    command = argv[0]
    assert capsys.readouterr().err.strip().splitlines() == [
        f"llm-margin {command}: --clickhouse-url must be an http(s) URL such as "
        "http://user:pass@host:8123, got 'ch-host:8123'"
    ]
