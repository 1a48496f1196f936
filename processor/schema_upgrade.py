"""Schema upgrades: columns a newer release declares that an existing table lacks.

The DDL files (``clickhouse/schema/*.sql``) are the single description of every table. On
start (when ``create_schema`` is on) each ``CREATE TABLE IF NOT EXISTS`` runs, then any column
it declares that the live table lacks is added with ``ALTER TABLE ... ADD COLUMN IF NOT
EXISTS``. Adding columns is the only automatic change: renames, type changes and drops are left
to the operator. Pure functions here; the store runs the statements.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_CREATE = re.compile(
    r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+`?(?P<table>[A-Za-z_][A-Za-z0-9_]*)`?\s*\(",
    re.IGNORECASE,
)
_COLUMN = re.compile(r"^\s*`?(?P<name>[A-Za-z_][A-Za-z0-9_]*)`?\s+(?P<rest>.+?)\s*,?\s*$")
_NOT_COLUMNS = frozenset({"INDEX", "PROJECTION", "CONSTRAINT", "PRIMARY"})
_VIEW = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:MATERIALIZED\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"`?(?P<name>[A-Za-z_][A-Za-z0-9_]*)`?",
    re.IGNORECASE,
)


def declared_columns(create_sql: str) -> tuple[str, list[tuple[str, str]]] | None:
    """(table, [(column, definition)]) of a CREATE TABLE statement, or None for other DDL.

    Expects the project's layout: one column per line inside the outer parentheses.
    """
    sql = "\n".join(line.split("--", 1)[0] for line in create_sql.splitlines())
    match = _CREATE.search(sql)
    if match is None:
        return None
    depth, start, end = 1, match.end(), None
    for index in range(start, len(sql)):
        if sql[index] == "(":
            depth += 1
        elif sql[index] == ")":
            depth -= 1
            if depth == 0:
                end = index
                break
    if end is None:
        raise ValueError(f"unbalanced parentheses in CREATE TABLE {match.group('table')}")
    columns: list[tuple[str, str]] = []
    for line in sql[start:end].splitlines():
        found = _COLUMN.match(line)
        if found and found.group("name").upper() not in _NOT_COLUMNS:
            columns.append((found.group("name"), found.group("rest").rstrip(",").strip()))
    return match.group("table"), columns


def add_column_statements(
    table: str, declared: Iterable[tuple[str, str]], existing: Iterable[str]
) -> list[str]:
    """ALTER statements adding each declared column the live table lacks, in declared order."""
    have = set(existing)
    return [
        f"ALTER TABLE `{table}` ADD COLUMN IF NOT EXISTS `{name}` {definition}"
        for name, definition in declared
        if name not in have
    ]


def view_name(statement: str) -> str | None:
    """The view a ``CREATE ... VIEW`` statement makes, or None for other DDL."""
    view = _VIEW.search("\n".join(line.split("--", 1)[0] for line in statement.splitlines()))
    return view.group("name") if view is not None else None


def schema_gaps(
    statements: Iterable[str],
    columns_of: Callable[[str], list[str]],
    exists: Callable[[str], bool],
) -> list[str]:
    """What a store lacks of the schema the DDL ``statements`` declare, one line per table or
    view (with the ALTER statements that add missing columns); empty when nothing is missing.
    ``columns_of(table)``: the live table's columns, empty when it does not exist;
    ``exists(view)``: whether the view exists (a parameterised view lists no columns)."""
    gaps: list[str] = []
    for statement in statements:
        declared = declared_columns(statement)
        if declared is not None:
            table, columns = declared
            existing = columns_of(table)
            if not existing:
                gaps.append(f"table {table} is missing")
            else:
                gaps.extend(add_column_statements(table, columns, existing))
            continue
        view = view_name(statement)
        if view is not None and not exists(view):
            gaps.append(f"view {view} is missing")
    return gaps
