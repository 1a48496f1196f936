"""The answer bound of the read-only SQL paths: its settings, its message, how the ClickHouse
HTTP interface combines it with a request's own, and how `reprice` shrinks a refused page."""

from __future__ import annotations

import pytest
from llm_margin.processor.clickhouse_http import result_settings
from llm_margin.processor.readonly_sql import (
    ResultLimits,
    is_result_limit_error,
    result_limit_message,
)
from llm_margin.processor.repricing import smaller_page

OURS = ResultLimits(rows=1000, bytes=1024**2)
THROW = {"result_overflow_mode": "throw"}


def test_settings_never_cut_an_answer_silently():
    assert OURS.settings() == {"max_result_rows": 1000, "max_result_bytes": 1024**2, **THROW}


@pytest.mark.parametrize(
    ("limits", "text"),
    [
        (ResultLimits(500_000, 32 * 1024**2), "500,000 rows / 32 MiB"),
        (ResultLimits(5, 0), "5 rows"),
        (ResultLimits(0, 1024), "1 KiB"),
        (ResultLimits(0, 1500), "1,500 bytes"),
        (ResultLimits(0, 0), "none"),
    ],
)
def test_describe(limits, text):
    assert limits.describe() == text


ENGINE_ERROR = (
    "Code: 396. DB::Exception: Limit for result exceeded, max rows: 5.00, current rows: "
    "12.00. (TOO_MANY_ROWS_OR_BYTES) (version 26.9.2.1)\nStack trace: ..."
)


def test_message_names_the_bound_and_what_to_do_on_one_line():
    message = result_limit_message(ResultLimits(5, 0), "HTTPDriver said: " + ENGINE_ERROR)
    assert "result limit (5 rows)" in message
    for advice in ("LIMIT", "`llm-margin export`", "--max-result-rows", "max_result_rows"):
        assert advice in message
    assert message.endswith("ClickHouse said: " + ENGINE_ERROR.split("\n")[0])


def test_only_the_result_bound_counts_as_one():
    assert is_result_limit_error(ENGINE_ERROR)
    other = "Code: 396. DB::Exception: Limit for rows (controlled by 'max_rows_to_read') exceeded"
    assert not is_result_limit_error(other)


@pytest.mark.parametrize(
    ("requested", "applied"),
    [
        ({}, {"max_result_rows": 1000, "max_result_bytes": 1024**2, **THROW}),
        # a client cannot lift the bound ...
        ({"max_result_rows": "0"}, {"max_result_rows": 1000, "max_result_bytes": 1024**2, **THROW}),
        (
            {"max_result_rows": "5000"},
            {"max_result_rows": 1000, "max_result_bytes": 1024**2, **THROW},
        ),
        # ... but keeps its own tighter one, and its overflow mode when both are its own
        ({"max_result_rows": "10"}, {"max_result_bytes": 1024**2, **THROW}),
        ({"max_result_rows": "10", "max_result_bytes": "100"}, {}),
        ({"max_result_rows": "x"}, {"max_result_rows": 1000, "max_result_bytes": 1024**2, **THROW}),
    ],
)
def test_clickhouse_http_result_settings(requested, applied):
    assert result_settings(requested, OURS) == applied


def test_a_bound_turned_off_is_not_applied():
    assert result_settings({}, ResultLimits(0, 0)) == {}
    assert result_settings({}, ResultLimits(0, 10)) == {"max_result_bytes": 10, **THROW}


@pytest.mark.parametrize(
    ("page", "max_rows", "expected"),
    [
        (50_000, 5, 5),  # the processor said its row bound: straight to it
        (50_000, None, 25_000),  # a bytes bound: halve
        (5, 5, 2),  # within the row bound yet refused: bytes, halve
        (1, None, 1),
        (50_000, 100_000, 25_000),
    ],
)
def test_smaller_page(page, max_rows, expected):
    assert smaller_page(page, max_rows) == expected
