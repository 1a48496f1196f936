"""What a record must satisfy to be insertable: the column ranges of the schema, and a cap on
text. Checked per span, so one out-of-range value is reported through ``partial_success``
instead of failing the insert of the whole batch (or poisoning the spool with it).

On the hot path: each record type gets, once, a generated predicate that tests every field
in one expression (as ``dataclasses`` generates ``__init__``), so a storable record costs a few
bytecodes per field. Only a record it refuses takes the general path, which names the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from decimal import Decimal
from operator import attrgetter
from typing import Any

MAX_TEXT_CHARS = 1024
# UInt32 columns; other ints are UInt64
UINT32_FIELDS = frozenset({"sdk_retries", "attempt", "web_search_calls", "file_search_calls"})
_UINT32_MAX = 2**32 - 1
_UINT64_MAX = 2**64 - 1
# Token counts (UInt64 columns) per call: no model reads or writes 4 billion tokens in one call,
# and a few counts near the column's top would make every sum over them wrap around silently.
MAX_TOKENS_PER_CALL = 2**32 - 1
_DECIMAL_LIMIT = Decimal(10) ** 20  # Decimal(38, 18): 20 integer digits
# DateTime64's range, narrowed to what a span timestamp can honestly be.
_EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(2262, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class _Group:
    names: tuple[str, ...]
    get: Any  # attrgetter returning a tuple of the values

    def values(self, record: Any) -> tuple:
        return self.get(record) if self.names else ()


def _group(names: list[str]) -> _Group:
    # attrgetter of one name returns the value itself; pad so it always returns a tuple.
    if len(names) == 1:
        single = attrgetter(names[0])
        return _Group(tuple(names), lambda record: (single(record),))
    return _Group(tuple(names), attrgetter(*names) if names else None)


_PLANS: dict[type, dict[str, _Group]] = {}
_STORABLE: dict[type, Any] = {}  # record type -> its generated predicate


def _plan(cls: type) -> dict[str, _Group]:
    kinds: dict[str, list[str]] = {
        k: [] for k in ("u32", "u64", "tok", "float", "dec", "str", "dt")
    }
    for item in fields(cls):
        annotation = item.type if isinstance(item.type, str) else item.type.__name__
        if annotation == "int":
            if item.name in UINT32_FIELDS:
                kinds["u32"].append(item.name)
            elif item.name.endswith("_tokens"):
                kinds["tok"].append(item.name)
            else:
                kinds["u64"].append(item.name)
        elif annotation == "float":
            kinds["float"].append(item.name)
        elif annotation == "Decimal":
            kinds["dec"].append(item.name)
        elif annotation == "str":
            kinds["str"].append(item.name)
        elif annotation == "datetime":
            kinds["dt"].append(item.name)
    return {kind: _group(names) for kind, names in kinds.items()}


def _predicate(cls: type) -> Any:
    """``storable(record) -> bool``: True exactly when _check_fields would not raise."""
    plan = _plan(cls)
    tests = ["True"]
    tests += [f"0 <= r.{name} <= _UINT64_MAX" for name in plan["u64"].names]
    tests += [f"0 <= r.{name} <= _UINT32_MAX" for name in plan["u32"].names]
    tests += [f"0 <= r.{name} <= MAX_TOKENS_PER_CALL" for name in plan["tok"].names]
    tests += [f"(isfinite(r.{name}) and r.{name} >= 0)" for name in plan["float"].names]
    tests += [
        f"(r.{name}.is_finite() and r.{name}.copy_abs() < _DECIMAL_LIMIT)"
        for name in plan["dec"].names
    ]
    tests += [f"len(r.{name}) <= MAX_TEXT_CHARS" for name in plan["str"].names]
    tests += [
        f"_EARLIEST <= (r.{name} if r.{name}.tzinfo else r.{name}.replace(tzinfo=utc)) < _LATEST"
        for name in plan["dt"].names
    ]
    source = "def storable(r):\n    return (\n        " + "\n        and ".join(tests) + "\n    )\n"
    namespace = dict(globals(), isfinite=math.isfinite, utc=timezone.utc)
    exec(source, namespace)  # noqa: S102 - field names of a dataclass, not input
    return namespace["storable"]


def check_storable(record: Any) -> None:
    """Raise ValueError naming the first field the schema cannot hold."""
    storable = _STORABLE.get(type(record))
    if storable is None:
        storable = _STORABLE[type(record)] = _predicate(type(record))
    try:
        if storable(record):
            return
    except Exception:  # noqa: BLE001 - a value of a wrong type: the general path says which
        pass
    _check_fields(record)


def _check_fields(record: Any) -> None:
    plan = _PLANS.get(type(record))
    if plan is None:
        plan = _PLANS[type(record)] = _plan(type(record))
    for kind, top in (("u64", _UINT64_MAX), ("u32", _UINT32_MAX), ("tok", MAX_TOKENS_PER_CALL)):
        values = plan[kind].values(record)
        if values and (min(values) < 0 or max(values) > top):
            _name_the_field(plan[kind], record, lambda v, top=top: 0 <= v <= top, "out of range")
    floats = plan["float"].values(record)
    if floats and not all(math.isfinite(v) and v >= 0 for v in floats):
        _name_the_field(
            plan["float"],
            record,
            lambda v: math.isfinite(v) and v >= 0,
            "is not a finite non-negative number",
        )
    for name, value in zip(plan["dec"].names, plan["dec"].values(record), strict=True):
        check_money(name, value)
    texts = plan["str"].values(record)
    if texts and max(map(len, texts)) > MAX_TEXT_CHARS:
        for name, value in zip(plan["str"].names, texts, strict=True):
            if len(value) > MAX_TEXT_CHARS:
                raise ValueError(f"{name} is {len(value)} characters (limit {MAX_TEXT_CHARS})")
    for name, value in zip(plan["dt"].names, plan["dt"].values(record), strict=True):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        if not _EARLIEST <= moment < _LATEST:
            raise ValueError(f"{name} out of range: {value.isoformat()}")


def _name_the_field(group: _Group, record: Any, ok: Any, problem: str) -> None:
    for name, value in zip(group.names, group.values(record), strict=True):
        if not ok(value):
            raise ValueError(f"{name} {problem}: {value}")


def check_money(name: str, value: Decimal) -> None:
    """Decimal(38, 18) holds it (copy_abs is exact; abs() would round to the context)."""
    if not value.is_finite() or value.copy_abs() >= _DECIMAL_LIMIT:
        raise ValueError(f"{name} out of range: {value}")
