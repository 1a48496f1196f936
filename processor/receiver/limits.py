"""What a record must satisfy to be insertable: the column ranges of the schema, and a cap on
text. Checked per span, so one out-of-range value is reported through ``partial_success``
instead of failing the insert of the whole batch (or poisoning the spool with it)."""

from __future__ import annotations

import math
from dataclasses import fields
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

MAX_TEXT_CHARS = 1024
UINT32_FIELDS = frozenset({"sdk_retries", "attempt"})  # UInt32 columns; other ints are UInt64
_UINT32_MAX = 2**32 - 1
_UINT64_MAX = 2**64 - 1
_DECIMAL_LIMIT = Decimal(10) ** 20  # Decimal(38, 18): 20 integer digits
# DateTime64's range, narrowed to what a span timestamp can honestly be.
_EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(2262, 1, 1, tzinfo=timezone.utc)


def check_storable(record: Any) -> None:
    """Raise ValueError naming the first field the schema cannot hold."""
    for item in fields(record):
        name = item.name
        value = getattr(record, name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            top = _UINT32_MAX if name in UINT32_FIELDS else _UINT64_MAX
            if not 0 <= value <= top:
                raise ValueError(f"{name} out of range: {value}")
        elif isinstance(value, float):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} is not a finite non-negative number: {value}")
        elif isinstance(value, Decimal):
            check_money(name, value)
        elif isinstance(value, str):
            if len(value) > MAX_TEXT_CHARS:
                raise ValueError(f"{name} is {len(value)} characters (limit {MAX_TEXT_CHARS})")
        elif isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
            if not _EARLIEST <= moment < _LATEST:
                raise ValueError(f"{name} out of range: {value.isoformat()}")


def check_money(name: str, value: Decimal) -> None:
    """Decimal(38, 18) holds it (copy_abs is exact; abs() would round to the context)."""
    if not value.is_finite() or value.copy_abs() >= _DECIMAL_LIMIT:
        raise ValueError(f"{name} out of range: {value}")
