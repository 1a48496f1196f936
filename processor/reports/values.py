"""How one value from a query prints: as a JSON value and as table/CSV text.

Every CLI output goes through these two functions, whichever way the rows were read (the
store itself or a running processor, see ``processor/wire.py``), so both print the same text:

- Decimal (money): exact decimal string, trailing zeros trimmed, zero as ``0``, never
  exponent notation (``money_str``); never a float.
- datetime: ISO 8601 in JSON (``2026-11-30T18:48:53.243949``); in table/CSV the way
  ClickHouse prints it (``2026-11-30 18:48:53.243949``). date: ``2026-11-30``.
- UUID, IPv4/IPv6: their usual text.
- bytes (``FixedString``): decoded as UTF-8, invalid bytes replaced by U+FFFD, as ClickHouse
  prints them (the value is text in every column this project stores).
- float NaN/Infinity: ``null`` in JSON (JSON has no NaN); ``nan``/``inf`` in table/CSV.
- tuple, array, map: JSON arrays and objects, converted item by item; in table/CSV a
  Python-like literal, ``(1, 'x')``, ``[1, 2]``, ``{'a': 1}``, with the same item rules.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Any
from uuid import UUID

from llm_margin.processor.reports.money import money_str

JsonValue = None | bool | int | float | str | list[Any] | dict[str, Any]

# Shown as text (quoted inside a tuple/array/map in table/CSV cells).
_TEXT_TYPES = (str, bytes, bytearray, date, time, timedelta, UUID, IPv4Address, IPv6Address)


def json_value(value: Any) -> JsonValue:
    """A value ``json.dumps`` writes as valid, exact JSON (rules in the module docstring)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return money_str(value) if value.is_finite() else None
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {_json_key(k): json_value(v) for k, v in value.items()}
    return _scalar_text(value)


def _json_key(key: Any) -> str:
    # JSON object keys are strings; a Map(UInt8, ...) key 1 becomes "1", as json.dumps does.
    converted = json_value(key)
    return converted if isinstance(converted, str) else json.dumps(converted)


def cell_text(value: Any) -> str | None:
    """Table/CSV text of a value; None stays None (the renderer prints its placeholder)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return _literal(value)
    return _scalar_text(value)


def _scalar_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return money_str(value) if value.is_finite() else str(value).lower()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _literal(value: Any) -> str:
    """A nested value as a Python-like literal whose items follow the scalar rules."""
    if isinstance(value, tuple):
        items = [_literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, (list, set, frozenset)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "None"
    text = _scalar_text(value)
    return repr(text) if isinstance(value, _TEXT_TYPES) else text
