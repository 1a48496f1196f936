"""Table output (`--format table`) and error lines go to a terminal: an id with an escape
sequence, a carriage return, a backspace or a bidi override is shown escaped, never acted
on, and columns line up by display width (wide CJK, combining marks)."""

from __future__ import annotations

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
