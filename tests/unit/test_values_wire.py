"""How query values print (reports/values.py) and travel over /api/query (wire.py)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from uuid import UUID

import pytest
from llm_margin.processor import wire
from llm_margin.processor.reports.values import cell_text, json_value

UID = UUID("00000000-0000-0000-0000-000000000001")

# value, JSON value, table/CSV text
CASES = [
    (None, None, None),
    (True, True, "True"),
    (7, 7, "7"),
    ("café", "café", "café"),
    (1.5, 1.5, "1.5"),
    (float("nan"), None, "nan"),
    (float("-inf"), None, "-inf"),
    (Decimal("0E-18"), "0", "0"),
    (Decimal("6.0000000000E-8"), "0.00000006", "0.00000006"),
    (Decimal("0.000017250000000000"), "0.00001725", "0.00001725"),
    (Decimal("1E+3"), "1000", "1000"),
    (datetime(2026, 11, 30, 18, 48, 53, 243949), "2026-11-30T18:48:53.243949", None),
    (date(2026, 11, 30), "2026-11-30", "2026-11-30"),
    (UID, str(UID), str(UID)),
    (IPv4Address("10.0.0.1"), "10.0.0.1", "10.0.0.1"),
    (IPv6Address("::1"), "::1", "::1"),
    (b"ab\xff", "ab\ufffd", "ab\ufffd"),
    ((1, "x"), [1, "x"], "(1, 'x')"),
    ((1,), [1], "(1,)"),
    ([1, 2], [1, 2], "[1, 2]"),
    ({"a": Decimal("1.50")}, {"a": "1.5"}, "{'a': 1.5}"),
    ({1: None}, {"1": None}, "{1: None}"),
    ([(date(2026, 1, 2), float("nan"))], [["2026-01-02", None]], "[('2026-01-02', nan)]"),
]


@pytest.mark.parametrize(("value", "as_json", "text"), CASES)
def test_json_value_and_cell_text(value, as_json, text):
    assert json_value(value) == as_json
    json.dumps(json_value(value), allow_nan=False)  # valid JSON: no NaN, every type known
    if text is not None or value is None:
        assert cell_text(value) == text


def test_datetime_text_is_clickhouses():
    assert cell_text(datetime(2026, 11, 30, 18, 48, 53, 243949)) == "2026-11-30 18:48:53.243949"


WIRE_VALUES = [
    None,
    True,
    -3,
    2**100,
    "x",
    0.1,
    float("inf"),
    Decimal("0E-18"),
    Decimal("6.0000000000E-8"),
    datetime(2026, 11, 30, 18, 48, 53, 243949),
    datetime(2026, 11, 30, 18, 48, tzinfo=timezone.utc),
    date(2026, 11, 30),
    time(12, 0, 1),
    timedelta(days=1, seconds=2, microseconds=3),
    UID,
    IPv4Address("10.0.0.1"),
    IPv6Address("::1"),
    b"ab\x00",
    (1, "x", (Decimal("1.50"), [date(2026, 1, 1)])),
    [[1], []],
    {"a": [UID], 1: (None,)},
]


@pytest.mark.parametrize("value", WIRE_VALUES, ids=lambda v: type(v).__name__)
def test_wire_round_trip_keeps_type_and_text(value):
    sent = json.loads(json.dumps(wire.encode(value), allow_nan=False))
    back = wire.decode(sent)
    assert type(back) is type(value)
    assert repr(back) == repr(value)  # Decimal exponent, tuple vs list, tz all kept


def test_wire_nan_round_trips():
    assert math.isnan(wire.decode(json.loads(json.dumps(wire.encode(float("nan"))))))
