"""Query results over the processor's ``/api/query`` JSON, with their Python types intact.

A read command must print the same text whether it opened the store or asked a running
processor, so the processor sends each value tagged with its type and the client rebuilds the
object clickhouse-connect would have returned (Decimal, datetime, UUID, tuple, ...). JSON's own
types (null, bool, int, str, finite float, list) travel as they are; everything else is an
object ``{"$type": NAME, "value": ...}``. Maps are tagged too, so every JSON object on the wire
is a tag.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Any
from uuid import UUID

# Asked for by the client in its request and echoed in the answer; a request without it gets
# plain JSON (``json_value``), as before this encoding existed.
TYPED_ENCODING = "typed-1"

_TAG = "$type"


def json_default(value: Any) -> Any:
    """Money stays exact on the wire: Decimal as a string; datetimes in ISO 8601. Lives here,
    not in the receiver, so read commands forwarding to a running processor do not import the
    OTLP receiver, its pipeline and the price book (~0.4 s on each report and sql call)."""
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (UUID, IPv4Address, IPv6Address)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def encode(value: Any) -> Any:
    """A JSON-ready form of one result value that ``decode`` turns back into an equal object."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _tag("float", repr(value))
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return _tag("tuple", [encode(v) for v in value])
    if isinstance(value, dict):
        return _tag("map", [[encode(k), encode(v)] for k, v in value.items()])
    for kind, cls, to_json, _ in _SCALARS:
        if isinstance(value, cls):
            return _tag(kind, to_json(value))
    # A type this module does not know: its text, rather than failing the whole answer.
    return str(value)


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind, payload = value[_TAG], value["value"]
    if kind == "tuple":
        return tuple(decode(v) for v in payload)
    if kind == "map":
        return {decode(k): decode(v) for k, v in payload}
    if kind == "float":
        return float(payload)
    return _FROM_JSON[kind](payload)


def _tag(kind: str, payload: Any) -> dict[str, Any]:
    return {_TAG: kind, "value": payload}


def _timedelta_from(parts: list[int]) -> timedelta:
    return timedelta(days=parts[0], seconds=parts[1], microseconds=parts[2])


# (tag, class, to JSON, from JSON); order matters: datetime is a date, bool an int.
_SCALARS: tuple[tuple[str, Any, Callable[[Any], Any], Callable[[Any], Any]], ...] = (
    ("decimal", Decimal, str, Decimal),  # str(Decimal) is exact, exponent included
    ("datetime", datetime, datetime.isoformat, datetime.fromisoformat),  # keeps the offset
    ("date", date, date.isoformat, date.fromisoformat),
    ("time", time, time.isoformat, time.fromisoformat),
    ("timedelta", timedelta, lambda v: [v.days, v.seconds, v.microseconds], _timedelta_from),
    ("uuid", UUID, str, UUID),
    ("ipv4", IPv4Address, str, IPv4Address),
    ("ipv6", IPv6Address, str, IPv6Address),
    ("bytes", (bytes, bytearray), lambda v: bytes(v).hex(), bytes.fromhex),
)
_FROM_JSON = {kind: from_json for kind, _, _, from_json in _SCALARS}


def encode_rows(rows: list[tuple]) -> list[list[Any]]:
    return [[encode(v) for v in row] for row in rows]


def decode_rows(rows: list[list[Any]]) -> list[tuple]:
    return [tuple(decode(v) for v in row) for row in rows]
