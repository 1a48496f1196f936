"""Exact money formatting: Decimal in, decimal string out, never a float."""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Context, Decimal, localcontext
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

# Python's default 28 significant digits round a Decimal(38, 18) cost times a markup, or a sum
# of large ones (1234567.123456789012345678 x 1.33333 loses its last digits): money
# arithmetic runs with room for every digit.
EXACT = Context(prec=100)


def exact(function: _F) -> _F:
    """Run ``function``'s Decimal arithmetic in the EXACT context."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with localcontext(EXACT):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


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
    with localcontext(EXACT):  # normalize() rounds to the context's precision
        return format(amount.normalize(), "f")


def cents_str(value: Any) -> str:
    return format(to_decimal(value).quantize(Decimal("0.01")), "f")


def pct_str(value: Any) -> str | None:
    if value is None:
        return None
    return format(to_decimal(value).quantize(Decimal("0.01")), "f")
