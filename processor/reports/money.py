"""Exact money formatting: Decimal in, decimal string out, never a float."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def to_decimal(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    return Decimal(str(value))


def money_str(value: Any) -> str:
    """Shortest exact decimal string: trailing zeros trimmed, never exponent notation."""
    amount = to_decimal(value)
    if amount == 0:
        return "0"
    text = format(amount.normalize(), "f")
    return text


def cents_str(value: Any) -> str:
    return format(to_decimal(value).quantize(Decimal("0.01")), "f")


def pct_str(value: Any) -> str | None:
    if value is None:
        return None
    return format(to_decimal(value).quantize(Decimal("0.01")), "f")
