"""Table output (`--format table`) and error lines go to a terminal: an id with an escape
sequence, a carriage return, a backspace or a bidi override is shown escaped, never acted
on, and columns line up by display width (wide CJK, combining marks)."""

from __future__ import annotations

import argparse

import pytest
from llm_margin.processor.reports.render import render
from llm_margin.processor.reports.terminal import display_width, pad, terminal_text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("acme", "acme"),
        ("\x1b[2J\x1b[Hok", "\\x1b[2J\\x1b[Hok"),  # clear screen, cursor home
        ("acme\r9999.00", "acme\\x0d9999.00"),  # carriage return: overwrite the line
        ("10\x08\x089", "10\\x08\\x089"),  # backspaces: rewrite a number
        ("acme\nTOTAL", "acme\\x0aTOTAL"),  # a forged second row
        ("abc\u202edcba", "abc\\u202edcba"),  # right-to-left override
        ("a\u200bb\u2066c\u2028d\ufeff", "a\\u200bb\\u2066c\\u2028d\\ufeff"),
        ("\x9b2J", "\\x9b2J"),  # C1 CSI
        ("tag\U000e0041", "tag\\U000e0041"),  # invisible tag character
        ("\ud800", "\\ud800"),  # lone surrogate: would not even encode
        ("東京株式会社", "東京株式会社"),
        ("café\u0301 😀", "café\u0301 😀"),
        ("back\\slash", "back\\slash"),
        ("non\u00a0breaking", "non\u00a0breaking"),
    ],
)
def test_terminal_text(text: str, shown: str) -> None:
    assert terminal_text(text) == shown


@pytest.mark.parametrize(
    ("text", "width"),
    [
        ("acme", 4),
        ("", 0),
        ("東京", 4),
        ("ｆｕｌｌ", 8),  # fullwidth
        ("e\u0301", 1),  # combining acute
        ("Z\u0351\u0352\u0353", 1),  # stacked marks
        ("😀", 2),
        ("naïve", 5),
    ],
)
def test_display_width(text: str, width: int) -> None:
    assert display_width(text) == width


def test_pad() -> None:
    assert pad("東京", 6) == "東京  "
    assert pad("1.5", 6, right=True) == "   1.5"
    assert pad("too long", 3) == "too long"


def test_table_shows_control_characters_escaped() -> None:
    rows = [
        {"customer_id": "\x1b[2J\x1b[31mevil", "cost_usd": "1.5"},
        {"customer_id": "spoof\r", "cost_usd": "2"},
        {"customer_id": "\u202e99.0", "cost_usd": "3"},
    ]
    text = render(rows, ["customer_id", "cost_usd"], "table", title="t\x1b[2J")
    assert not any(c in text for c in "\x1b\r\x08\u202e")
    assert text.splitlines() == [
        "t\\x1b[2J",
        "customer_id          cost_usd",
        "-------------------  --------",
        "\\x1b[2J\\x1b[31mevil       1.5",
        "spoof\\x0d                   2",
        "\\u202e99.0                  3",
    ]


def test_table_aligns_wide_and_combining_characters() -> None:
    rows = [
        {"customer_id": "acme", "cost_usd": "1.5"},
        {"customer_id": "東京株式会社", "cost_usd": "22"},
        {"customer_id": "Zalgo\u0351\u0352\u0353\u0354", "cost_usd": "3"},
    ]
    lines = render(rows, ["customer_id", "cost_usd"], "table").splitlines()
    # Every cost ends in the same terminal column.
    assert {display_width(line) for line in lines} == {display_width(lines[0])}
    assert lines[3] == "東京株式会社        22"


def test_csv_and_json_keep_the_raw_value() -> None:
    rows = [{"customer_id": "a\x1bb"}]
    assert render(rows, ["customer_id"], "csv") == "customer_id\na\x1bb\n"
    assert '"a\\u001bb"' in render(rows, ["customer_id"], "json")


# -- stderr lines ----------------------------------------------------------------------------


def test_error_line_escapes_what_it_quotes(capsys, tmp_path) -> None:
    from llm_margin.processor.cli import main

    missing = tmp_path / "none\x1b[2J\rx\u202e"
    assert main(["report", "customers", "--data-dir", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.endswith("none\\x1b[2J\\x0dx\\u202e\n"), err
    assert err.count("\n") == 1


def test_clickhouse_error_quoting_a_stored_value_is_escaped(capsys, monkeypatch) -> None:
    # ClickHouse quotes the offending value with its ESC byte raw ("Cannot parse string
    # 'a\x1b[2J' as UInt64"); a span's call id is stored as it came.
    from clickhouse_connect.driver.exceptions import DatabaseError
    from llm_margin.processor import cli

    def fail(args) -> None:
        raise DatabaseError("Code: 6. DB::Exception: Cannot parse string 'a\x1b[2J' as UInt64")

    parser = cli.build_parser()
    args = argparse.Namespace(command="sql", verbose=False, handler=fail)
    monkeypatch.setattr(parser, "parse_args", lambda argv: args)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main(["sql", "SELECT 1"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "'a\\x1b[2J'" in err, err


def test_export_warnings_escape_ids(capsys) -> None:
    from llm_margin.processor.commands.export import _warn

    _warn("e.g. cus_\x1b]8;;https://evil\x07pay\x1b]8;;\x07 for acme")
    err = capsys.readouterr().err
    assert err == (
        "llm-margin export: e.g. cus_\\x1b]8;;https://evil\\x07pay\\x1b]8;;\\x07 for acme\n"
    )
